"""``publish:azure`` and ``publish:azure:pull-request`` of Backstage's
``@backstage/plugin-scaffolder-backend-module-azure``, with their ids, inputs, outputs
and defaults. The pull request's commit is made by git and pushed to its source branch
(Backstage sends it through Azure's Pushes API: the same commit lands).

Credentials: a step's ``token`` (a personal access token), else a personal access token
of ``integrations.azure[].credentials[]`` whose ``organizations`` name the repository's
organization (``['*']``: all). Backstage's other credential kinds (a service principal
or managed identity: ``clientId``, ``clientSecret``, ``tenantId``) need Microsoft Entra
ID's token service, which Falsework does not call yet: such a credential is read and
never used.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import Field

from falsework.actions.builtin.forge import (
    ChangeRequest,
    FirstPush,
    Forge,
    GitAuth,
    Proposal,
    Repository,
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
from falsework.actions.builtin.gitpush import (
    Author,
    push_changes,
    source_folder,
)
from falsework.actions.context import ActionContext
from falsework.actions.contract import Action, ActionInput, action
from falsework.actions.integrations import ForgeHost, Integrations, Kind, RepoUrl
from falsework.actions.rehearsal import PLACEHOLDER_COMMIT
from falsework.confine import walk
from falsework.errors import InputError

API_VERSION = "7.1"


class PublishAzureInput(ActionInput):
    repo_url: str = Field(
        description="Accepts the format `dev.azure.com?organization=org&project=project&repo=repo`"
    )
    description: str | None = Field(
        None, description="Repository description (Azure Repos has none: accepted, not used)"
    )
    default_branch: str = Field("master", description="The default branch")
    source_path: str | None = Field(
        None, description="Workspace folder to publish as the repository root (default: all)"
    )
    token: str | None = Field(
        None, description="A personal access token (default: the integration's)"
    )
    git_commit_message: str = Field("initial commit", description="The commit message")
    git_author_name: str | None = Field(None, description="Commit author name (Scaffolder)")
    git_author_email: str | None = Field(None, description="Commit author email")
    sign_commit: bool | None = Field(None, description="Sign the commit (no key configured)")


def _where(repo: RepoUrl, repo_url: str) -> tuple[str, str]:
    for name, value in (("organization", repo.organization), ("project", repo.project)):
        if not value:
            raise InputError(
                f"Invalid URL provider was included in the repo URL to create {repo_url}, "
                f"missing {name}"
            )
    return str(repo.organization), str(repo.project)


def _git(pat: str) -> GitAuth:
    return GitAuth(pat, "notempty")  # Azure takes a PAT with any non-empty user name


def _credential(
    integrations: Integrations, repo: RepoUrl, organization: str, token: str | None
) -> tuple[ForgeHost, str]:
    wanted = repo.host.lower()
    hosts = [h for h in integrations.hosts if h.kind == "azure" and h.host.lower() == wanted]
    host = hosts[0] if hosts else ForgeHost("azure", repo.host, f"https://{repo.host}")
    if token:
        return host, token
    for item in hosts:
        found = item.token_for(organization)
        if found:
            return item, found
    raise InputError(
        f"No credentials provided https://{repo.host}/{organization}, please check your "
        "integrations config (a personalAccessToken whose organizations include it)"
    )


async def record_publish_azure(ctx: ActionContext[PublishAzureInput]) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    organization, project = _where(repo, inp.repo_url)
    web = f"https://{repo.host}/{organization}/{project}/_git/{repo.repo}"
    outputs = {
        "remoteUrl": web,
        "repoContentsUrl": web,
        "repositoryId": "00000000-0000-0000-0000-000000000000",
        "commitHash": PLACEHOLDER_COMMIT,
    }
    saying = f"Would create the Azure Repos repository {web}"
    await record_publish(ctx, inp.source_path, web, inp.default_branch, saying, outputs)


OUTPUT = {
    "type": "object",
    "properties": {
        **PUBLISH_OUTPUT["properties"],
        "repositoryId": {"type": "string", "description": "The Id of the created repository"},
    },
}


@action(
    settings=Integrations,
    id="publish:azure",
    recorder=record_publish_azure,
    description="Initializes a git repository of the content in the workspace, and "
    "publishes it to Azure.",
    input=PublishAzureInput,
    output=OUTPUT,
    examples=[
        (
            "Publish the workspace to a new repository of a project",
            "steps:\n  - id: publish\n    name: Publish to Azure\n    action: publish:azure\n"
            "    input:\n      repoUrl: dev.azure.com?organization=acme&project=platform"
            "&repo=my-service\n      defaultBranch: main\n",
        )
    ],
)
async def publish_azure(ctx: ActionContext[PublishAzureInput], integrations: Integrations) -> None:
    inp = ctx.input
    what = "publish:azure"
    repo = RepoUrl.parse(inp.repo_url)
    organization, project = _where(repo, inp.repo_url)
    host, pat = _credential(integrations, repo, organization, inp.token)
    refuse_signing(inp.sign_commit)
    basic = base64.b64encode(f":{pat}".encode()).decode()
    async with forge_api(integrations, host, {"Authorization": f"Basic {basic}"}, what) as api:

        async def create() -> dict[str, str]:
            path = f"/{quote(organization, safe='')}/{quote(project, safe='')}"
            repos = f"{path}/_apis/git/repositories"
            version = {"api-version": API_VERSION}
            try:
                made: dict[str, Any] = await api.call(
                    "POST", repos, params=version, json={"name": repo.repo}
                )
            except ApiError as exc:
                made = await made_earlier(
                    ctx,
                    exc,
                    409,  # Azure's answer for a name in use (TF400948)
                    lambda: api.call("GET", f"{repos}/{quote(repo.repo, safe='')}", params=version),
                    lambda found: str(found["remoteUrl"]),
                    inp.default_branch,
                    integrations.git,
                    _git(pat),
                )
            for key in ("remoteUrl", "id", "webUrl"):
                if not made.get(key):
                    raise InputError(f"No {key} returned from create repository for Azure")
            ctx.logger.info(f"Created repository {made['webUrl']}")
            return {
                "remoteUrl": str(made["remoteUrl"]),
                "repositoryId": str(made["id"]),
                "repoContentsUrl": str(made["webUrl"]),
            }

        made = await ctx.checkpoint(f"create.repo.{repo.repo}", create)
        push = FirstPush(
            inp.source_path,
            inp.default_branch,
            inp.git_commit_message or "initial commit",
            Author.given(inp.git_author_name, inp.git_author_email),
        )
        key = f"init.repo.and.push.{made['remoteUrl']}"
        commit = await push_contents(ctx, key, made["remoteUrl"], push, integrations.git, _git(pat))
    ctx.output("commitHash", commit)
    ctx.output("remoteUrl", made["remoteUrl"])
    ctx.output("repoContentsUrl", made["repoContentsUrl"])
    ctx.output("repositoryId", made["repositoryId"])


# -- publish:azure:pull-request -------------------------------------------------------
class PullRequestInput(ActionInput):
    repo_url: str = Field(
        description="The repository URL, e.g., "
        "dev.azure.com?organization=org&project=project&repo=repo"
    )
    source_branch_name: str = Field(description="The name of the source branch.")
    files_to_delete: list[str] | None = Field(None, description="List of files to delete.")
    target_branch_name: str | None = Field(
        None, description="The name of the target branch (default: the default branch)."
    )
    title: str = Field(description="The title of the pull request.")
    description: str = Field(description="The description of the pull request.")
    draft: bool | None = Field(None, description="Create the pull request as a draft.")
    source_path: str | None = Field(
        None, description="Subdirectory of working directory to copy changes from."
    )
    target_path: str | None = Field(
        None, description="Subdirectory of repository to apply changes to."
    )
    token: str | None = Field(None, description="The personal access token for Azure DevOps.")
    reviewers: list[str] | None = Field(None, description="Reviewers (unique names).")
    assignees: list[str] | None = Field(
        None, description="Assignees (Azure has none: added as reviewers, as Backstage does)."
    )
    team_reviewers: list[str] | None = Field(None, description="Team reviewers.")
    commit_message: str | None = Field(None, description="The commit message.")
    update: bool | None = Field(None, description="Update the pull request if it exists.")
    git_author_name: str | None = Field(None, description="Commit author name (Scaffolder)")
    git_author_email: str | None = Field(None, description="Commit author email")
    create_when_empty: bool = Field(
        True, description="Create the pull request when there are no changes."
    )


def _reviewers(inp: PullRequestInput) -> list[dict[str, Any]]:
    people = [*(inp.reviewers or []), *(inp.assignees or [])]
    teams = [{"uniqueName": t, "isContainer": True} for t in inp.team_reviewers or []]
    return [*({"uniqueName": p} for p in people), *teams]


async def record_azure_pull_request(ctx: ActionContext[PullRequestInput]) -> None:
    inp = ctx.input
    assert ctx.recording is not None
    repo = RepoUrl.parse(inp.repo_url)
    organization, project = _where(repo, inp.repo_url)
    web = f"https://{repo.host}/{organization}/{project}/_git/{repo.repo}"
    base = inp.target_branch_name or "master"  # the default branch is not asked for
    source = await source_folder(ctx, inp.source_path)
    await ctx.in_thread(ctx.recording.tree, source)
    ctx.recording.note(branch=inp.source_branch_name, base=base, targetPath=inp.target_path or "")
    ctx.logger.info(f"Would open a pull request on {web} from {inp.source_branch_name}")
    ctx.output("targetBranchName", base)
    ctx.output("remoteUrl", f"{web}/pullrequest/1")
    ctx.output("pullRequestId", 1)


@action(
    settings=Integrations,
    id="publish:azure:pull-request",
    recorder=record_azure_pull_request,
    description="Creates a pull request in Azure DevOps.",
    input=PullRequestInput,
    dry_run=True,
    output={
        "type": "object",
        "properties": {
            "targetBranchName": {"type": "string", "description": "The target branch name"},
            "remoteUrl": {"type": "string", "description": "The URL of the pull request"},
            "pullRequestId": {"type": "number", "description": "The ID of the pull request"},
        },
    },
    examples=[
        (
            "Open a pull request with the workspace's files under services/",
            "steps:\n  - id: pr\n    name: Pull request\n    action: publish:azure:pull-request\n"
            "    input:\n      repoUrl: dev.azure.com?organization=acme&project=platform"
            "&repo=catalog\n      sourceBranchName: add-my-service\n"
            "      title: Add my-service\n      description: Registers my-service\n"
            "      targetPath: services\n",
        )
    ],
)
async def publish_azure_pull_request(
    ctx: ActionContext[PullRequestInput], integrations: Integrations
) -> None:
    inp = ctx.input
    what = "publish:azure:pull-request"
    repo = RepoUrl.parse(inp.repo_url)
    organization, project = _where(repo, inp.repo_url)
    source = await source_folder(ctx, inp.source_path)
    if ctx.is_dry_run:
        ctx.logger.info(f"Dry run: Creating Azure DevOps pull request for {inp.repo_url}")
        web = f"https://{repo.host}/{organization}/{project}/_git/{repo.repo}"
        ctx.output("remoteUrl", f"{web}/pullrequest/123")
        ctx.output("pullRequestId", 123)
        ctx.output("targetBranchName", inp.target_branch_name or "master")
        return
    host, pat = _credential(integrations, repo, organization, inp.token)
    basic = base64.b64encode(f":{pat}".encode()).decode()
    path = f"/{quote(organization, safe='')}/{quote(project, safe='')}/_apis/git/repositories"
    version = {"api-version": API_VERSION}
    async with forge_api(integrations, host, {"Authorization": f"Basic {basic}"}, what) as api:
        found = await api.call("GET", f"{path}/{quote(repo.repo, safe='')}", params=version)
        pulls = f"{path}/{found['id']}/pullrequests"
        target = inp.target_branch_name or str(found.get("defaultBranch") or "")
        target = target.removeprefix("refs/heads/")
        if not target:
            raise InputError(f"{what}: {repo.repo} has no default branch; give targetBranchName")

        async def commit() -> str | None:
            made, _ = await push_changes(
                ctx,
                source=source,
                remote=str(found["remoteUrl"]),
                base=target,
                branch=inp.source_branch_name,
                target_path=inp.target_path,
                delete=list(inp.files_to_delete or []),
                message=inp.commit_message or _message(source),
                author=Author.given(inp.git_author_name, inp.git_author_email),
                policy=integrations.git,
                token=pat,
                update=True,  # an existing source branch gets the commit on top, as Backstage
                username="notempty",
                branch_when_unchanged=inp.create_when_empty,
            )
            return made

        made = await ctx.checkpoint(f"create-push-{repo.repo}-{inp.source_branch_name}", commit)
        if made is None and not inp.create_when_empty:
            ctx.logger.info("No changes to commit, skipping pull request creation.")
            return
        refs = {
            "searchCriteria.sourceRefName": f"refs/heads/{inp.source_branch_name}",
            "searchCriteria.targetRefName": f"refs/heads/{target}",
            "searchCriteria.status": "active",
        }
        existing = (await api.call("GET", pulls, params={**version, **refs}))["value"]

        async def open_pull() -> int:
            if existing:
                number = int(existing[0]["pullRequestId"])
                if inp.update:
                    ctx.logger.info(f"Updating existing pull request {number}")
                    changed = {"title": inp.title, "description": inp.description}
                    await api.call("PATCH", f"{pulls}/{number}", params=version, json=changed)
                else:
                    ctx.logger.info(f"Pull request already exists: PR-{number}")
                return number
            body: dict[str, Any] = {
                "sourceRefName": refs["searchCriteria.sourceRefName"],
                "targetRefName": refs["searchCriteria.targetRefName"],
                "title": inp.title,
                "description": inp.description,
                "isDraft": bool(inp.draft),
                "reviewers": _reviewers(inp),
            }
            created = await api.call("POST", pulls, params=version, json=body)
            ctx.logger.info(f"Created pull request PR-{created['pullRequestId']}")
            return int(created["pullRequestId"])

        number = await ctx.checkpoint(f"create-pr-{repo.repo}-{inp.source_branch_name}", open_pull)
    ctx.output("remoteUrl", f"{found['webUrl']}/pullrequest/{number}")
    ctx.output("pullRequestId", number)
    ctx.output("targetBranchName", target)


def _message(source: Path) -> str:
    names = [PurePosixPath(e.path).name for e in walk(source, skip={".git"}) if e.kind != "dir"]
    return f"Automated commit from the scaffolder. Added files: {', '.join(names)}"


AZURE_ACTIONS: tuple[Action[Any], ...] = (publish_azure, publish_azure_pull_request)


# -- the forge protocol (forge.py) ---------------------------------------------------
class AzureForge:
    """A repository on Azure DevOps for the shared flows of forge.py."""

    kind: Kind = "azure"

    def __init__(self, api: ForgeApi, organization: str, project: str, name: str, pat: str):
        self.api = api
        where = f"/{quote(organization, safe='')}/{quote(project, safe='')}"
        self.path = f"{where}/_apis/git/repositories"
        self.name = name
        self.git = _git(pat)
        self._found: dict[str, Any] | None = None

    async def _repo(self) -> dict[str, Any]:
        version = {"api-version": API_VERSION}
        found: dict[str, Any] = await self.api.call(
            "GET", f"{self.path}/{quote(self.name, safe='')}", params=version
        )
        self._found = found
        return found

    async def _pulls(self) -> str:
        found = self._found or await self._repo()
        return f"{self.path}/{found['id']}/pullrequests"

    async def repository(self) -> Repository:
        found = await self._repo()
        branch = str(found.get("defaultBranch") or "refs/heads/main").removeprefix("refs/heads/")
        return Repository(str(found["remoteUrl"]), branch, str(found["webUrl"]))

    def compare_url(self, repository: Repository, base: str, branch: str) -> str:
        query = urlencode({"baseVersion": f"GB{base}", "targetVersion": f"GB{branch}"})
        return f"{repository.web_url}/branchCompare?{query}"

    async def find_open_change_request(self, branch: str, base: str) -> ChangeRequest | None:
        query = {
            "api-version": API_VERSION,
            "searchCriteria.sourceRefName": f"refs/heads/{branch}",
            "searchCriteria.targetRefName": f"refs/heads/{base}",
            "searchCriteria.status": "active",
        }
        found = (await self.api.call("GET", await self._pulls(), params=query))["value"]
        if not found:
            return None
        return await self._change_request(int(found[0]["pullRequestId"]))

    async def _change_request(self, number: int) -> ChangeRequest:
        web = str((self._found or await self._repo())["webUrl"])
        return ChangeRequest(number, f"{web}/pullrequest/{number}")

    async def open_change_request(self, proposal: Proposal) -> ChangeRequest:
        body = {
            "sourceRefName": f"refs/heads/{proposal.branch}",
            "targetRefName": f"refs/heads/{proposal.base}",
            "title": proposal.title,
            "description": proposal.description,
            "isDraft": proposal.draft,
        }
        version = {"api-version": API_VERSION}
        made = await self.api.call("POST", await self._pulls(), params=version, json=body)
        return await self._change_request(int(made["pullRequestId"]))


@asynccontextmanager
async def azure_forge(
    integrations: Integrations, repo: RepoUrl, token: str | None, what: str
) -> AsyncIterator[Forge]:
    organization, project = _where(repo, what)
    host, pat = _credential(integrations, repo, organization, token)
    basic = base64.b64encode(f":{pat}".encode()).decode()
    async with forge_api(integrations, host, {"Authorization": f"Basic {basic}"}, what) as api:
        yield AzureForge(api, organization, project, repo.repo, pat)
