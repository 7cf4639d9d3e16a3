"""The Bitbucket Server (Data Center) actions of Backstage's
``@backstage/plugin-scaffolder-backend-module-bitbucket-server``, with their ids, inputs,
outputs and defaults: ``publish:bitbucketServer`` and
``publish:bitbucketServer:pull-request``.

Credentials: a step's ``token``, else the integration's (``integrations.bitbucketServer[]``:
a ``token``, sent as a bearer token to the API and to git, or ``username`` with
``password``, sent as Basic), used only for the projects its ``allowedOwners`` names.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import Field

from falsework.actions.builtin.forge import (
    ChangeRequest,
    FirstPush,
    Forge,
    GitAuth,
    Proposal,
    Repository,
    commit_workspace,
    made_earlier,
    opened_earlier,
    push_contents,
    record_publish,
)
from falsework.actions.builtin.forgeapi import (
    PUBLISH_OUTPUT,
    PULL_REQUEST_OUTPUT,
    ApiError,
    ForgeApi,
    credential,
    forge_api,
    record_pull_request,
    refuse_signing,
)
from falsework.actions.builtin.gitpush import Author
from falsework.actions.context import ActionContext
from falsework.actions.contract import Action, ActionInput, action
from falsework.actions.integrations import ForgeHost, Integrations, Kind, RepoUrl
from falsework.actions.rehearsal import PLACEHOLDER_COMMIT
from falsework.errors import InputError

REPO_URL = "Accepts the format `bitbucket.example.com?project=PROJECT&repo=repo`"
TOKEN = "The token to use for authorization to Bitbucket Server (default: the integration's)"


class _Auth:
    """The API's authorization header and how git authenticates, for one credential."""

    def __init__(self, host: ForgeHost, secret: str, from_step: bool) -> None:
        self.secret = secret
        self.bearer = from_step or not host.username
        self.username = "x-token-auth" if self.bearer else str(host.username)
        if self.bearer:
            self.header = f"Bearer {secret}"
        else:
            basic = base64.b64encode(f"{host.username}:{secret}".encode()).decode()
            self.header = f"Basic {basic}"


def _project(repo: RepoUrl, repo_url: str) -> str:
    if not repo.project:
        raise InputError(
            f"Invalid URL provider was included in the repo URL to create {repo_url}, "
            "missing project"
        )
    return repo.project


def _repo_path(project: str, slug: str) -> str:
    return f"/projects/{quote(project, safe='')}/repos/{quote(slug, safe='')}"


def _http_clone(found: dict[str, Any]) -> str:
    return str(next(x["href"] for x in found["links"]["clone"] if x.get("name") == "http"))


def _web(host: ForgeHost) -> str:
    return host.api_base_url.rstrip("/").removesuffix("/rest/api/1.0")


class PublishInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    description: str | None = Field(None, description="Repository description")
    repo_visibility: Literal["private", "public"] = Field(
        "private", description="Visibility of the repository"
    )
    default_branch: str = Field("master", description="The default branch")
    source_path: str | None = Field(
        None, description="Workspace folder to publish as the repository root (default: all)"
    )
    enable_lfs: bool = Field(
        False, alias="enableLFS", description="Enable Git LFS for the repository"
    )
    token: str | None = Field(None, description=TOKEN)
    git_commit_message: str = Field("initial commit", description="The commit message")
    git_author_name: str | None = Field(None, description="Commit author name (Scaffolder)")
    git_author_email: str | None = Field(None, description="Commit author email")
    sign_commit: bool | None = Field(None, description="Sign the commit (no key configured)")


async def record_publish_server(ctx: ActionContext[PublishInput]) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    project = _project(repo, inp.repo_url)
    remote = f"https://{repo.host}/scm/{project}/{repo.repo}.git"
    outputs = {
        "remoteUrl": remote,
        "repoContentsUrl": f"https://{repo.host}{_repo_path(project, repo.repo)}/browse",
        "commitHash": PLACEHOLDER_COMMIT,
    }
    saying = f"Would create the Bitbucket Server repository {remote}"
    await record_publish(ctx, inp.source_path, remote, inp.default_branch, saying, outputs)


