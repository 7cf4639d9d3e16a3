"""What every forge does for the actions that publish to it, as one small protocol:
where a repository is (its clone URL, default branch and web page), how git
authenticates to it, and its change requests (GitHub's and Gitea's pull requests,
GitLab's merge requests, Bitbucket's and Azure's pull requests).

Each host module maps the protocol onto its own API (``github.py``, ``gitlab.py``,
``gitea.py``, ``bitbucket_cloud.py``, ``bitbucket_server.py``, ``azure.py``); the flows
that use it live here once:

- a ``publish:<forge>`` action creates the repository (a checkpoint keyed by the
  host's own Backstage key; ``made_earlier`` adopts the one an interrupted earlier
  run of the step created), then ``push_contents`` commits the workspace folder and
  pushes it as the first commit of the default branch (a second checkpoint), and
  ``record_publish`` is its rehearsal;
- a ``publish:<forge>:pull-request`` action whose source branch is new commits the
  workspace over the target branch with ``commit_workspace``;
- the pull-request actions ask ``opened_earlier`` before opening one, so the recovery
  of a run interrupted after its request was opened reuses it;
- ``open_or_reuse_change_request`` finds the open change request of a branch, else
  opens one (so a rerun or a recovery never opens a second), marked as a draft the
  way the host marks drafts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from falsework.actions.builtin.forgeapi import NAMES, ApiError
from falsework.actions.builtin.gitpush import Author, push_changes, push_folder, source_folder
from falsework.actions.context import ActionContext
from falsework.actions.git import GitPolicy, open_remote, pushed_before, run_git
from falsework.actions.integrations import Integrations, Kind, RepoUrl
from falsework.errors import InputError


@dataclass(frozen=True)
class GitAuth:
    """How git sends a credential to the host: ``token`` as the password of
    ``username``, or as a bearer token (Bitbucket Server's HTTP access tokens)."""

    token: str
    username: str
    bearer: bool = False


@dataclass(frozen=True)
class Repository:
    clone_url: str
    default_branch: str
    web_url: str  # the repository's page, no trailing slash


@dataclass(frozen=True)
class Proposal:
    """A change request to open: ``branch`` into ``base``."""

    branch: str
    base: str
    title: str
    description: str
    draft: bool = False


@dataclass(frozen=True)
class ChangeRequest:
    number: int
    url: str


class Forge(Protocol):
    """One repository on one forge, as one credential."""

    kind: Kind
    git: GitAuth

    async def repository(self) -> Repository: ...

    def compare_url(self, repository: Repository, base: str, branch: str) -> str:
        """The host's page of what ``branch`` adds to ``base``."""
        ...

    async def find_open_change_request(self, branch: str, base: str) -> ChangeRequest | None: ...

    async def open_change_request(self, proposal: Proposal) -> ChangeRequest:
        """A new change request, a draft as the host marks them when ``proposal.draft``."""
        ...


# Opens a Forge for (integrations, repository, the step's token, the action's name).
ForgeOpener = Callable[[Integrations, RepoUrl, str | None, str], AbstractAsyncContextManager[Forge]]


def forge_kind(integrations: Integrations, repo: RepoUrl, what: str) -> Kind:
    """The kind of forge ``repo``'s host is, from the configured integrations (and the
    public hosts every Backstage knows)."""
    found = [kind for kind in NAMES if integrations.host(kind, repo.host) is not None]
    if not found:
        raise InputError(
            f"{what}: no integration is configured for host {repo.host!r}; add it to the "
            "server's integrations (github, gitlab, gitea, bitbucketCloud, bitbucketServer "
            "or azure)"
        )
    return found[0]


async def open_or_reuse_change_request(
    forge: Forge, proposal: Proposal, log: Callable[[str], Any]
) -> ChangeRequest:
    """The open change request of ``proposal.branch`` into its base, else a new one:
    idempotent, so a rerun or a recovery reuses what an earlier run opened."""
    found = await forge.find_open_change_request(proposal.branch, proposal.base)
    if found is not None:
        log(f"{_noun(forge.kind)} #{found.number} is open already: reusing it")
        return found
    made = await forge.open_change_request(proposal)
    log(f"{_noun(forge.kind)} #{made.number}: {made.url}")
    return made


async def opened_earlier(
    ctx: ActionContext[Any], forge: Forge, branch: str, base: str
) -> ChangeRequest | None:
    """The open change request of ``branch`` into ``base`` when an interrupted earlier
    run of this step may have opened it (its key is ``earlier``): that run's, to
    reuse. A new task never adopts one (Backstage refuses it, and so do we)."""
    if not (await ctx.step_key()).earlier:
        return None
    found = await forge.find_open_change_request(branch, base)
    if found is not None:
        ctx.logger.info(
            f"{_noun(forge.kind)} #{found.number} was opened by an earlier run of this step: "
            "not opening another"
        )
    return found


def _noun(kind: Kind) -> str:
    return "Merge request" if kind == "gitlab" else "Pull request"


def drafted_title(title: str, draft: bool, prefix: str) -> str:
    """Hosts whose API has no draft flag mark a draft by its title's prefix (GitLab's
    ``Draft:``, Gitea's ``WIP:``)."""
    return f"{prefix} {title}" if draft and not title.startswith(prefix) else title


@dataclass(frozen=True)
class FirstPush:
    """What a publish action pushes to the repository it created: the workspace folder
    ``source_path`` as one commit on ``branch``."""

    source_path: str | None
    branch: str
    message: str
    author: Author


async def push_contents(
    ctx: ActionContext[Any],
    key: str,
    remote: str,
    push: FirstPush,
    policy: GitPolicy,
    git: GitAuth,
) -> str:
    """The commit pushed, once per task: a checkpoint under ``key`` (the host's
    Backstage key), so a rerun or recovery finds the earlier run's commit."""

    async def run() -> str:
        return await push_folder(
            ctx,
            source=await source_folder(ctx, push.source_path),
            remote=remote,
            branch=push.branch,
            message=push.message,
            author=push.author,
            policy=policy,
            token=git.token,
            username=git.username,
            bearer=git.bearer,
        )

    commit: str = await ctx.checkpoint(key, run)
    return commit


async def record_publish(
    ctx: ActionContext[Any],
    source_path: str | None,
    remote: str,
    branch: str,
    saying: str,
    outputs: dict[str, Any],
) -> None:
    """A publish action's rehearsal: the tree it would push to ``remote``, its
    ``outputs`` as the host would answer them."""
    assert ctx.recording is not None
    await ctx.in_thread(ctx.recording.tree, await source_folder(ctx, source_path))
    ctx.recording.note(remote=remote, branch=branch)
    ctx.logger.info(saying)
    for name, value in outputs.items():
        ctx.output(name, value)


async def commit_workspace(
    ctx: ActionContext[Any],
    remote: str,
    base: str,
    branch: str,
    message: str,
    author: Author,
    policy: GitPolicy,
    git: GitAuth,
) -> str | None:
    """The whole workspace laid over ``base`` as one commit pushed to the new
    ``branch`` (the Bitbucket pull-request actions' way, as Backstage's); None when
    that changes nothing (the caller makes the branch through the host's API)."""
    commit, _ = await push_changes(
        ctx,
        source=await source_folder(ctx, None),
        remote=remote,
        base=base,
        branch=branch,
        target_path=None,
        delete=[],
        message=message,
        author=author,
        policy=policy,
        token=git.token,
        update=False,
        username=git.username,
        bearer=git.bearer,
    )
    return commit


async def made_earlier(
    ctx: ActionContext[Any],
    refused: ApiError,
    taken: int,
    found: Callable[[], Awaitable[dict[str, Any]]],
    clone_url: Callable[[dict[str, Any]], str],
    branch: str,
    policy: GitPolicy,
    git: GitAuth,
) -> dict[str, Any]:
    """The repository whose creation the host ``refused`` with ``taken`` (its answer
    for a name in use), when an interrupted earlier run of this step created it: the
    step had its key before (``StepKey.earlier``), and the repository is empty or
    its ``branch`` holds the commit that run pushed (carrying the key). Anything
    else (another's repository of that name) raises ``refused`` as it was."""
    key = await ctx.step_key()
    if not key.earlier or refused.status != taken:
        raise refused
    repo = await found()
    url = clone_url(repo)
    remote = await open_remote(
        policy, url, token=git.token, username=git.username, bearer=git.bearer
    )
    local = ctx.create_temp_dir() / "probe.git"
    await run_git(policy, ["init", "-q", "--bare", str(local)])
    heads = await run_git(policy, ["ls-remote", "--heads", "--", remote.url], remote=remote)
    if heads.strip() and not await pushed_before(
        policy, [f"--git-dir={local}"], remote, branch, key.value
    ):
        raise refused
    ctx.logger.info(
        f"Repository {remote.shown} was created by an earlier run of this step: using it"
    )
    return repo
