"""The REST side of the GitLab, Gitea and Bitbucket actions: one small JSON client over
the integrations' httpx client (so every call passes the egress policy), and the
credential rule they share with the GitHub actions.

These hosts get no generated client: the ones that exist are synchronous over
``requests`` (python-gitlab, atlassian-python-api) or generated for one version of one
host, and could not go through the egress transport that pins each connection to the
addresses it checked; each action makes a handful of calls, written here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from falsework.actions.builtin.gitpush import source_folder
from falsework.actions.context import ActionContext
from falsework.actions.integrations import ForgeHost, Integrations, Kind, RepoUrl
from falsework.errors import ActionError, InputError

NAMES: dict[Kind, str] = {
    "github": "GitHub",
    "gitlab": "GitLab",
    "gitea": "Gitea",
    "bitbucketCloud": "Bitbucket Cloud",
    "bitbucketServer": "Bitbucket Server",
    "azure": "Azure DevOps",
}


# The outputs every ``publish:<forge>`` action of Backstage has.
PUBLISH_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "remoteUrl": {"type": "string", "description": "A URL to the repository"},
        "repoContentsUrl": {"type": "string", "description": "A URL to its root"},
        "commitHash": {"type": "string", "description": "The initial commit's hash"},
    },
}


PULL_REQUEST_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pullRequestUrl": {"type": "string", "description": "A URL to the pull request"},
    },
}


async def record_pull_request(
    ctx: ActionContext[Any], where: str, branch: str, base: str, url: str
) -> None:
    """A Bitbucket pull request in a rehearsal: the workspace it would commit, and the
    branches (the repository's default branch is not asked for: ``base`` stands for it)."""
    assert ctx.recording is not None
    await ctx.in_thread(ctx.recording.tree, await source_folder(ctx, None))
    ctx.recording.note(branch=branch, base=base)
    ctx.logger.info(f"Would open a pull request on {where} from {branch} into {base}")
    ctx.output("pullRequestUrl", url)


def refuse_signing(sign_commit: bool | None) -> None:
    """``signCommit``: Falsework has no commit-signing key to configure (Backstage's
    words when none is configured)."""
    if sign_commit:
        raise InputError(
            "Signing commits is enabled but no signing key is provided in the configuration"
        )


class ApiError(ActionError):
    """A forge answered a REST call with an error status."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class ForgeApi:
    """JSON calls to one forge's API as one credential."""

    def __init__(self, client: httpx.AsyncClient, kind: Kind, what: str) -> None:
        self.client = client
        self.kind = kind
        self.what = what

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """The decoded answer (None when empty); ``ApiError`` for an error status, naming
        the call and the host's own message; an unreachable host is ``ActionError``."""
        try:
            response = await self.client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise ActionError(
                f"{self.what}: {NAMES[self.kind]} could not be reached "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if response.status_code >= 400:
            detail = _message(response)
            raise ApiError(
                f"{self.what}: {NAMES[self.kind]} answered {response.status_code} to "
                f"{method} {response.request.url.path}: {detail}",
                response.status_code,
                detail,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        # GitLab: message (a string or a dict of field errors); Gitea: message;
        # Bitbucket Cloud: error.message; Bitbucket Server: errors[].message
        for key in ("message", "error", "errors"):
            if key in body:
                value = body[key]
                if isinstance(value, dict) and "message" in value:
                    return str(value["message"])
                if isinstance(value, dict):  # GitLab's field errors: {"name": ["is taken"]}
                    return "; ".join(
                        f"{field} {', '.join(map(str, why)) if isinstance(why, list) else why}"
                        for field, why in value.items()
                    )
                if isinstance(value, list):
                    return "; ".join(
                        str(v.get("message", v)) if isinstance(v, dict) else str(v) for v in value
                    )
                return str(value)
    return str(body)[:300]


def credential(
    integrations: Integrations,
    kind: Kind,
    repo: RepoUrl,
    owner: str | None,
    token: str | None,
    what: str,
) -> tuple[ForgeHost, str]:
    """The host's integration and the token to use: the step's ``token`` input, else the
    configured one when its ``allowedOwners`` cover ``owner``."""
    host = integrations.require(kind, repo.host, what)
    chosen = token or host.token_for(owner)
    if not chosen:
        raise InputError(
            f"{what}: no token available for host {repo.host} (owner {owner}, repo "
            f"{repo.repo}); give the step a token input, or configure integrations.{kind} "
            "with a token whose allowedOwners include that owner"
        )
    return host, chosen


@asynccontextmanager
async def forge_api(
    integrations: Integrations,
    host: ForgeHost,
    headers: dict[str, str],
    what: str,
) -> AsyncIterator[ForgeApi]:
    base = host.api_base_url.rstrip("/")
    async with integrations.client(base, {"Accept": "application/json", **headers}) as client:
        yield ForgeApi(client, host.kind, what)
