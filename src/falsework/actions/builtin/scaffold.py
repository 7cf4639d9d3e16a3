"""``scaffold:update`` — bring a repository made with scaffold recording up to a
newer version of its template, as a branch and a pull request (docs/updates.md).

The step an update task runs (``POST /api/falsework/v1/scaffolds/updates``
makes such tasks). It fetches the repository's branch and its
``falsework/pristine`` branch, renders the new version with the recorded
answers (a rehearsal: nothing leaves the machine), merges it 3-way over the
recorded pristine base, and pushes the new pristine commit and the branch
``falsework/update/<template>-<version>``. With a ``repoUrl`` on a configured
forge (GitHub, GitLab, Gitea, Bitbucket Cloud or Server, Azure DevOps) it opens
the host's change request through forge.py, a draft listing the conflicted files
when there are any; otherwise its outputs give the branch and a compare URL.

Idempotent: its commits are made with fixed dates, so a rerun (a retry, a
recovery after the worker died mid-push) makes the same commits and finds what
an earlier run pushed; an existing update branch for the same version is
reused, never replaced, and an open change request for it is reused.

This module opens the remote and the forge; the fetch, render, merge and push
are template updates' work, reached through the scaffold service its settings
carry (``UpdatePolicy.scaffolds``, ``falsework.actions.scaffolding``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from falsework.actions.builtin.azure import azure_forge
from falsework.actions.builtin.bitbucket_cloud import bitbucket_cloud_forge
from falsework.actions.builtin.bitbucket_server import bitbucket_server_forge
from falsework.actions.builtin.forge import (
    Forge,
    ForgeOpener,
    Proposal,
    forge_kind,
    open_or_reuse_change_request,
)
from falsework.actions.builtin.gitea import gitea_forge
from falsework.actions.builtin.github import github_forge
from falsework.actions.builtin.gitlab import gitlab_forge
from falsework.actions.builtin.publish import allowed_local_remote
from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.actions.git import Remote, host_port, local_remote, open_remote
from falsework.actions.integrations import Integrations, Kind, RepoUrl
from falsework.actions.policies import UpdatePolicy
from falsework.actions.scaffolding import UpdateRequest, unavailable
from falsework.errors import ActionError

FORGES: dict[Kind, ForgeOpener] = {
    "github": github_forge,
    "gitlab": gitlab_forge,
    "gitea": gitea_forge,
    "bitbucketCloud": bitbucket_cloud_forge,
    "bitbucketServer": bitbucket_server_forge,
    "azure": azure_forge,
}


class ScaffoldUpdateInput(ActionInput):
    remote_url: str | None = Field(
        None,
        description="The repository to update as a git remote (the rules of publish:git's "
        "remoteUrl). Give this or repoUrl.",
    )
    repo_url: str | None = Field(
        None,
        description="The repository on a configured forge, in its publish action's form "
        "(`github.com?owner=O&repo=R`, `dev.azure.com?organization=O&project=P&repo=R`, ...): "
        "cloned from there, and the update opened as a pull (GitLab: merge) request.",
    )
    branch: str | None = Field(
        None, description="The branch to update (default: main, or the repository's default)."
    )
    to: str | None = Field(
        None,
        description="The version: a tag, branch or commit of the template's repository "
        "(default: the newest tag by semantic version).",
    )
    values: dict[str, Any] = Field(
        default_factory=dict, description="Answers to change or add (new required parameters)."
    )
    token: str | None = Field(None, description="Credential for the repository's host.")
    username: str = Field(
        "x-access-token",
        description="User name git sends with `token` (with repoUrl, default: the host's).",
    )

    @model_validator(mode="after")
    def _one_repository(self) -> ScaffoldUpdateInput:
        if bool(self.remote_url) == bool(self.repo_url):
            raise ValueError("give exactly one of remoteUrl and repoUrl")
        return self


def compare_url(remote: str, base: str, branch: str) -> str:
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https"):
        root = parts._replace(netloc=host_port(remote), query="", fragment="").geturl()
        return f"{root.removesuffix('/').removesuffix('.git')}/compare/{base}...{branch}"
    return f"{remote}#{branch}"


@action(
    id="scaffold:update",
    description="Updates a repository made with scaffold recording (publish:git's "
    "`scaffold: true`) to a newer version of its template: a 3-way merge by git over the "
    "recorded pristine render, pushed as branch falsework/update/<template>-<version> and, "
    "with repoUrl, opened as a pull request (GitLab: a merge request) on GitHub, GitLab, "
    "Gitea, Bitbucket Cloud or Server, or Azure DevOps: a draft listing the conflicted files "
    "when the merge has conflicts, which are committed as conflict markers.",
    input=ScaffoldUpdateInput,
    settings=UpdatePolicy,
    output={
        "type": "object",
        "properties": {
            "upToDate": {"type": "boolean", "description": "Nothing to update."},
            "fromVersion": {"type": "string", "description": "The version the branch had."},
            "version": {"type": "string", "description": "The version updated to."},
            "branch": {"type": "string", "description": "The update's branch."},
            "commit": {"type": "string", "description": "The update's commit."},
            "conflicts": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The files with conflict markers.",
            },
            "compareUrl": {"type": "string", "description": "Where to see the change."},
            "pullRequestUrl": {
                "type": "string",
                "description": "The pull request (GitLab: merge request).",
            },
            "pullRequestNumber": {"type": "number", "description": "Its number."},
            "scaffold": {
                "type": "object",
                "description": "What the server records of the repository: its name "
                "(`remote#branch`), template, the version its branch has, and the update.",
            },
        },
    },
    examples=[
        (
            "Update a repository on GitHub to the newest version of its template",
            "steps:\n  - id: update\n    name: Update\n    action: scaffold:update\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=payments\n",
        ),
        (
            "Update a plain git repository to v2.0.0, answering a new parameter",
            "steps:\n  - id: update\n    name: Update\n    action: scaffold:update\n"
            "    input:\n      remoteUrl: payments.git\n      to: v2.0.0\n"
            "      values:\n        tier: gold\n",
        ),
    ],
)
async def scaffold_update(ctx: ActionContext[ScaffoldUpdateInput], policy: UpdatePolicy) -> None:
    inp = ctx.input
    scaffolds = policy.scaffolds
    if scaffolds is None:
        raise ActionError(unavailable("scaffold:update"))
    git_policy = policy.publish.git
    repo_url = RepoUrl.parse(inp.repo_url) if inp.repo_url else None
    compare_at: Callable[[str, str], str]
    bearer = False
    if repo_url is not None:
        async with _forge(policy.integrations, repo_url, inp.token) as forge:
            found = await forge.repository()
            token: str | None = forge.git.token
            username = inp.username if "username" in inp.model_fields_set else forge.git.username
            bearer = forge.git.bearer
            compare_at = partial(forge.compare_url, found)
        url = found.clone_url
        branch = inp.branch or found.default_branch
    else:
        assert inp.remote_url is not None
        url, branch, token, username = inp.remote_url, inp.branch or "main", inp.token, inp.username
        compare_at = partial(compare_url, url)

    async def push() -> dict[str, Any]:
        local = allowed_local_remote(policy.publish, url)
        remote: Remote
        if local is not None:
            remote = local_remote(local)
        else:
            remote = await open_remote(
                git_policy, url, token=token, username=username, bearer=bearer
            )
        request = UpdateRequest(
            remote=remote,
            url=url,
            branch=branch,
            to=inp.to,
            overrides=inp.values,
            git=git_policy,
            template_roots=policy.template_roots,
            policies=policy.policies,
            repo_dir=ctx.create_temp_dir(),
            work_dir=ctx.create_temp_dir(),
        )
        result = await scaffolds.update(request, ctx.logger)
        if not result["upToDate"]:
            result["compareUrl"] = compare_at(branch, result["branch"])
        return result

    async def in_turn() -> dict[str, Any]:
        async with _turns(policy.parallel):
            return await push()

    pushed: dict[str, Any] = await ctx.checkpoint("push", in_turn)
    for key in ("upToDate", "fromVersion", "version", "branch", "commit", "conflicts", "scaffold"):
        if key in pushed:
            ctx.output(key, pushed[key])
    if pushed["upToDate"]:
        return
    ctx.output("compareUrl", pushed["compareUrl"])
    if repo_url is not None:
        pull = await ctx.checkpoint("pull-request", lambda: _pull_request(ctx, policy, pushed))
        ctx.output("pullRequestUrl", pull["url"])
        pushed["scaffold"]["update"]["pullRequestUrl"] = pull["url"]
        ctx.output("scaffold", pushed["scaffold"])
        ctx.output("pullRequestNumber", pull["number"])


def _forge(
    integrations: Integrations, repo: RepoUrl, token: str | None
) -> AbstractAsyncContextManager[Forge]:
    what = "scaffold:update"
    return FORGES[forge_kind(integrations, repo, what)](integrations, repo, token, what)


async def _pull_request(
    ctx: ActionContext[ScaffoldUpdateInput], policy: UpdatePolicy, pushed: dict[str, Any]
) -> dict[str, Any]:
    """The open pull (merge) request of the update's branch, or a new one: a draft
    titled as conflicted when there are conflicts (never auto-merged)."""
    inp = ctx.input
    assert inp.repo_url is not None
    conflicted = bool(pushed["conflicts"])
    proposal = Proposal(
        branch=pushed["branch"],
        base=pushed["base"],
        title=("[conflicts] " if conflicted else "") + str(pushed["title"]),
        description=pushed["description"],
        draft=conflicted,
    )
    async with _forge(policy.integrations, RepoUrl.parse(inp.repo_url), inp.token) as forge:
        made = await open_or_reuse_change_request(forge, proposal, ctx.logger.info)
    return {"url": made.url, "number": made.number}


_TURNS: dict[tuple[int, int], asyncio.Semaphore] = {}


def _turns(parallel: int) -> asyncio.Semaphore:
    """The process's (event loop's) turns at computing an update."""
    key = (id(asyncio.get_running_loop()), parallel)
    turns = _TURNS.get(key)
    if turns is None:
        turns = _TURNS[key] = asyncio.Semaphore(parallel)
    return turns
