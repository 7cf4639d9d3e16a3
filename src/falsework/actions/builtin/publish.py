"""``publish:git`` — commit the workspace and push it to any git remote.

The portable form of Backstage's ``publish:github``: no provider API, just git,
so it works with GitHub, GitLab, Gitea or a bare repository on disk. Credentials
travel in the child's environment as an HTTP header, never on its command line
(visible in ``ps``) and never in a log line.

A local remote (a path or a ``file://`` URL) must lie in the remotes folder
(``PublishPolicy.remotes_dir``, ``DATA_DIR/remotes`` on a server) or under a
publish root (``FALSEWORK_PUBLISH_ROOTS``; ``/`` for ``falsework run``); a relative
path is taken from the remotes folder, never from the process's working folder.
Anything else raises ``UnsafePathError`` naming ``remoteUrl`` and the path, before
any git runs; so does a link to nothing on the path (git would make the repository
at its target). The path is then taken as its real path (links on it are followed
once, as the check followed them), and below the allowed folder the repository's
folder and the missing ones above it are made one name at a time from the opened
folder above, so a link put on the way after the check is refused naming it,
never followed (``gitpush.LocalRepository``). The commit and the push are
``gitpush.publish_folder``, shared with the forges' actions. A network remote goes
through the git policy (transports, egress, scoped credentials:
``falsework.actions.git``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field

from falsework.actions.builtin.gitpush import (
    Author,
    LocalRepository,
    dangling_link,
    publish_folder,
    published_folder,
)
from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.actions.git import Remote, host_port, open_remote, redact_urls, remote_kind
from falsework.actions.paths import is_within
from falsework.actions.policies import PublishPolicy
from falsework.actions.rehearsal import PLACEHOLDER_COMMIT
from falsework.actions.scaffolding import PRISTINE_BRANCH, ScaffoldRecord, scaffold_key, unavailable
from falsework.confine import relative
from falsework.errors import ActionError, UnsafePathError


class PublishGitInput(ActionInput):
    remote_url: str = Field(
        description="The git remote to push to: https://…, ssh://…, git@host:org/repo.git, or "
        "a repository on this machine given as a path or a file:// URL. A relative path is "
        "taken inside the remotes folder (`DATA_DIR/remotes`, by default "
        "`.falsework/remotes/`). A local remote must lie in the remotes folder or a folder "
        "listed in `FALSEWORK_PUBLISH_ROOTS` (`falsework run` allows any path); one that "
        "does not exist yet is "
        "created there as a bare repository (and removed again, with the folders made for "
        "it, when the step fails before its branch is set). Any other local path is refused, "
        "and so is a symbolic link put on the way while the step runs."
    )
    branch: str = Field("main", description="The branch to push (created if missing).")
    source_path: str = Field("./", description="Workspace folder to publish.")
    git_commit_message: str = Field("initial commit", description="The commit message.")
    git_author_name: str = Field("Scaffolder", description="Commit author and committer name.")
    git_author_email: str = Field(
        "scaffolder@falsework.invalid", description="Commit author and committer email."
    )
    username: str = Field(
        "x-access-token", description="User name sent with `token` to an HTTP(S) remote."
    )
    token: str | None = Field(
        None, description="Credential for an HTTP(S) remote, usually `${{ secrets.TOKEN }}`."
    )
    force: bool = Field(False, description="Force-push (replace the branch's history).")
    scaffold: bool = Field(
        False,
        description="Record the scaffold for template updates (docs/updates.md): the pushed "
        "commit also becomes branch `falsework/pristine`, and a second commit on the branch "
        "adds `.falsework/scaffold.yaml` (template, version, answers). The template's folder "
        "must be in a git repository. Off by default, so the output stays as Backstage's.",
    )
    scaffold_repository: str | None = Field(
        None,
        description="With `scaffold`: the template repository later versions are fetched "
        "from (default: its checkout's `origin` remote, else its folder).",
    )


async def record_publish_git(ctx: ActionContext[PublishGitInput]) -> None:
    """In a rehearsal: the tree it would push and where, nothing pushed."""
    inp = ctx.input
    assert ctx.recording is not None
    source = await ctx.in_thread(published_folder, ctx.workspace, relative(inp.source_path))
    await ctx.in_thread(ctx.recording.tree, source)
    ctx.recording.note(remote=redact_urls(inp.remote_url), branch=inp.branch)
    ctx.logger.info(
        f"Would push {inp.source_path} to {redact_urls(inp.remote_url)} (branch {inp.branch}) "
        f"as {inp.git_author_name} <{inp.git_author_email}>: {inp.git_commit_message!r}"
    )
    ctx.output("remoteUrl", inp.remote_url)
    ctx.output("commitHash", PLACEHOLDER_COMMIT)
    ctx.output("repoContentsUrl", _contents_url(inp.remote_url, inp.branch))


@action(
    id="publish:git",
    description="Commits the workspace (or a sub-folder) to a new git repository and pushes "
    "it to a remote branch. Local remotes live in the remotes folder (`DATA_DIR/remotes`): "
    "`remoteUrl: my-service.git` creates and fills `DATA_DIR/remotes/my-service.git`. "
    "Pushing onto a branch that already has other commits fails unless `force` is set. "
    "The repository is kept outside the workspace, so a `.git` folder in the workspace is "
    "neither used nor published.",
    input=PublishGitInput,
    settings=PublishPolicy,
    recorder=record_publish_git,
    output={
        "type": "object",
        "properties": {
            "remoteUrl": {
                "type": "string",
                "description": "The remote pushed to (a relative local path made absolute).",
            },
            "commitHash": {"type": "string", "description": "The commit pushed."},
            "repoContentsUrl": {
                "type": "string",
                "description": "Where the pushed contents can be read.",
            },
            "scaffold": {
                "type": "object",
                "description": "With `scaffold`: the repository (`remote#branch`), template, "
                "version and recorded state (docs/updates.md).",
            },
        },
    },
    examples=[
        (
            "Publish the workspace to a new repository in the remotes folder",
            "steps:\n  - action: publish:git\n    id: publish\n    name: Publish\n"
            "    input:\n      remoteUrl: my-service.git\n"
            "      gitCommitMessage: Initial commit from Falsework\n",
        ),
        (
            "Publish a sub-folder to an HTTPS remote with a token",
            "steps:\n  - action: publish:git\n    id: publish\n    name: Publish\n"
            "    input:\n      remoteUrl: https://git.example.com/team/my-service.git\n"
            "      sourcePath: service\n      branch: develop\n"
            "      token: ${{ secrets.GIT_TOKEN }}\n",
        ),
    ],
)
async def publish_git(ctx: ActionContext[PublishGitInput], policy: PublishPolicy) -> None:
    inp = ctx.input
    source = await ctx.in_thread(published_folder, ctx.workspace, relative(inp.source_path))
    local = allowed_local_remote(policy, inp.remote_url)
    git_policy = policy.git
    # A relative local path is reported as the folder it became (cloneable anywhere).
    url = str(local) if local is not None and not _is_absolute(inp.remote_url) else inp.remote_url
    author = Author(inp.git_author_name, inp.git_author_email)

    async def publish() -> dict[str, Any]:
        scaffold: dict[str, Any] | None = None

        async def record(repo: Path, pristine: str) -> tuple[str, dict[str, str]]:
            nonlocal scaffold
            commit, scaffold = await _record_scaffold(ctx, policy, repo, pristine)
            ctx.logger.info(f"Recorded the scaffold in {commit} (pristine: {pristine})")
            return commit, {PRISTINE_BRANCH: pristine}

        remote: Remote | LocalRepository
        if local is not None:
            remote = below_root(policy, inp.remote_url, local)
        else:
            remote = await open_remote(
                git_policy, inp.remote_url, token=inp.token, username=inp.username
            )
        ctx.logger.info(f"Initialising git repository for {inp.source_path}")
        commit = await publish_folder(
            ctx,
            git_policy,
            source=source,
            remote=remote,
            branch=inp.branch,
            message=inp.git_commit_message,
            author=author,
            force=inp.force,
            amend=record if inp.scaffold else None,
        )
        published: dict[str, Any] = {
            "remoteUrl": url,
            "commitHash": commit,
            "repoContentsUrl": _contents_url(url, inp.branch),
        }
        if scaffold is not None:
            published["scaffold"] = {"repository": scaffold_key(url, inp.branch), **scaffold}
        return published

    # Checkpointed: a retried task reports the earlier push instead of pushing again;
    # a push whose checkpoint was lost (the run was interrupted) is found again by
    # the step's key in its commit (publish_folder).
    result: dict[str, Any] = await ctx.checkpoint("push", publish)
    for name, value in result.items():
        ctx.output(name, value)


async def _record_scaffold(
    ctx: ActionContext[PublishGitInput], policy: PublishPolicy, git_dir: Path, pristine: str
) -> tuple[str, dict[str, Any]]:
    """The commit the branch gets with ``scaffold: true``: ``pristine`` (what the
    template made) plus ``.falsework/scaffold.yaml``; and what it records (the
    step's ``scaffold`` output: the server lists it, docs/updates.md)."""
    inp = ctx.input
    if policy.scaffolds is None:
        raise ActionError(unavailable("scaffold"))
    if ctx.template_dir is None:
        raise ActionError(
            "scaffold: this task has no template folder (a template given inline), so there "
            "is no template version to record"
        )
    answers = ctx.template_context.get("parameters") or {}
    what = ScaffoldRecord(
        pristine=pristine,
        template_dir=ctx.template_dir,
        template_repository=inp.scaffold_repository,
        answers=answers if isinstance(answers, dict) else {},
        secrets=list(ctx.secrets),
        step=ctx.step_id,
        source_path=inp.source_path,
        author_name=inp.git_author_name,
        author_email=inp.git_author_email,
    )
    return await policy.scaffolds.record(git_dir, policy.git, what)


def _is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return os.path.isabs(unquote(parts.path) if parts.scheme == "file" else url)


def allowed_local_remote(policy: PublishPolicy, url: str) -> Path | None:
    """The folder a local remote (a path or a file:// URL) names, or None for a
    network remote. A local remote must lie inside the remotes folder or a
    publish root: anything else is refused, so a template cannot create or push
    into an arbitrary folder the worker can write. A transport git may not use
    (``ext::``, ``fd::``, ``git://``…) raises ``ActionError``."""
    if not url.strip():
        raise ActionError("The remoteUrl input is empty")
    parts = urlsplit(url)
    if remote_kind(policy.git, url) != "local":
        return None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ActionError(
                f"remoteUrl {url!r}: a file:// URL names a folder on this machine; "
                f"host {parts.netloc!r} is not supported"
            )
        text = unquote(parts.path)
    else:
        text = url
    if "\x00" in text:
        raise UnsafePathError(f"remoteUrl {url!r} contains a NUL byte")
    if os.path.isabs(text):
        path = Path(os.path.normpath(text))
    elif policy.remotes_dir is not None:
        path = Path(os.path.normpath(os.path.join(policy.remotes_dir, text)))
    else:
        raise UnsafePathError(
            f"remoteUrl {url!r} is a relative path, but no remotes folder is configured "
            "to take it from; give a URL or an absolute path"
        )
    _refuse_dangling(url, path)
    roots = [*policy.roots, *([policy.remotes_dir] if policy.remotes_dir else [])]
    if not any(is_within(root, path) for root in roots):
        raise UnsafePathError(
            f"remoteUrl {url!r} is a folder on this machine ({path}) outside the folders "
            "publish:git may write to; give a path inside the remotes folder (a relative "
            "path such as 'my-service.git' lands there) or a URL of a git server"
        )
    if any(os.path.realpath(root) == os.path.realpath(path) for root in roots):
        raise UnsafePathError(
            f"remoteUrl {url!r} names an allowed folder itself ({path}), not a repository "
            "inside it; give a path such as 'my-service.git'"
        )
    return path


def _refuse_dangling(url: str, path: Path) -> None:
    """A link to nothing on the way is refused before anything is made: git init
    would make the repository at the link's target, wherever that is."""
    for step in (path, *path.parents):
        if os.path.islink(step) and not os.path.exists(step):
            raise dangling_link(url, step)


def below_root(policy: PublishPolicy, url: str, path: Path) -> LocalRepository:
    """The checked local remote ``path`` as the names below the innermost allowed
    folder its real path lies in, which ``publish_folder`` walks without following
    a link. Links on the path now (a linked home or temporary folder) are followed
    here, once, as the check did; one put on the way after this is refused by the
    walk."""
    _refuse_dangling(url, path)
    real = Path(os.path.realpath(path))
    found: LocalRepository | None = None
    roots = [*policy.roots, *([policy.remotes_dir] if policy.remotes_dir else [])]
    for root in roots:
        base = Path(os.path.realpath(root))
        if real.is_relative_to(base):
            names = real.relative_to(base).parts
            if found is None or len(names) < len(found.names):
                found = LocalRepository(base, names)
    if found is None:  # a link on the way changed since the check
        raise UnsafePathError(
            f"remoteUrl {url!r}: {path} now leads to {real}, outside the folders "
            "publish:git may write to (a link on the way changed after the check)"
        )
    return found


def _contents_url(remote: str, branch: str) -> str:
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https"):
        base = parts._replace(netloc=host_port(remote), query="", fragment="").geturl()
        return f"{base.removesuffix('/').removesuffix('.git')}/tree/{branch}"
    return f"{remote}#{branch}"