@action(
    settings=Integrations,
    id="publish:bitbucketServer",
    recorder=record_publish_server,
    description="Initializes a git repository of the content in the workspace, and "
    "publishes it to Bitbucket Server.",
    input=PublishInput,
    output=PUBLISH_OUTPUT,
    examples=[
        (
            "Publish the workspace to a new repository of a project, with Git LFS",
            "steps:\n  - id: publish\n    name: Publish\n    action: publish:bitbucketServer\n"
            "    input:\n      repoUrl: bitbucket.example.com?project=PLAT&repo=my-service\n"
            "      description: My service\n      defaultBranch: main\n      enableLFS: true\n",
        )
    ],
)
async def publish_bitbucket_server(
    ctx: ActionContext[PublishInput], integrations: Integrations
) -> None:
    inp = ctx.input
    what = "publish:bitbucketServer"
    repo = RepoUrl.parse(inp.repo_url)
    project = _project(repo, inp.repo_url)
    host, secret = credential(integrations, "bitbucketServer", repo, project, inp.token, what)
    refuse_signing(inp.sign_commit)
    auth = _Auth(host, secret, bool(inp.token))
    git = GitAuth(secret, auth.username, auth.bearer)
    async with forge_api(integrations, host, {"Authorization": auth.header}, what) as api:

        async def create() -> dict[str, str]:
            body: dict[str, Any] = {
                "name": repo.repo,
                "defaultBranch": inp.default_branch,
                "public": inp.repo_visibility == "public",
            }
            if inp.description is not None:
                body["description"] = inp.description
            try:
                made = await api.call(
                    "POST", f"/projects/{quote(project, safe='')}/repos", json=body
                )
                ctx.logger.info(f"Created repository {project}/{made['slug']}")
            except ApiError as exc:
                made = await made_earlier(
                    ctx,
                    exc,
                    409,  # Bitbucket Server's answer for a name in use
                    lambda: api.call("GET", _repo_path(project, repo.repo)),
                    _http_clone,
                    inp.default_branch,
                    integrations.git,
                    git,
                )
            clone = _http_clone(made)
            return {
                "remoteUrl": str(clone),
                "repoContentsUrl": str(made["links"]["self"][0]["href"]),
                "slug": str(made["slug"]),
            }

        made = await ctx.checkpoint(f"create.repo.{project}.{repo.repo}", create)
        push = FirstPush(
            inp.source_path,
            inp.default_branch,
            inp.git_commit_message or "initial commit",
            Author.given(inp.git_author_name, inp.git_author_email),
        )
        commit = await push_contents(ctx, "push", made["remoteUrl"], push, integrations.git, git)
        if inp.enable_lfs:
            lfs = f"{_web(host)}/rest/git-lfs/admin{_repo_path(project, made['slug'])}/enabled"
            await api.call("PUT", lfs)
            ctx.logger.info("Enabled Git LFS")
    ctx.output("commitHash", commit)
    ctx.output("remoteUrl", made["remoteUrl"])
    ctx.output("repoContentsUrl", made["repoContentsUrl"])


# -- publish:bitbucketServer:pull-request ---------------------------------------------
class PullRequestInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    title: str = Field(description="The title for the pull request")
    description: str | None = Field(None, description="The description of the pull request")
    target_branch: str | None = Field(
        None, description="Branch to merge into (default: the repository's default branch)"
    )
    source_branch: str = Field(description="Branch of the repository to copy changes to")
    reviewers: list[str] | None = Field(None, description="User names of the reviewers")
    token: str | None = Field(None, description=TOKEN)
    git_author_name: str | None = Field(None, description="Commit author name (Scaffolder)")
    git_author_email: str | None = Field(None, description="Commit author email")


