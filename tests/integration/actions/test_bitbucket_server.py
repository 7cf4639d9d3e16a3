"""publish:bitbucketServer and publish:bitbucketServer:pull-request against a loopback
Bitbucket Server that checks every call against its API description
(tests/support/forge/specs/bitbucket-server.yaml); pushes are cloned back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from falsework.actions import ActionRegistry
from support.forge import ForgeServer
from support.forge.bare import seed_bare
from support.forge.bitbucket_server import BitbucketServer
from support.forge.harness import ForgeRunner, clone, forge_runner, git, step

TOKEN = "bbs-http-access-token"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = BitbucketServer(
        tmp_path / "forge",
        tokens={TOKEN: "robot", "bob-password": "bob"},
        projects={"PLAT": ["robot", "bob"], "OPS": ["robot"]},
    )
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture
def bbs(forge: ForgeServer, tmp_path: Path) -> ForgeRunner:
    return forge_runner(
        tmp_path / "run", forge, kind="bitbucketServer", token=TOKEN, owners=("PLAT",)
    )


def model(forge: ForgeServer) -> BitbucketServer:
    assert isinstance(forge.host, BitbucketServer)
    return forge.host


async def test_publish_bitbucket_server_creates_pushes_and_enables_lfs(
    forge: ForgeServer, bbs: ForgeRunner, tmp_path: Path
) -> None:
    bbs.write({"README.md": "# svc\n", "src/app.py": "print('hi')\n"})
    run = await bbs.run(
        [
            step(
                "publish:bitbucketServer",
                "publish",
                repoUrl=f"{forge.netloc}?project=PLAT&repo=svc",
                description="A service",
                defaultBranch="main",
                enableLFS=True,
                gitCommitMessage="Create svc",
                gitAuthorName="Template Bot",
                gitAuthorEmail="bot@example.com",
            )
        ]
    )
    assert run.error is None, run.logs()
    repo = model(forge).repo("PLAT", "svc")
    assert run.step_output("publish") == {
        "remoteUrl": f"{forge.url}/scm/PLAT/svc.git",
        "repoContentsUrl": f"{forge.url}/projects/PLAT/repos/svc/browse",
        "commitHash": git(repo.path, "rev-parse", "refs/heads/main").strip(),
    }
    assert repo.settings == {
        "defaultBranch": "main",
        "public": False,
        "description": "A service",
        "lfs": True,
    }
    checkout = clone(repo.path, tmp_path / "clone")
    assert (checkout / "src" / "app.py").read_text() == "print('hi')\n"
    assert git(repo.path, "log", "-1", "--format=%s|%an|%ae", "main").strip() == (
        "Create svc|Template Bot|bot@example.com"
    )
    # a token: a bearer token to the API and to git
    assert forge.pushes == [("scm/PLAT/svc", "robot")]
    assert {c.user for c in forge.calls} == {"robot"}
    # the credential is in no event of the task
    assert TOKEN not in str(run.io.events)


async def test_publish_bitbucket_server_with_username_and_password_and_refusals(
    forge: ForgeServer, tmp_path: Path
) -> None:
    runner = forge_runner(
        tmp_path / "pw",
        forge,
        kind="bitbucketServer",
        token="bob-password",
        username="bob",
        owners=("PLAT", "OPS"),
    )
    runner.write({"a.txt": "a\n"})
    run = await runner.run(
        [
            step(
                "publish:bitbucketServer",
                repoUrl=f"{forge.netloc}?project=PLAT&repo=bobs",
                repoVisibility="public",
            )
        ]
    )
    assert run.error is None, run.logs()
    assert model(forge).repo("PLAT", "bobs").settings["public"] is True
    assert forge.pushes == [("scm/PLAT/bobs", "bob")]
    assert model(forge).repo("PLAT", "bobs").branches().keys() == {"master"}
    for query, message in [
        ("repo=x", "missing project"),
        ("project=OPS&repo=x", "401 to POST /rest/api/1.0/projects/OPS/repos: You are not"),
        ("project=NOPE&repo=x", "no token available for host"),
    ]:
        refused = await runner.run(
            [step("publish:bitbucketServer", repoUrl=f"{forge.netloc}?{query}")]
        )
        assert refused.error is not None and message in str(refused.error), query
    assert set(model(forge).repos) == {"plat/bobs"}


async def test_pull_request_commits_the_workspace_to_a_new_branch(
    forge: ForgeServer, bbs: ForgeRunner, tmp_path: Path
) -> None:
    repo = model(forge).add_repo("PLAT", "catalog")
    seed_bare(repo.path, "master", {"README.md": "catalog\n"}, "seed")
    seed_bare(repo.path, "master-old", {"README.md": "old\n"}, "a branch whose name holds another")
    bbs.write({"services/svc.yaml": "kind: Component\n"})
    run = await bbs.run(
        [
            step(
                "publish:bitbucketServer:pull-request",
                "pr",
                repoUrl=f"{forge.netloc}?project=PLAT&repo=catalog",
                title="Add svc",
                description="Registers svc",
                sourceBranch="add-svc",
                reviewers=["alice", "bob"],
            )
        ]
    )
    assert run.error is None, run.logs()
    assert run.step_output("pr") == {
        "pullRequestUrl": f"{forge.url}/projects/PLAT/repos/catalog/pull-requests/1"
    }
    checkout = clone(repo.path, tmp_path / "clone", "add-svc")
    assert (checkout / "services" / "svc.yaml").read_text() == "kind: Component\n"
    assert (checkout / "README.md").read_text() == "catalog\n"
    assert git(repo.path, "log", "-1", "--format=%s|%an", "add-svc").strip() == (
        "Registers svc|Scaffolder"
    )
    [pull] = repo.pulls
    assert (pull["source"], pull["target"], pull["reviewers"]) == (
        "add-svc",
        "master",
        ["alice", "bob"],
    )
    # an existing source branch is used as it is
    before = repo.branches()["master-old"]
    again = await bbs.run(
        [
            step(
                "publish:bitbucketServer:pull-request",
                repoUrl=f"{forge.netloc}?project=PLAT&repo=catalog",
                title="Old",
                sourceBranch="master-old",
                targetBranch="master",
            )
        ]
    )
    assert again.error is None, again.logs()
    assert repo.branches()["master-old"] == before and repo.pulls[1]["source"] == "master-old"
    missing = await bbs.run(
        [
            step(
                "publish:bitbucketServer:pull-request",
                repoUrl=f"{forge.netloc}?project=PLAT&repo=catalog",
                title="Nowhere",
                sourceBranch="x",
                targetBranch="nope",
            )
        ]
    )
    assert missing.error is not None and "target branch 'nope' does not exist" in str(missing.error)


BITBUCKET_SERVER_EXAMPLES = [
    pytest.param(item.id, index, id=f"{item.id}#{index}")
    for item in ActionRegistry.builtin().list()
    if item.id.startswith("publish:bitbucketServer")
    for index in range(len(item.examples))
]


@pytest.mark.parametrize(("action_id", "index"), BITBUCKET_SERVER_EXAMPLES)
async def test_every_documented_example_runs_against_the_forge(
    forge: ForgeServer, tmp_path: Path, action_id: str, index: int
) -> None:
    repo = model(forge).add_repo("PLAT", "catalog")
    seed_bare(repo.path, "master", {"README.md": "catalog\n"}, "seed")
    runner = forge_runner(
        tmp_path / "ex",
        forge,
        kind="bitbucketServer",
        token=TOKEN,
        host="bitbucket.example.com",
        owners=("PLAT",),
    )
    runner.write({"README.md": "hi\n"})
    example = ActionRegistry.builtin().get(action_id).examples[index]
    run = await runner.run(yaml.safe_load(example.example)["steps"])
    assert run.error is None, run.logs()
