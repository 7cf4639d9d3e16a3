"""The pull (merge) request actions of GitLab and Bitbucket run twice: a run interrupted
right after it opened its request (the request exists, the step's record of it does
not) is followed by a run that finds the request by its branches, because the step's
idempotency key says an earlier run may have opened it, and reuses it: the same
outputs, one request. The controls run the same step as a new task (another key):
refused as Backstage refuses it. (test_publish_reuse.py has GitHub's.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.forge.bare import seed_bare
from support.forge.bitbucket_cloud import BitbucketCloud
from support.forge.bitbucket_server import BitbucketServer
from support.forge.gitlab import GitLab
from support.forge.harness import Run, forge_runner, serving, step

TOKEN = "request-bot-token"


def ok(run: Run) -> Run:
    assert run.error is None, "\n".join(run.logs())
    return run


@dataclass
class Case:
    """One host's request action, on a repository ``catalog`` with one commit."""

    kind: str
    model: Any
    requests: Callable[[], list[dict[str, Any]]]  # the requests, as the model keeps them
    step: Callable[[str], dict[str, Any]]  # the forge's netloc -> the step
    refused: str | None  # how a new task's run is refused (None: it opens another)


def gitlab(root: Path) -> Case:
    model = GitLab(root, tokens={TOKEN: "robot"}, users=["robot"], groups={"acme": ["robot"]})
    project = model.add_project("acme", "catalog")
    seed_bare(project.path, "main", {"README.md": "catalog\n"}, "seed")
    return Case(
        "gitlab",
        model,
        lambda: project.merge_requests,
        lambda netloc: step(
            "publish:gitlab:merge-request",
            "pr",
            repoUrl=f"{netloc}?owner=acme&repo=catalog",
            branchName="add-svc",
            title="Add svc",
        ),
        "branch already exists",
    )


def bitbucket_server(root: Path) -> Case:
    model = BitbucketServer(root, tokens={TOKEN: "robot"}, projects={"PLAT": ["robot"]})
    repo = model.add_repo("PLAT", "catalog")
    seed_bare(repo.path, "master", {"README.md": "catalog\n"}, "seed")
    return Case(
        "bitbucketServer",
        model,
        lambda: repo.pulls,
        lambda netloc: step(
            "publish:bitbucketServer:pull-request",
            "pr",
            repoUrl=f"{netloc}?project=PLAT&repo=catalog",
            title="Add svc",
            sourceBranch="add-svc",
        ),
        "Only one pull request",
    )


def bitbucket_cloud(root: Path) -> Case:
    workspaces = {"acme": (["PLAT"], ["robot"])}
    model = BitbucketCloud(root, tokens={TOKEN: "robot"}, workspaces=workspaces)
    repo = model.add_repo("acme", "catalog", "PLAT")
    seed_bare(repo.path, "main", {"README.md": "catalog\n"}, "seed")
    return Case(
        "bitbucketCloud",
        model,
        lambda: repo.pulls,
        lambda netloc: step(
            "publish:bitbucketCloud:pull-request",
            "pr",
            repoUrl=f"{netloc}?workspace=acme&repo=catalog",
            title="Add svc",
            sourceBranch="add-svc",
        ),
        None,
    )


CASES = {"gitlab": gitlab, "bitbucketServer": bitbucket_server, "bitbucketCloud": bitbucket_cloud}


@pytest.mark.parametrize("host", sorted(CASES))
async def test_request_is_reused_after_an_interruption(host: str, tmp_path: Path) -> None:
    case = CASES[host](tmp_path / "forge")
    with serving(case.model) as forge:
        runner = forge_runner(tmp_path / "run", forge, kind=case.kind, token=TOKEN)
        runner.write({"svc.yaml": "kind: Component\n"})
        pr = case.step(forge.netloc)
        first = ok(await runner.run([pr]))
        again = ok(await runner.run([], task=first.interrupted("pr")))
        assert again.step_output("pr") == first.step_output("pr")
        assert len(case.requests()) == 1
        assert any("opened by an earlier run of this step" in line for line in again.logs())
        other = await runner.run([pr])
        if case.refused is None:
            assert other.error is None and len(case.requests()) == 2  # as Backstage's
        else:
            assert other.error is not None and case.refused in other.error.message
