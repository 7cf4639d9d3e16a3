"""``publish:gitea`` of Backstage's ``@backstage/plugin-scaffolder-backend-module-gitea``,
with its id, inputs, outputs and defaults (public repositories, branch ``main``, a
``Change-Id`` trailer on the commit message).

The credential is the integration's (``integrations.gitea[]``: ``username`` and
``password``, a password or an access token), as in Backstage, which has no ``token``
input for Gitea; it is used only for the owners its ``allowedOwners`` names. Backstage
creates repositories in organizations only; here the integration user's own name works
too (its repository is made with Gitea's create-for-the-current-user call).
"""

from __future__ import annotations

import base64
import secrets
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
    drafted_title,
    made_earlier,
    push_contents,
    record_publish,
)
from falsework.actions.builtin.forgeapi import (
    PUBLISH_OUTPUT,
    ApiError,
    ForgeApi,
    forge_api,
    refuse_signing,
)
from falsework.actions.builtin.gitpush import Author
from falsework.actions.context import ActionContext
from falsework.actions.contract import Action, ActionInput, action
from falsework.actions.integrations import Integrations, Kind, RepoUrl
from falsework.actions.rehearsal import PLACEHOLDER_COMMIT
from falsework.errors import ActionError, InputError


class PublishGiteaInput(ActionInput):
    repo_url: str = Field(
        description="Accepts the format `gitea.example.com?repo=reponame&owner=owner` where "
        "`owner` is an organization (or the integration's user)"
    )
    description: str | None = Field(None, description="Repository description")
    default_branch: str = Field("main", description="The default branch")
    repo_visibility: Literal["private", "public"] = Field(
        "public", description="Visibility of the repository"
    )
    git_commit_message: str = Field("initial commit", description="The commit message")
    git_author_name: str | None = Field(None, description="Commit author name (Scaffolder)")
    git_author_email: str | None = Field(None, description="Commit author email")
    source_path: str | None = Field(
        None, description="Workspace folder to publish as the repository root (default: all)"
    )
    sign_commit: bool | None = Field(None, description="Sign the commit (no key configured)")


def _web(api_base_url: str) -> str:
    return api_base_url.rstrip("/").removesuffix("/api/v1")


def _message(subject: str) -> str:
    """Backstage's: the subject and a Gerrit-style ``Change-Id`` trailer."""
    return f"{subject}\n\nChange-Id: I{secrets.token_hex(20)}"


async def record_publish_gitea(ctx: ActionContext[PublishGiteaInput]) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    web = f"https://{repo.host}/{repo.need_owner()}/{repo.repo}"
    outputs = {
        "remoteUrl": f"{web}.git",
        "repoContentsUrl": f"{web}/src/branch/{inp.default_branch}/",
        "commitHash": PLACEHOLDER_COMMIT,
    }
    saying = f"Would create the Gitea repository {web} and push {inp.default_branch}"
    await record_publish(ctx, inp.source_path, f"{web}.git", inp.default_branch, saying, outputs)


