"""publish:gitea against a loopback Gitea that checks every call against its API
description (tests/support/forge/specs/gitea.yaml); the pushed repository is cloned
back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from falsework.actions import ActionRegistry
from falsework.actions.git import KEY_TRAILER
from support.forge import ForgeServer
from support.forge.gitea import Gitea
from support.forge.harness import ForgeRunner, clone, forge_runner, git, step

PASSWORD = "gitea-access-token"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = Gitea(
        tmp_path / "forge",
        tokens={PASSWORD: "robot"},
        users=["robot"],
        orgs={"acme": ["robot"], "closed": []},
    )
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture
def gt(forge: ForgeServer, tmp_path: Path) -> ForgeRunner:
    return forge_runner(
        tmp_path / "run",
        forge,
        kind="gitea",
        token=PASSWORD,
        username="robot",
        owners=("acme", "robot", "closed"),
    )


def model(forge: ForgeServer) -> Gitea:
    assert isinstance(forge.host, Gitea)
    return forge.host


async def test_publish_gitea_creates_in_an_organization_and_pushes(
    forge: ForgeServer, gt: ForgeRunner, tmp_path: Path
) -> None:
    gt.write({"README.md": "# svc\n", "src/app.py": "print('hi')\n"})
    run = await gt.run(
        [
            step(
                "publish:gitea",
                "publish",
                repoUrl=f"{forge.netloc}?owner=acme&repo=svc",
                description="A service",
                repoVisibility="private",
                gitCommitMessage="Create svc",
                gitAuthorName="Template Bot",
                gitAuthorEmail="bot@example.com",
            )
        ]
    )
    assert run.error is None, run.logs()
    repo = model(forge).repo("acme", "svc")
    assert run.step_output("publish") == {
        "remoteUrl": f"{forge.url}/acme/svc.git",
        "repoContentsUrl": f"{forge.url}/acme/svc/src/branch/main/",
        "commitHash": git(repo.path, "rev-parse", "refs/heads/main").strip(),
    }
    assert repo.settings == {"private": True, "description": "A service"}
    checkout = clone(repo.path, tmp_path / "clone")
    assert (checkout / "src" / "app.py").read_text() == "print('hi')\n"
    subject, _, trailer = (
        git(repo.path, "log", "-1", "--format=%B", "main").strip().partition("\n\n")
    )
    assert subject == "Create svc"
    # Backstage's Change-Id, then the step's key (docs/actions.md, reuse) in one trailer block
    change_id, key = trailer.splitlines()
    assert change_id.startswith("Change-Id: I") and len(change_id) == len("Change-Id: I") + 40
    assert key.startswith(f"{KEY_TRAILER}: ")
    assert git(repo.path, "log", "-1", "--format=%an|%ae", "main").strip() == (
        "Template Bot|bot@example.com"
    )
    assert forge.pushes == [("acme/svc", "robot")]
    # the credential is in no event of the task
    assert PASSWORD not in str(run.io.events)


async def test_publish_gitea_for_the_integration_user_with_defaults(
    forge: ForgeServer, gt: ForgeRunner, tmp_path: Path
) -> None:
    gt.write({"service/a.txt": "a\n", "b.txt": "b\n"})
    run = await gt.run(
        [
            step(
                "publish:gitea",
                repoUrl=f"{forge.netloc}?owner=robot&repo=mine",
                sourcePath="service",
                defaultBranch="trunk",
            )
        ]
    )
    assert run.error is None, run.logs()
    repo = model(forge).repo("robot", "mine")
    assert repo.settings == {"private": False}
    checkout = clone(repo.path, tmp_path / "clone", "trunk")
    assert sorted(p.name for p in checkout.iterdir() if p.name != ".git") == ["a.txt"]
    assert git(repo.path, "log", "-1", "--format=%an|%s", "trunk").strip() == (
        "Scaffolder|initial commit"
    )
    assert forge.calls_to("createCurrentUserRepo")


async def test_publish_gitea_refusals_are_clear(
    forge: ForgeServer, gt: ForgeRunner, tmp_path: Path
) -> None:
    gt.write({"a": "a"})
    nowhere = await gt.run([step("publish:gitea", repoUrl=f"{forge.netloc}?owner=ghost&repo=x")])
    assert nowhere.error is not None
    assert f"no credentials for host {forge.netloc} and owner ghost" in str(nowhere.error)
    closed = await gt.run([step("publish:gitea", repoUrl=f"{forge.netloc}?owner=closed&repo=x")])
    assert closed.error is not None
    assert "403 to POST /api/v1/orgs/closed/repos: Given user is not allowed" in str(closed.error)
    scoped = forge_runner(
        tmp_path / "scoped",
        forge,
        kind="gitea",
        token=PASSWORD,
        username="robot",
        owners=("robot", "nope"),
    )
    scoped.write({"a": "a"})
    missing = await scoped.run([step("publish:gitea", repoUrl=f"{forge.netloc}?owner=nope&repo=x")])
    assert missing.error is not None
    assert f"organization nope does not exist on {forge.netloc}" in str(missing.error)
    unscoped = await scoped.run(
        [step("publish:gitea", repoUrl=f"{forge.netloc}?owner=acme&repo=x")]
    )
    assert unscoped.error is not None and "no credentials" in str(unscoped.error)
    assert model(forge).repos == {}


GITEA_EXAMPLES = [
    pytest.param(item.id, index, id=f"{item.id}#{index}")
    for item in ActionRegistry.builtin().list()
    if item.id == "publish:gitea"
    for index in range(len(item.examples))
]


@pytest.mark.parametrize(("action_id", "index"), GITEA_EXAMPLES)
async def test_every_documented_example_runs_against_the_forge(
    forge: ForgeServer, tmp_path: Path, action_id: str, index: int
) -> None:
    runner = forge_runner(
        tmp_path / "ex",
        forge,
        kind="gitea",
        token=PASSWORD,
        username="robot",
        host="gitea.example.com",
        owners=("acme",),
    )
    runner.write({"README.md": "hi\n"})
    example = ActionRegistry.builtin().get(action_id).examples[index]
    run = await runner.run(yaml.safe_load(example.example)["steps"])
    assert run.error is None, run.logs()