async def record_pull(ctx: ActionContext[PullRequestInput]) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    path = _repo_path(_project(repo, inp.repo_url), repo.repo)
    base = inp.target_branch or "master"
    url = f"https://{repo.host}{path}/pull-requests/1"
    await record_pull_request(ctx, path, inp.source_branch, base, url)


@action(
    settings=Integrations,
    id="publish:bitbucketServer:pull-request",
    recorder=record_pull,
    description="Creates a pull request on a Bitbucket Server repository, with the "
    "workspace's contents committed to its source branch when that branch is new.",
    input=PullRequestInput,
    output=PULL_REQUEST_OUTPUT,
    examples=[
        (
            "Open a pull request with the workspace's files and two reviewers",
            "steps:\n  - id: pr\n    name: Pull request\n"
            "    action: publish:bitbucketServer:pull-request\n"
            "    input:\n      repoUrl: bitbucket.example.com?project=PLAT&repo=catalog\n"
            "      title: Add my-service\n      sourceBranch: add-my-service\n"
            "      reviewers: [alice, bob]\n",
        )
    ],
)
async def publish_bitbucket_server_pull_request(
    ctx: ActionContext[PullRequestInput], integrations: Integrations
) -> None:
    inp = ctx.input
    what = "publish:bitbucketServer:pull-request"
    repo = RepoUrl.parse(inp.repo_url)
    project = _project(repo, inp.repo_url)
    host, secret = credential(integrations, "bitbucketServer", repo, project, inp.token, what)
    auth = _Auth(host, secret, bool(inp.token))
    path = _repo_path(project, repo.repo)
    async with forge_api(integrations, host, {"Authorization": auth.header}, what) as api:
        target = inp.target_branch
        if not target:
            target = (await api.call("GET", f"{path}/default-branch")).get("displayId")
            if not target:
                raise InputError(f"Could not fetch default branch for {project}/{repo.repo}")
        to_ref = await _branch(api, path, str(target))
        if to_ref is None:
            raise InputError(f"{what}: the target branch {target!r} does not exist in {path}")

        async def commit() -> dict[str, Any]:
            found = await _branch(api, path, inp.source_branch)
            if found is not None:
                ctx.logger.info(f"Source branch {inp.source_branch} exists; it is used as it is")
                return found
            ctx.logger.info(
                f"source branch not found -> creating branch named: {inp.source_branch} "
                f"lastCommit: {to_ref['latestCommit']}"
            )
            clone = f"{_web(host)}/scm/{quote(project, safe='')}/{quote(repo.repo, safe='')}.git"
            made = await commit_workspace(
                ctx,
                clone,
                str(target),
                inp.source_branch,
                # Backstage commits with the description as the message; git needs one
                inp.description or inp.title,
                Author.given(inp.git_author_name, inp.git_author_email),
                integrations.git,
                GitAuth(secret, auth.username, auth.bearer),
            )
            if made is None:
                body = {"name": inp.source_branch, "startPoint": to_ref["latestCommit"]}
                return dict(await api.call("POST", f"{path}/branches", json=body))
            branch = await _branch(api, path, inp.source_branch)
            assert branch is not None  # it was just pushed
            return branch

        from_ref = await ctx.checkpoint(f"commit.{project}.{repo.repo}.{inp.source_branch}", commit)

        async def create() -> str:
            forge = BitbucketServerForge(api, host, project, repo.repo, auth)
            earlier = await opened_earlier(ctx, forge, inp.source_branch, str(target))
            if earlier is not None:
                return earlier.url
            body: dict[str, Any] = {
                "title": inp.title,
                "state": "OPEN",
                "open": True,
                "closed": False,
                "locked": True,
                "toRef": to_ref,
                "fromRef": from_ref,
            }
            if inp.description is not None:
                body["description"] = inp.description
            if inp.reviewers:
                body["reviewers"] = [{"user": {"name": name}} for name in inp.reviewers]
            made = await api.call("POST", f"{path}/pull-requests", json=body)
            url = str(made["links"]["self"][0]["href"])
            ctx.logger.info(f"Pull request #{made['id']}: {url}")
            return url

        url = await ctx.checkpoint(f"create.pr.{project}.{repo.repo}.{inp.source_branch}", create)
    ctx.output("pullRequestUrl", url)


