"""publish:bitbucketCloud and publish:bitbucketCloud:pull-request against a loopback
Bitbucket Cloud that checks every call against its API description
(tests/support/forge/specs/bitbucket-cloud.yaml); pushes are cloned back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from falsework.actions import ActionRegistry
from support.forge import ForgeServer
from support.forge.bare import seed_bare
from support.forge.bitbucket_cloud import BitbucketCloud
from support.forge.harness import ForgeRunner, clone, forge_runner, git, step

APP_PASSWORD = "bb-app-password"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = BitbucketCloud(
        tmp_path / "forge",
        tokens={APP_PASSWORD: "robot", "bb-access-token": "alice"},
        workspaces={"acme": (["PLAT", "WEB"], ["robot", "alice"]), "other": (["X"], ["robot"])},
    )
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture
def bb(forge: ForgeServer, tmp_path: Path) -> ForgeRunner:
    return forge_runner(
        tmp_path / "run",
        forge,
        kind="bitbucketCloud",
        token=APP_PASSWORD,
        username="robot",
        owners=("acme",),
    )


def model(forge: ForgeServer) -> BitbucketCloud:
    assert isinstance(forge.host, BitbucketCloud)
    return forge.host


async def test_publish_bitbucket_cloud_creates_in_the_project_and_pushes(
    forge: ForgeServer, bb: ForgeRunner, tmp_path: Path
) -> None:
    bb.write({"README.md": "# svc\n", "src/app.py": "print('hi')\n"})
    run = await bb.run(
        [
            step(
                "publish:bitbucketCloud",
                "publish",
                repoUrl=f"{forge.netloc}?workspace=acme&project=WEB&repo=svc",
                description="A service",
                defaultBranch="main",
                gitCommitMessage="Create svc",
            )
        ]
    )
    assert run.error is None, run.logs()
    repo = model(forge).repo("acme", "svc")
    assert run.step_output("publish") == {
        "remoteUrl": f"{forge.url}/acme/svc.git",
        "repoContentsUrl": f"{forge.url}/acme/svc/src/main",
        "commitHash": git(repo.path, "rev-parse", "refs/heads/main").strip(),
    }
    assert repo.settings == {
        "scm": "git",
        "is_private": True,
        "project": {"key": "WEB"},
        "description": "A service",
    }
    checkout = clone(repo.path, tmp_path / "clone")
    assert (checkout / "src" / "app.py").read_text() == "print('hi')\n"
    assert git(repo.path, "log", "-1", "--format=%s|%an", "main").strip() == "Create svc|Scaffolder"
    # the integration's user and app password, for the API and git alike
    assert forge.pushes == [("acme/svc", "robot")]
    assert {c.user for c in forge.calls} == {"robot"}
    # the credential is in no event of the task
    assert APP_PASSWORD not in str(run.io.events)


async def test_publish_bitbucket_cloud_with_a_step_token_and_clear_refusals(
    forge: ForgeServer, bb: ForgeRunner
) -> None:
    bb.write({"a.txt": "a\n"})
    run = await bb.run(
        [
            step(
                "publish:bitbucketCloud",
                repoUrl=f"{forge.netloc}?workspace=acme&project=PLAT&repo=hers",
                repoVisibility="public",
                token="bb-access-token",
            )
        ]
    )
    assert run.error is None, run.logs()
    assert model(forge).repo("acme", "hers").settings["is_private"] is False
    assert forge.pushes == [("acme/hers", "alice")]
    assert model(forge).repo("acme", "hers").branches().keys() == {"master"}
    for query, message in [
        ("project=PLAT&repo=x", "missing workspace"),
        ("workspace=acme&repo=x", "missing project"),
        ("workspace=other&project=X&repo=x", "no token available for host"),
        ("workspace=acme&project=NOPE&repo=x", "Project NOPE does not exist in workspace acme"),
    ]:
        refused = await bb.run([step("publish:bitbucketCloud", repoUrl=f"{forge.netloc}?{query}")])
        assert refused.error is not None and message in str(refused.error), query
    assert set(model(forge).repos) == {"acme/hers"}


async def test_pull_request_commits_the_workspace_to_a_new_branch(
    forge: ForgeServer, bb: ForgeRunner, tmp_path: Path
) -> None:
    repo = model(forge).add_repo("acme", "catalog", "PLAT")
    seed_bare(repo.path, "main", {"README.md": "catalog\n"}, "seed")
    bb.write({"services/svc.yaml": "kind: Component\n"})
    run = await bb.run(
        [
            step(
                "publish:bitbucketCloud:pull-request",
                "pr",
                repoUrl=f"{forge.netloc}?workspace=acme&repo=catalog",
                title="Add svc",
                description="Registers svc",
                sourceBranch="add-svc",
                gitAuthorName="Template Bot",
                gitAuthorEmail="bot@example.com",
            )
        ]
    )
    assert run.error is None, run.logs()
    assert run.step_output("pr") == {"pullRequestUrl": f"{forge.url}/acme/catalog/pull-requests/1"}
    checkout = clone(repo.path, tmp_path / "clone", "add-svc")
    assert (checkout / "services" / "svc.yaml").read_text() == "kind: Component\n"
    assert (checkout / "README.md").read_text() == "catalog\n"
    assert git(repo.path, "log", "-1", "--format=%s|%an|%ae", "add-svc").strip() == (
        "Registers svc|Template Bot|bot@example.com"
    )
    [pull] = repo.pulls
    assert (pull["source"], pull["destination"], pull["title"]) == ("add-svc", "main", "Add svc")
    assert pull["summary"] == "Registers svc" and pull["state"] == "OPEN"
    # an existing source branch is used as it is, as Backstage does
    seed_bare(repo.path, "ready", {"README.md": "ready\n"}, "prepared")
    before = repo.branches()["ready"]
    again = await bb.run(
        [
            step(
                "publish:bitbucketCloud:pull-request",
                repoUrl=f"{forge.netloc}?workspace=acme&repo=catalog",
                title="Ready",
                sourceBranch="ready",
                targetBranch="main",
            )
        ]
    )
    assert again.error is None, again.logs()
    assert repo.branches()["ready"] == before and repo.pulls[1]["source"] == "ready"


BITBUCKET_CLOUD_EXAMPLES = [
    pytest.param(item.id, index, id=f"{item.id}#{index}")
    for item in ActionRegistry.builtin().list()
    if item.id.startswith("publish:bitbucketCloud")
    for index in range(len(item.examples))
]


@pytest.mark.parametrize(("action_id", "index"), BITBUCKET_CLOUD_EXAMPLES)
async def test_every_documented_example_runs_against_the_forge(
    forge: ForgeServer, tmp_path: Path, action_id: str, index: int
) -> None:
    repo = model(forge).add_repo("acme", "catalog", "PLAT")
    seed_bare(repo.path, "main", {"README.md": "catalog\n"}, "seed")
    runner = forge_runner(
        tmp_path / "ex",
        forge,
        kind="bitbucketCloud",
        token=APP_PASSWORD,
        username="robot",
        host="bitbucket.org",
        owners=("acme",),
    )
    runner.write({"README.md": "hi\n"})
    example = ActionRegistry.builtin().get(action_id).examples[index]
    run = await runner.run(yaml.safe_load(example.example)["steps"])
    assert run.error is None, run.logs()
