"""scaffold:update on every forge but GitHub (test_forge.py has GitHub's whole story):
a repository made from v1 by a real task and published to the loopback forge, a team
commit that conflicts with v3, then the update as the host's change request (GitLab's
merge request, Gitea's, Bitbucket's and Azure's pull requests): marked as a draft the
way the host marks them, titled "[conflicts] …", listing the file; a rerun reuses it;
an update to v2 merges cleanly and is a change request of its own, no draft.
Every call is checked against the host's transcribed API description."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.forge import ForgeServer
from support.forge.azure import AzureDevOps
from support.forge.bitbucket_cloud import BitbucketCloud
from support.forge.bitbucket_server import BitbucketServer
from support.forge.gitea import Gitea
from support.forge.gitlab import GitLab
from support.forge.harness import clone, serving
from support.update_runs import TOKEN, create_from_v1, make_runner, output, run
from support.updates import TemplateRepo, git

TITLE = "[conflicts] Update template:default/service from v1 to v3"
BRANCH = "falsework/update/service-v3"


@dataclass
class Host:
    """One forge with the repository ``payments`` on it, as the test needs it."""

    kind: str
    model: Any
    bare: Path  # the repository's bare git directory
    repo_url: Callable[[str], str]  # netloc -> the step's repoUrl
    clone_url: Callable[[str], str]  # the server's URL -> the repository's git URL
    requests: Callable[[], list[dict[str, Any]]]  # its change requests, as the model keeps them
    title: Callable[[dict[str, Any]], str]
    draft: Callable[[dict[str, Any]], bool]
    url: Callable[[str, int], str]  # the server's URL, number -> the change request's page
    compare: Callable[[str], str]  # the server's URL -> compareUrl of BRANCH into main
    username: str | None = None


def gitlab(root: Path) -> Host:
    model = GitLab(root, tokens={TOKEN: "robot"}, users=["robot"], groups={"acme": ["robot"]})
    project = model.add_project("acme", "payments")
    return Host(
        "gitlab",
        model,
        project.path,
        lambda netloc: f"{netloc}?owner=acme&repo=payments",
        lambda url: f"{url}/acme/payments.git",
        lambda: project.merge_requests,
        lambda mr: str(mr["title"]),
        # GitLab's draft is the title's prefix
        lambda mr: str(mr["title"]).startswith("Draft: "),
        lambda url, n: f"{url}/acme/payments/-/merge_requests/{n}",
        lambda url: f"{url}/acme/payments/-/compare/main...{BRANCH}",
    )


def gitea(root: Path) -> Host:
    model = Gitea(root, tokens={TOKEN: "robot"}, users=["robot"], orgs={"acme": ["robot"]})
    repo = model.new_repo("acme", "payments", {}, "main")
    return Host(
        "gitea",
        model,
        repo.path,
        lambda netloc: f"{netloc}?owner=acme&repo=payments",
        lambda url: f"{url}/acme/payments.git",
        lambda: repo.pulls,
        lambda pull: str(pull["title"]),
        lambda pull: str(pull["title"]).startswith("WIP: "),
        lambda url, n: f"{url}/acme/payments/pulls/{n}",
        lambda url: f"{url}/acme/payments/compare/main...{BRANCH}",
        username="robot",
    )


def bitbucket_cloud(root: Path) -> Host:
    model = BitbucketCloud(
        root, tokens={TOKEN: "robot"}, workspaces={"acme": (["PLAT"], ["robot"])}
    )
    repo = model.add_repo("acme", "payments", "PLAT")
    return Host(
        "bitbucketCloud",
        model,
        repo.path,
        lambda netloc: f"{netloc}?workspace=acme&project=PLAT&repo=payments",
        lambda url: f"{url}/acme/payments.git",
        lambda: repo.pulls,
        lambda pull: str(pull["title"]),
        lambda pull: bool(pull["draft"]),
        lambda url, n: f"{url}/acme/payments/pull-requests/{n}",
        lambda url: f"{url}/acme/payments/branches/compare/falsework/update/service-v3%0Dmain#diff",
    )


def bitbucket_server(root: Path) -> Host:
    model = BitbucketServer(root, tokens={TOKEN: "robot"}, projects={"PLAT": ["robot"]})
    repo = model.new_repo("PLAT", "payments", {"defaultBranch": "main"}, "main")
    base = "/projects/PLAT/repos/payments"
    return Host(
        "bitbucketServer",
        model,
        repo.path,
        lambda netloc: f"{netloc}?project=PLAT&repo=payments",
        lambda url: f"{url}/scm/PLAT/payments.git",
        lambda: repo.pulls,
        lambda pull: str(pull["title"]),
        lambda pull: bool(pull["draft"]),
        lambda url, n: f"{url}{base}/pull-requests/{n}",
        lambda url: (
            f"{url}{base}/compare/diff?sourceBranch=refs%2Fheads%2F"
            "falsework%2Fupdate%2Fservice-v3&targetBranch=refs%2Fheads%2Fmain"
        ),
    )


def azure(root: Path) -> Host:
    model = AzureDevOps(
        root, tokens={TOKEN: "robot"}, organizations={"acme": (["platform"], ["robot"])}
    )
    repo = model.add_repo("acme", "platform", "payments")
    web = "/acme/platform/_git/payments"
    return Host(
        "azure",
        model,
        repo.path,
        lambda netloc: f"{netloc}?organization=acme&project=platform&repo=payments",
        lambda url: f"{url}{web}",
        lambda: repo.pulls,
        lambda pull: str(pull["title"]),
        lambda pull: bool(pull["isDraft"]),
        lambda url, n: f"{url}{web}/pullrequest/{n}",
        lambda url: (
            f"{url}{web}/branchCompare?baseVersion=GBmain&targetVersion=GB"
            "falsework%2Fupdate%2Fservice-v3"
        ),
    )


HOSTS = {
    "gitlab": gitlab,
    "gitea": gitea,
    "bitbucketCloud": bitbucket_cloud,
    "bitbucketServer": bitbucket_server,
    "azure": azure,
}


@pytest.fixture(params=sorted(HOSTS))
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Host:
    return HOSTS[request.param](tmp_path / "forge")


@pytest.fixture
def forge(host: Host) -> Iterator[ForgeServer]:
    server = ForgeServer(host.model).start()
    yield server
    server.stop()
    assert server.take_violations() == []


async def test_update_opens_the_hosts_change_request_once(
    tmp_path: Path, host: Host, forge: ForgeServer, template_repo: TemplateRepo
) -> None:
    runner = make_runner(tmp_path, forge, host.kind, host.username)
    await create_from_v1(runner, template_repo, host.clone_url(forge.url))
    work = clone(host.bare, tmp_path / "team", "main")
    (work / "README.md").write_text("# payments (team)\n\nOwned by team-a.\n")
    git("commit", "-qam", "team: README", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)

    step = {
        "id": "update",
        "action": "scaffold:update",
        "input": {"repoUrl": host.repo_url(forge.netloc)},
    }
    first = output(await run(runner, [step]))
    assert (first["fromVersion"], first["version"]) == ("v1", "v3")
    assert first["branch"] == BRANCH and first["conflicts"] == ["README.md"]
    assert first["pullRequestNumber"] == 1
    assert first["pullRequestUrl"] == host.url(forge.url, 1)
    assert first["compareUrl"] == host.compare(forge.url)
    assert first["scaffold"]["update"]["pullRequestUrl"] == host.url(forge.url, 1)
    # the same repository the server recorded when publish:git made it
    assert first["scaffold"]["repository"] == f"{host.clone_url(forge.url)}#main"
    (request,) = host.requests()
    assert host.draft(request) is True
    assert host.title(request).endswith(TITLE)
    pushed = clone(host.bare, tmp_path / "pr", BRANCH)
    assert (pushed / "README.md").read_text().startswith("<<<<<<< project\n")

    # a rerun (a retry, a recovery) finds the open one and opens no second
    again = output(await run(runner, [step]))
    assert again["commit"] == first["commit"]
    assert again["pullRequestNumber"] == 1 and again["pullRequestUrl"] == first["pullRequestUrl"]
    assert len(host.requests()) == 1

    # another version is another change request; merged cleanly, it is no draft
    v2 = {**step, "input": {**step["input"], "to": "v2"}}
    second = output(await run(runner, [v2]))
    assert second["branch"] == "falsework/update/service-v2" and second["conflicts"] == []
    assert second["pullRequestNumber"] == 2
    assert second["pullRequestUrl"] == host.url(forge.url, 2)
    _, request = host.requests()
    assert host.draft(request) is False
    assert host.title(request) == "Update template:default/service from v1 to v2"


async def test_a_repo_url_on_no_configured_forge_is_refused_by_name(tmp_path: Path) -> None:
    with serving(gitea(tmp_path / "forge").model) as forge:
        runner = make_runner(tmp_path, forge, "gitea", "robot")
        step = {
            "id": "update",
            "action": "scaffold:update",
            "input": {"repoUrl": "git.nowhere.example?owner=acme&repo=payments"},
        }
        refused = r"no integration is configured for host 'git\.nowhere\.example'"
        with pytest.raises(AssertionError, match=refused):
            await run(runner, [step])
