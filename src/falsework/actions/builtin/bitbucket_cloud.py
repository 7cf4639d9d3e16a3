"""The Bitbucket Cloud actions of Backstage's
``@backstage/plugin-scaffolder-backend-module-bitbucket-cloud`` that templates end with,
with their ids, inputs, outputs and defaults: ``publish:bitbucketCloud`` and
``publish:bitbucketCloud:pull-request``.

Credentials: a step's ``token`` (a bearer token for the API, ``x-token-auth`` for git),
else the integration's (``integrations.bitbucketCloud[]``: ``username`` with an
``appPassword``, or a ``token``), used only for the workspaces its ``allowedOwners``
names.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import quote

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

REPO_URL = (
    "Accepts the format `bitbucket.org?workspace=W&project=P&repo=R` (the project is "
    "needed to create a repository)"
)
TOKEN = "The token to use for authorization to Bitbucket Cloud (default: the integration's)"


def _auth(host: ForgeHost, secret: str, from_step: bool) -> tuple[dict[str, str], str]:
    """The API's authorization header and git's user name for ``secret``."""
    if host.username and not from_step:
        basic = base64.b64encode(f"{host.username}:{secret}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}, host.username
    return {"Authorization": f"Bearer {secret}"}, "x-token-auth"


def _workspace(repo: RepoUrl, what: str) -> str:
    if not repo.workspace:
        raise InputError(
            f"Invalid URL provider was included in the repo URL to create {what}, missing workspace"
        )
    return repo.workspace


def _https_clone(found: dict[str, Any]) -> str:
    return str(next(x["href"] for x in found["links"]["clone"] if x.get("name") == "https"))


def _path(workspace: str, slug: str) -> str:
    return f"/repositories/{quote(workspace, safe='')}/{quote(slug, safe='')}"


class PublishInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    description: str | None = Field(None, description="Repository description")
    repo_visibility: Literal["private", "public"] = Field(
        "private", description="Visibility of the repository"
    )
    default_branch: str = Field("master", description="The default branch")
    git_commit_message: str | None = Field(
        None, description="The commit message (default: initial commit)"
    )
    source_path: str | None = Field(
        None, description="Workspace folder to publish as the repository root (default: all)"
    )
    token: str | None = Field(None, description=TOKEN)
    sign_commit: bool | None = Field(None, description="Sign the commit (no key configured)")


async def record_publish_cloud(ctx: ActionContext[PublishInput]) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    web = f"https://{repo.host}/{_workspace(repo, inp.repo_url)}/{repo.repo}"
    outputs = {
        "remoteUrl": f"{web}.git",
        "repoContentsUrl": f"{web}/src/{inp.default_branch}",
        "commitHash": PLACEHOLDER_COMMIT,
    }
    saying = f"Would create the Bitbucket Cloud repository {web}"
    await record_publish(ctx, inp.source_path, f"{web}.git", inp.default_branch, saying, outputs)


@action(
    settings=Integrations,
    id="publish:bitbucketCloud",
    recorder=record_publish_cloud,
    description="Initializes a git repository of the content in the workspace, and "
    "publishes it to Bitbucket Cloud.",
    input=PublishInput,
    output=PUBLISH_OUTPUT,
    examples=[
        (
            "Publish the workspace to a new private repository of a project",
            "steps:\n  - id: publish\n    name: Publish\n    action: publish:bitbucketCloud\n"
            "    input:\n      repoUrl: bitbucket.org?workspace=acme&project=PLAT&repo=my-service\n"
            "      description: My service\n      defaultBranch: main\n",
        )
    ],
)
async def publish_bitbucket_cloud(
    ctx: ActionContext[PublishInput], integrations: Integrations
) -> None:
    inp = ctx.input
    what = "publish:bitbucketCloud"
    repo = RepoUrl.parse(inp.repo_url)
    workspace = _workspace(repo, inp.repo_url)
    if not repo.project:
        raise InputError(
            f"Invalid URL provider was included in the repo URL to create {inp.repo_url}, "
            "missing project"
        )
    host, secret = credential(integrations, "bitbucketCloud", repo, workspace, inp.token, what)
    refuse_signing(inp.sign_commit)
    headers, git_user = _auth(host, secret, bool(inp.token))
    async with forge_api(integrations, host, headers, what) as api:

        async def create() -> dict[str, str]:
            body: dict[str, Any] = {
                "scm": "git",
                "is_private": inp.repo_visibility == "private",
                "project": {"key": repo.project},
            }
            if inp.description is not None:
                body["description"] = inp.description
            try:
                made = await api.call("POST", _path(workspace, repo.repo), json=body)
                ctx.logger.info(f"Created repository {made['full_name']}")
            except ApiError as exc:
                made = await made_earlier(
                    ctx,
                    exc,
                    400,  # Bitbucket Cloud's answer for a slug in use
                    lambda: api.call("GET", _path(workspace, repo.repo)),
                    _https_clone,
                    inp.default_branch,
                    integrations.git,
                    GitAuth(secret, git_user),
                )
            clone = _https_clone(made)
            # the main branch cannot be set: the first branch pushed becomes it
            contents = f"{made['links']['html']['href']}/src/{inp.default_branch}"
            return {"remoteUrl": str(clone), "repoContentsUrl": contents}

        made = await ctx.checkpoint(f"create.repo.{repo.host}.{repo.repo}", create)
        push = FirstPush(
            inp.source_path,
            inp.default_branch,
            inp.git_commit_message or "initial commit",
            Author.given(None, None),
        )
        key = f"init.repo.and.push{repo.host}.{repo.repo}"
        git = GitAuth(secret, git_user)
        commit = await push_contents(ctx, key, made["remoteUrl"], push, integrations.git, git)
    ctx.output("commitHash", commit)
    ctx.output("remoteUrl", made["remoteUrl"])
    ctx.output("repoContentsUrl", made["repoContentsUrl"])


# -- publish:bitbucketCloud:pull-request ----------------------------------------------
class PullRequestInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    title: str = Field(description="The title for the pull request")
    description: str | None = Field(None, description="The description of the pull request")
    target_branch: str | None = Field(
        None, description="Branch to merge into (default: the repository's main branch)"
    )
    source_branch: str = Field(description="Branch of the repository to copy changes to")
    token: str | None = Field(None, description=TOKEN)
    git_author_name: str | None = Field(None, description="Commit author name (Scaffolder)")
    git_author_email: str | None = Field(None, description="Commit author email")


async def record_pull(ctx: ActionContext[PullRequestInput]) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    web = f"https://{repo.host}/{_workspace(repo, inp.repo_url)}/{repo.repo}"
    base = inp.target_branch or "main"
    await record_pull_request(ctx, web, inp.source_branch, base, f"{web}/pull-requests/1")


@action(
    settings=Integrations,
    id="publish:bitbucketCloud:pull-request",
    recorder=record_pull,
    description="Creates a pull request on a Bitbucket Cloud repository, with the "
    "workspace's contents committed to its source branch when that branch is new.",
    input=PullRequestInput,
    output=PULL_REQUEST_OUTPUT,
    examples=[
        (
            "Open a pull request with the workspace's files",
            "steps:\n  - id: pr\n    name: Pull request\n"
            "    action: publish:bitbucketCloud:pull-request\n"
            "    input:\n      repoUrl: bitbucket.org?workspace=acme&project=PLAT&repo=catalog\n"
            "      title: Add my-service\n      sourceBranch: add-my-service\n"
            "      description: Registers my-service\n",
        )
    ],
)
async def publish_bitbucket_cloud_pull_request(
    ctx: ActionContext[PullRequestInput], integrations: Integrations
) -> None:
    inp = ctx.input
    what = "publish:bitbucketCloud:pull-request"
    repo = RepoUrl.parse(inp.repo_url)
    workspace = _workspace(repo, inp.repo_url)
    host, secret = credential(integrations, "bitbucketCloud", repo, workspace, inp.token, what)
    headers, git_user = _auth(host, secret, bool(inp.token))
    path = _path(workspace, repo.repo)
    async with forge_api(integrations, host, headers, what) as api:
        found = await api.call("GET", path)
        target = inp.target_branch or (found.get("mainbranch") or {}).get("name")
        if not target:
            raise InputError(f"Could not fetch default branch for {workspace}/{repo.repo}")

        async def commit() -> None:
            await _commit(ctx, api, integrations, inp, found, str(target), secret, git_user)

        await ctx.checkpoint(f"commit.{workspace}.{repo.repo}.{inp.source_branch}", commit)

        async def create() -> str:
            forge = BitbucketCloudForge(api, workspace, repo.repo, GitAuth(secret, git_user))
            earlier = await opened_earlier(ctx, forge, inp.source_branch, str(target))
            if earlier is not None:
                return earlier.url
            body: dict[str, Any] = {
                "title": inp.title,
                "summary": {"raw": inp.description} if inp.description is not None else {},
                "state": "OPEN",
                "source": {"branch": {"name": inp.source_branch}},
                "destination": {"branch": {"name": target}},
            }
            made = await api.call("POST", f"{path}/pullrequests", json=body)
            ctx.logger.info(f"Pull request #{made['id']}: {made['links']['html']['href']}")
            return str(made["links"]["html"]["href"])

        url = await ctx.checkpoint(f"create.pr.{workspace}.{repo.repo}.{inp.source_branch}", create)
    ctx.output("pullRequestUrl", url)


async def _commit(
    ctx: ActionContext[PullRequestInput],
    api: ForgeApi,
    integrations: Integrations,
    inp: PullRequestInput,
    found: dict[str, Any],
    target: str,
    secret: str,
    git_user: str,
) -> None:
    """As Backstage: a source branch that exists is used as it is; a new one gets the
    whole workspace laid over the target branch in one commit (made from the target
    by the API when that changes nothing)."""
    path = _path(str(found["full_name"]).split("/")[0], str(found["slug"]))
    query = {"q": f'name = "{inp.source_branch}"'}
    if (await api.call("GET", f"{path}/refs/branches", params=query))["values"]:
        ctx.logger.info(f"Source branch {inp.source_branch} exists; it is used as it is")
        return
    ctx.logger.info(f"source branch not found -> creating branch named: {inp.source_branch}")
    clone = _https_clone(found)
    commit = await commit_workspace(
        ctx,
        str(clone),
        target,
        inp.source_branch,
        # Backstage commits with the description as the message; git needs one
        inp.description or inp.title,
        Author.given(inp.git_author_name, inp.git_author_email),
        integrations.git,
        GitAuth(secret, git_user),
    )
    if commit is None:
        body = {"name": inp.source_branch, "target": {"hash": target}}
        await api.call("POST", f"{path}/refs/branches", json=body)


BITBUCKET_CLOUD_ACTIONS: tuple[Action[Any], ...] = (
    publish_bitbucket_cloud,
    publish_bitbucket_cloud_pull_request,
)


# -- the forge protocol (forge.py) ---------------------------------------------------
class BitbucketCloudForge:
    """A repository on Bitbucket Cloud for the shared flows of forge.py."""

    kind: Kind = "bitbucketCloud"

    def __init__(self, api: ForgeApi, workspace: str, slug: str, git: GitAuth) -> None:
        self.api = api
        self.path = _path(workspace, slug)
        self.git = git

    async def repository(self) -> Repository:
        found = await self.api.call("GET", self.path)
        clone = _https_clone(found)
        branch = str((found.get("mainbranch") or {}).get("name") or "main")
        return Repository(str(clone), branch, str(found["links"]["html"]["href"]))

    def compare_url(self, repository: Repository, base: str, branch: str) -> str:
        # Bitbucket's compare page names the source, then the destination
        return f"{repository.web_url}/branches/compare/{quote(branch)}%0D{quote(base)}#diff"

    async def find_open_change_request(self, branch: str, base: str) -> ChangeRequest | None:
        # drafts are left out of state=OPEN unless the query asks for them
        q = (
            f'state = "OPEN" AND (draft = true OR draft = false) AND '
            f'source.branch.name = "{branch}" AND destination.branch.name = "{base}"'
        )
        found = await self.api.call("GET", f"{self.path}/pullrequests", params={"q": q})
        pulls = found.get("values") or []
        if not pulls:
            return None
        return ChangeRequest(int(pulls[0]["id"]), str(pulls[0]["links"]["html"]["href"]))

    async def open_change_request(self, proposal: Proposal) -> ChangeRequest:
        body: dict[str, Any] = {
            "title": proposal.title,
            "summary": {"raw": proposal.description},
            "source": {"branch": {"name": proposal.branch}},
            "destination": {"branch": {"name": proposal.base}},
            "draft": proposal.draft,
        }
        made = await self.api.call("POST", f"{self.path}/pullrequests", json=body)
        return ChangeRequest(int(made["id"]), str(made["links"]["html"]["href"]))


@asynccontextmanager
async def bitbucket_cloud_forge(
    integrations: Integrations, repo: RepoUrl, token: str | None, what: str
) -> AsyncIterator[Forge]:
    workspace = _workspace(repo, what)
    host, secret = credential(integrations, "bitbucketCloud", repo, workspace, token, what)
    headers, git_user = _auth(host, secret, bool(token))
    async with forge_api(integrations, host, headers, what) as api:
        yield BitbucketCloudForge(api, workspace, repo.repo, GitAuth(secret, git_user))