@action(
    settings=Integrations,
    id="publish:gitea",
    recorder=record_publish_gitea,
    description="Initializes a git repository using the content of the workspace, and "
    "publishes it to Gitea.",
    input=PublishGiteaInput,
    output=PUBLISH_OUTPUT,
    examples=[
        (
            "Publish the workspace to a new repository of an organization",
            "steps:\n  - id: publish\n    name: Publish\n    action: publish:gitea\n"
            "    input:\n      repoUrl: gitea.example.com?owner=acme&repo=my-service\n"
            "      description: My service\n      repoVisibility: private\n",
        )
    ],
)
async def publish_gitea(ctx: ActionContext[PublishGiteaInput], integrations: Integrations) -> None:
    inp = ctx.input
    what = "publish:gitea"
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    host = integrations.require("gitea", repo.host, what)
    password = host.token_for(owner)
    if not host.username or not password:
        raise InputError(
            f"{what}: no credentials for host {repo.host} and owner {owner}: configure "
            "integrations.gitea with username, password and allowedOwners including it"
        )
    refuse_signing(inp.sign_commit)
    basic = base64.b64encode(f"{host.username}:{password}".encode()).decode()
    web = _web(host.api_base_url)
    git = GitAuth(password, host.username or "")
    async with forge_api(integrations, host, {"Authorization": f"Basic {basic}"}, what) as api:

        async def create() -> str:
            body: dict[str, Any] = {"name": repo.repo, "private": inp.repo_visibility == "private"}
            if inp.description is not None:
                body["description"] = inp.description
            org = quote(owner, safe="")
            try:
                await api.call("GET", f"/orgs/{org}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
                me = await api.call("GET", "/user")
                if str(me.get("login", "")).lower() != owner.lower():
                    raise ActionError(
                        f"{what}: organization {owner} does not exist on {repo.host}; create "
                        "it first (or publish under the integration user's own name)"
                    ) from None
                path = "/user/repos"
            else:
                path = f"/orgs/{org}/repos"
            try:
                made = await api.call("POST", path, json=body)
            except ApiError as exc:
                adopted = await made_earlier(
                    ctx,
                    exc,
                    409,  # Gitea's answer for a name in use
                    lambda: api.call("GET", f"/repos/{org}/{quote(repo.repo, safe='')}"),
                    lambda found: str(found["clone_url"]),
                    inp.default_branch,
                    integrations.git,
                    git,
                )
                return str(adopted["clone_url"])
            ctx.logger.info(f"Created repository {made['full_name']}")
            return str(made["clone_url"])

        clone = await ctx.checkpoint(f"create.gitea.repo.{owner}.{repo.repo}", create)
        push = FirstPush(
            inp.source_path,
            inp.default_branch,
            _message(inp.git_commit_message or "initial commit"),
            Author.given(inp.git_author_name, inp.git_author_email),
        )
        commit = await push_contents(ctx, "push", clone, push, integrations.git, git)
    ctx.output("remoteUrl", f"{web}/{owner}/{repo.repo}.git")
    ctx.output("commitHash", commit)
    ctx.output("repoContentsUrl", f"{web}/{owner}/{repo.repo}/src/branch/{inp.default_branch}/")


GITEA_ACTIONS: tuple[Action[Any], ...] = (publish_gitea,)


# -- the forge protocol (forge.py) ---------------------------------------------------
class GiteaForge:
    """A repository on Gitea for the shared flows of forge.py."""

    kind: Kind = "gitea"

    def __init__(self, api: ForgeApi, owner: str, name: str, git: GitAuth) -> None:
        self.api = api
        self.path = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self.git = git

    async def repository(self) -> Repository:
        found = await self.api.call("GET", self.path)
        branch = str(found.get("default_branch") or "main")
        return Repository(str(found["clone_url"]), branch, str(found["html_url"]))

    def compare_url(self, repository: Repository, base: str, branch: str) -> str:
        return f"{repository.web_url}/compare/{base}...{branch}"

    async def find_open_change_request(self, branch: str, base: str) -> ChangeRequest | None:
        # Gitea's list has no head filter: page through the open ones
        for page in range(1, 101):
            query = {"state": "open", "page": page, "limit": 50}
            found = await self.api.call("GET", f"{self.path}/pulls", params=query)
            for pull in found or []:
                if (pull["head"]["ref"], pull["base"]["ref"]) == (branch, base):
                    return ChangeRequest(int(pull["number"]), str(pull["html_url"]))
            if len(found or []) < 50:
                break
        return None

    async def open_change_request(self, proposal: Proposal) -> ChangeRequest:
        body = {
            "head": proposal.branch,
            "base": proposal.base,
            # a title starting with one of Gitea's work-in-progress prefixes is a draft
            "title": drafted_title(proposal.title, proposal.draft, "WIP:"),
            "body": proposal.description,
        }
        made = await self.api.call("POST", f"{self.path}/pulls", json=body)
        return ChangeRequest(int(made["number"]), str(made["html_url"]))


@asynccontextmanager
async def gitea_forge(
    integrations: Integrations, repo: RepoUrl, token: str | None, what: str
) -> AsyncIterator[Forge]:
    owner = repo.need_owner()
    host = integrations.require("gitea", repo.host, what)
    password = token or host.token_for(owner)
    if not password or not (token or host.username):
        raise InputError(
            f"{what}: no credentials for host {repo.host} and owner {owner}: give the step a "
            "token, or configure integrations.gitea with username, password and allowedOwners "
            "including it"
        )
    if token:
        header, user = f"token {token}", host.username or owner
    else:
        basic = base64.b64encode(f"{host.username}:{password}".encode()).decode()
        header, user = f"Basic {basic}", str(host.username)
    async with forge_api(integrations, host, {"Authorization": header}, what) as api:
        yield GiteaForge(api, owner, repo.repo, GitAuth(password, user))