async def _branch(api: ForgeApi, path: str, name: str) -> dict[str, Any] | None:
    """The branch called ``name`` (Bitbucket's branch search matches parts of names)."""
    query = {"boostMatches": "true", "filterText": name}
    for item in (await api.call("GET", f"{path}/branches", params=query))["values"]:
        if item.get("displayId") == name:
            return dict(item)
    return None


BITBUCKET_SERVER_ACTIONS: tuple[Action[Any], ...] = (
    publish_bitbucket_server,
    publish_bitbucket_server_pull_request,
)


# -- the forge protocol (forge.py) ---------------------------------------------------
class BitbucketServerForge:
    """A repository on Bitbucket Server for the shared flows of forge.py."""

    kind: Kind = "bitbucketServer"

    def __init__(self, api: ForgeApi, host: ForgeHost, project: str, slug: str, auth: _Auth):
        self.api = api
        self.web = _web(host)
        self.project = project
        self.slug = slug
        self.path = _repo_path(project, slug)
        self.git = GitAuth(auth.secret, auth.username, auth.bearer)

    async def repository(self) -> Repository:
        found = await self.api.call("GET", f"{self.path}/default-branch")
        names = f"{quote(self.project, safe='')}/{quote(self.slug, safe='')}"
        return Repository(
            f"{self.web}/scm/{names}.git", str(found["displayId"]), f"{self.web}{self.path}"
        )

    def compare_url(self, repository: Repository, base: str, branch: str) -> str:
        query = urlencode(
            {"sourceBranch": f"refs/heads/{branch}", "targetBranch": f"refs/heads/{base}"}
        )
        return f"{repository.web_url}/compare/diff?{query}"

    async def find_open_change_request(self, branch: str, base: str) -> ChangeRequest | None:
        query = {"at": f"refs/heads/{branch}", "direction": "OUTGOING", "state": "OPEN"}
        found = await self.api.call("GET", f"{self.path}/pull-requests", params=query)
        for pull in found.get("values") or []:
            if pull["toRef"]["displayId"] == base:
                return ChangeRequest(int(pull["id"]), str(pull["links"]["self"][0]["href"]))
        return None

    async def open_change_request(self, proposal: Proposal) -> ChangeRequest:
        def ref(name: str) -> dict[str, Any]:
            return {
                "id": f"refs/heads/{name}",
                "repository": {"slug": self.slug, "project": {"key": self.project}},
            }

        body: dict[str, Any] = {
            "title": proposal.title,
            "description": proposal.description,
            "fromRef": ref(proposal.branch),
            "toRef": ref(proposal.base),
        }
        if proposal.draft:  # drafts came with Data Center 8.18: older ones are not asked
            body["draft"] = True
        made = await self.api.call("POST", f"{self.path}/pull-requests", json=body)
        return ChangeRequest(int(made["id"]), str(made["links"]["self"][0]["href"]))


@asynccontextmanager
async def bitbucket_server_forge(
    integrations: Integrations, repo: RepoUrl, token: str | None, what: str
) -> AsyncIterator[Forge]:
    project = _project(repo, what)
    host, secret = credential(integrations, "bitbucketServer", repo, project, token, what)
    auth = _Auth(host, secret, bool(token))
    async with forge_api(integrations, host, {"Authorization": auth.header}, what) as api:
        yield BitbucketServerForge(api, host, project, repo.repo, auth)
