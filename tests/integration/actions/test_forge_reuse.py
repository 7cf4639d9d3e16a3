"""The publish actions of GitLab, Gitea, Bitbucket and Azure, and the pull (merge)
request actions of GitLab and Bitbucket, run twice: a run interrupted
right after it created its repository or opened its request (it exists, the step's
record of it does not) is followed by a run that finds it (the repository empty or
holding the commit with the step's key; the request by its branches), because the
step's idempotency key says an earlier run may have made it, and reuses it: the same
outputs, one repository, one request. The controls run the same step as a new task (another key):
refused as Backstage refuses it (Bitbucket Cloud opens another, as Backstage does).
(test_publish_reuse.py has GitHub's.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.forge.azure import AzureDevOps
from support.forge.bare import seed_bare
from support.forge.bitbucket_cloud import BitbucketCloud
from support.forge.bitbucket_server import BitbucketServer
from support.forge.gitea import Gitea
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


# -- publish:<forge>: the repository an interrupted run created ------------------------
@dataclass
class Publish:
    kind: str
    model: Any
    step: Callable[[str], dict[str, Any]]  # the forge's netloc -> the step
    repos: Callable[[], int]  # how many repositories the forge has
    username: str | None = None


def publish_gitea(root: Path) -> Publish:
    model = Gitea(root, tokens={TOKEN: "robot"}, users=["robot"], orgs={"acme": ["robot"]})
    return Publish(
        "gitea",
        model,
        lambda netloc: step("publish:gitea", "publish", repoUrl=f"{netloc}?owner=acme&repo=svc"),
        lambda: len(model.repos),
        username="robot",
    )


def publish_gitlab(root: Path) -> Publish:
    model = GitLab(root, tokens={TOKEN: "robot"}, users=["robot"], groups={"acme": ["robot"]})
    repo_url = "?owner=acme&repo=svc"
    return Publish(
        "gitlab",
        model,
        lambda netloc: step("publish:gitlab", "publish", repoUrl=netloc + repo_url),
        lambda: len(model.projects),
    )


def publish_bitbucket_cloud(root: Path) -> Publish:
    workspaces = {"acme": (["PLAT"], ["robot"])}
    model = BitbucketCloud(root, tokens={TOKEN: "robot"}, workspaces=workspaces)
    repo_url = "?workspace=acme&project=PLAT&repo=svc"
    return Publish(
        "bitbucketCloud",
        model,
        lambda netloc: step("publish:bitbucketCloud", "publish", repoUrl=netloc + repo_url),
        lambda: len(model.repos),
    )


def publish_bitbucket_server(root: Path) -> Publish:
    model = BitbucketServer(root, tokens={TOKEN: "robot"}, projects={"PLAT": ["robot"]})
    repo_url = "?project=PLAT&repo=svc"
    return Publish(
        "bitbucketServer",
        model,
        lambda netloc: step("publish:bitbucketServer", "publish", repoUrl=netloc + repo_url),
        lambda: len(model.repos),
    )


def publish_azure(root: Path) -> Publish:
    organizations = {"acme": (["platform"], ["robot"])}
    model = AzureDevOps(root, tokens={TOKEN: "robot"}, organizations=organizations)
    repo_url = "?organization=acme&project=platform&repo=svc"
    return Publish(
        "azure",
        model,
        lambda netloc: step("publish:azure", "publish", repoUrl=netloc + repo_url),
        lambda: len(model.repos),
    )


PUBLISHERS = {
    "azure": publish_azure,
    "bitbucketCloud": publish_bitbucket_cloud,
    "bitbucketServer": publish_bitbucket_server,
    "gitea": publish_gitea,
    "gitlab": publish_gitlab,
}


@pytest.mark.parametrize("host", sorted(PUBLISHERS))
async def test_publish_adopts_the_repository_an_interrupted_run_created(
    host: str, tmp_path: Path
) -> None:
    case = PUBLISHERS[host](tmp_path / "forge")
    with serving(case.model) as forge:
        runner = forge_runner(
            tmp_path / "run", forge, kind=case.kind, token=TOKEN, username=case.username
        )
        runner.write({"README.md": "# svc\n"})
        publish = case.step(forge.netloc)
        first = ok(await runner.run([publish]))
        again = ok(await runner.run([], task=first.interrupted("publish")))
        assert again.step_output("publish") == first.step_output("publish")
        assert case.repos() == 1
        assert any("created by an earlier run of this step" in line for line in again.logs())
        other = await runner.run([publish])  # a new task: the name is taken
        assert other.error is not None and case.repos() == 1
