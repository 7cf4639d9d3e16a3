"""publish:azure against a loopback Azure DevOps that checks every call against its API
description (tests/support/forge/specs/azure.yaml); the pushed repository (served at
Azure's /org/project/_git/repo) is cloned back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from falsework.actions import ActionRegistry
from support.forge import ForgeServer
from support.forge.azure import AzureDevOps
from support.forge.bare import seed_bare
from support.forge.harness import ForgeRunner, clone, forge_runner, git, step

PAT = "azure-personal-access-token"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = AzureDevOps(
        tmp_path / "forge",
        tokens={PAT: "robot", "alices-pat": "alice"},
        organizations={"acme": (["platform"], ["robot", "alice"]), "other": (["x"], ["robot"])},
    )
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture
def az(forge: ForgeServer, tmp_path: Path) -> ForgeRunner:
    return forge_runner(tmp_path / "run", forge, kind="azure", token=PAT, owners=("acme",))


def model(forge: ForgeServer) -> AzureDevOps:
    assert isinstance(forge.host, AzureDevOps)
    return forge.host


async def test_publish_azure_creates_and_pushes(
    forge: ForgeServer, az: ForgeRunner, tmp_path: Path
) -> None:
    az.write({"README.md": "# svc\n", "src/app.py": "print('hi')\n"})
    run = await az.run(
        [
            step(
                "publish:azure",
                "publish",
                repoUrl=f"{forge.netloc}?organization=acme&project=platform&repo=svc",
                defaultBranch="main",
                gitCommitMessage="Create svc",
                gitAuthorName="Template Bot",
                gitAuthorEmail="bot@example.com",
            )
        ]
    )
    assert run.error is None, run.logs()
    repo = model(forge).repo("acme", "platform", "svc")
    out = run.step_output("publish")
    web = f"{forge.url}/acme/platform/_git/svc"
    assert (out["remoteUrl"], out["repoContentsUrl"]) == (web, web)
    assert out["commitHash"] == git(repo.path, "rev-parse", "refs/heads/main").strip()
    assert len(out["repositoryId"]) == 36
    checkout = clone(repo.path, tmp_path / "clone")
    assert (checkout / "src" / "app.py").read_text() == "print('hi')\n"
    assert git(repo.path, "log", "-1", "--format=%s|%an|%ae", "main").strip() == (
        "Create svc|Template Bot|bot@example.com"
    )
    assert forge.pushes == [("acme/platform/svc", "robot")]
    assert forge.calls[0].query == {"api-version": "7.1"}
    assert PAT not in str(run.io.events)


async def test_publish_azure_with_a_step_token_and_clear_refusals(
    forge: ForgeServer, az: ForgeRunner
) -> None:
    az.write({"a.txt": "a\n"})
    run = await az.run(
        [
            step(
                "publish:azure",
                repoUrl=f"{forge.netloc}?organization=acme&project=platform&repo=hers",
                token="alices-pat",
            )
        ]
    )
    assert run.error is None, run.logs()
    assert model(forge).repo("acme", "platform", "hers").branches().keys() == {"master"}
    assert forge.pushes == [("acme/platform/hers", "alice")]
    for query, message in [
        ("project=platform&repo=x", "missing organization"),
        ("organization=acme&repo=x", "missing project"),
        ("organization=other&project=x&repo=x", "No credentials provided https://"),
        ("organization=acme&project=nope&repo=x", "TF200016: The following project does not"),
        ("organization=acme&project=platform&repo=hers", "TF400948: A Git repository with"),
    ]:
        refused = await az.run([step("publish:azure", repoUrl=f"{forge.netloc}?{query}")])
        assert refused.error is not None and message in str(refused.error), query


AZURE_EXAMPLES = [
    pytest.param(item.id, index, id=f"{item.id}#{index}")
    for item in ActionRegistry.builtin().list()
    if item.id.startswith("publish:azure")
    for index in range(len(item.examples))
]


@pytest.mark.parametrize(("action_id", "index"), AZURE_EXAMPLES)
async def test_every_documented_example_runs_against_the_forge(
    forge: ForgeServer, tmp_path: Path, action_id: str, index: int
) -> None:
    runner = forge_runner(
        tmp_path / "ex", forge, kind="azure", token=PAT, host="dev.azure.com", owners=("acme",)
    )
    seed_bare(model(forge).add_repo("acme", "platform", "catalog").path, "main", {"a": "a"}, "s")
    runner.write({"README.md": "hi\n"})
    example = ActionRegistry.builtin().get(action_id).examples[index]
    run = await runner.run(yaml.safe_load(example.example)["steps"])
    assert run.error is None, run.logs()


async def test_pull_request_commits_to_its_branch_and_opens_or_updates(
    forge: ForgeServer, az: ForgeRunner, tmp_path: Path
) -> None:
    repo = model(forge).add_repo("acme", "platform", "catalog")
    files = {"README.md": "catalog\n", "services/svc/old.txt": "old\n"}
    seed_bare(repo.path, "main", files, "seed")
    az.write({"svc/catalog-info.yaml": "kind: Component\n"})
    given = {
        "repoUrl": f"{forge.netloc}?organization=acme&project=platform&repo=catalog",
        "sourceBranchName": "add-svc",
        "title": "Add svc",
        "description": "Registers svc",
        "sourcePath": "svc",
        "targetPath": "services/svc",
        "filesToDelete": ["old.txt"],  # in targetPath, as in Backstage
        "reviewers": ["bob@acme.test"],
        "teamReviewers": ["[platform]\\Reviewers"],
        "draft": True,
    }
    run = await az.run([step("publish:azure:pull-request", "pr", **given)])
    assert run.error is None, run.logs()
    assert run.step_output("pr") == {
        "remoteUrl": f"{forge.url}/acme/platform/_git/catalog/pullrequest/1",
        "pullRequestId": 1,
        "targetBranchName": "main",
    }
    checkout = clone(repo.path, tmp_path / "clone", "add-svc")
    assert (checkout / "services" / "svc" / "catalog-info.yaml").read_text() == "kind: Component\n"
    assert not (checkout / "services" / "svc" / "old.txt").exists()
    assert (checkout / "README.md").exists()
    assert git(repo.path, "log", "-1", "--format=%s|%an", "add-svc").strip() == (
        "Automated commit from the scaffolder. Added files: catalog-info.yaml|Scaffolder"
    )
    [pull] = repo.pulls
    assert (pull["sourceRefName"], pull["targetRefName"]) == (
        "refs/heads/add-svc",
        "refs/heads/main",
    )
    assert pull["isDraft"] is True and pull["reviewers"] == [
        {"uniqueName": "bob@acme.test"},
        {"uniqueName": "[platform]\\Reviewers", "isContainer": True},
    ]
    # again with update: a second commit on the same branch, the same request updated
    az.write({"svc/more.txt": "more\n"})
    again = await az.run(
        [
            step(
                "publish:azure:pull-request",
                "pr",
                **{**given, "title": "Add svc (v2)", "update": True, "commitMessage": "More"},
            )
        ]
    )
    assert again.error is None, again.logs()
    assert again.step_output("pr")["pullRequestId"] == 1 and len(repo.pulls) == 1
    assert repo.pulls[0]["title"] == "Add svc (v2)"
    assert git(repo.path, "log", "--format=%s", "add-svc").splitlines()[:2] == [
        "More",
        "Automated commit from the scaffolder. Added files: catalog-info.yaml",
    ]
    # nothing to change: no request with createWhenEmpty false, else one from a new
    # branch at the target's commit
    az.write({"same/README.md": "catalog\n"})
    same = {**given, "sourcePath": "same", "targetPath": None, "filesToDelete": None}
    for branch, when_empty in [("noop", False), ("empty", True)]:
        empty = await az.run(
            [
                step(
                    "publish:azure:pull-request",
                    "pr",
                    **{**same, "sourceBranchName": branch, "createWhenEmpty": when_empty},
                )
            ]
        )
        assert empty.error is None, empty.logs()
    branches = repo.branches()
    assert "noop" not in branches and branches["empty"] == branches["main"]
    assert [p["sourceRefName"] for p in repo.pulls] == ["refs/heads/add-svc", "refs/heads/empty"]
