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
    if item.id == "publish:azure"
    for index in range(len(item.examples))
]


@pytest.mark.parametrize(("action_id", "index"), AZURE_EXAMPLES)
async def test_every_documented_example_runs_against_the_forge(
    forge: ForgeServer, tmp_path: Path, action_id: str, index: int
) -> None:
    runner = forge_runner(
        tmp_path / "ex", forge, kind="azure", token=PAT, host="dev.azure.com", owners=("acme",)
    )
    runner.write({"README.md": "hi\n"})
    example = ActionRegistry.builtin().get(action_id).examples[index]
    run = await runner.run(yaml.safe_load(example.example)["steps"])
    assert run.error is None, run.logs()
