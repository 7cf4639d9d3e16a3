"""``publish:azure`` of Backstage's ``@backstage/plugin-scaffolder-backend-module-azure``,
with its id, inputs, outputs and defaults.

Credentials: a step's ``token`` (a personal access token), else a personal access token
of ``integrations.azure[].credentials[]`` whose ``organizations`` name the repository's
organization (``['*']``: all). Backstage's other credential kinds (a service principal
or managed identity: ``clientId``, ``clientSecret``, ``tenantId``) need Microsoft Entra
ID's token service, which Falsework does not call yet: such a credential is read and
never used.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from pydantic import Field

from falsework.actions.builtin.forgeapi import PUBLISH_OUTPUT, forge_api, refuse_signing
from falsework.actions.builtin.gitpush import (
    Author,
    push_folder,
    source_folder,
)
from falsework.actions.context import ActionContext
from falsework.actions.contract import Action, ActionInput, action
from falsework.actions.integrations import ForgeHost, Integrations, RepoUrl
from falsework.actions.rehearsal import PLACEHOLDER_COMMIT
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
    assert ctx.recording is not None
    repo = RepoUrl.parse(inp.repo_url)
    organization, project = _where(repo, inp.repo_url)
    web = f"https://{repo.host}/{organization}/{project}/_git/{repo.repo}"
    source = await source_folder(ctx, inp.source_path)
    await ctx.in_thread(ctx.recording.tree, source)
    ctx.recording.note(remote=web, branch=inp.default_branch)
    ctx.logger.info(f"Would create the Azure Repos repository {web}")
    ctx.output("remoteUrl", web)
    ctx.output("repoContentsUrl", web)
    ctx.output("repositoryId", "00000000-0000-0000-0000-000000000000")
    ctx.output("commitHash", PLACEHOLDER_COMMIT)


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
            made: dict[str, Any] = await api.call(
                "POST",
                f"{path}/_apis/git/repositories",
                params={"api-version": API_VERSION},
                json={"name": repo.repo},
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

        async def push() -> str:
            return await push_folder(
                ctx,
                source=await source_folder(ctx, inp.source_path),
                remote=made["remoteUrl"],
                branch=inp.default_branch,
                message=inp.git_commit_message or "initial commit",
                author=Author.given(inp.git_author_name, inp.git_author_email),
                policy=integrations.git,
                token=pat,
                username="notempty",  # Azure takes a PAT with any non-empty user name
            )

        commit = await ctx.checkpoint(f"init.repo.and.push.{made['remoteUrl']}", push)
    ctx.output("commitHash", commit)
    ctx.output("remoteUrl", made["remoteUrl"])
    ctx.output("repoContentsUrl", made["repoContentsUrl"])
    ctx.output("repositoryId", made["repositoryId"])


AZURE_ACTIONS: tuple[Action[Any], ...] = (publish_azure,)
