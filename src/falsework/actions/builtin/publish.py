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
any git runs. A network remote goes through the git policy (transports, egress,
scoped credentials: ``falsework.actions.git``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.actions.git import (
    GitPolicy,
    Remote,
    commit_folder,
    failure,
    git_result,
    host_port,
    keyed_message,
    local_remote,
    open_remote,
    pushed_before,
    redact_urls,
    remote_kind,
    run_git,
)
from falsework.actions.paths import is_within
from falsework.actions.policies import PublishPolicy
from falsework.actions.rehearsal import PLACEHOLDER_COMMIT
from falsework.actions.scaffolding import PRISTINE_BRANCH, ScaffoldRecord, scaffold_key, unavailable
from falsework.confine import Tree, relative
from falsework.errors import ActionError, UnsafePathError


class PublishGitInput(ActionInput):
    remote_url: str = Field(
        description="The git remote to push to: https://…, ssh://…, git@host:org/repo.git, or "
        "a repository on this machine given as a path or a file:// URL. A relative path is "
        "taken inside the remotes folder (`DATA_DIR/remotes`, by default "
        "`.falsework/remotes/`). A local remote must lie in the remotes folder or a folder "
        "listed in `FALSEWORK_PUBLISH_ROOTS` (`falsework run` allows any path); one that "
        "does not exist yet is "
        "created there as a bare repository. Any other local path is refused."
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
    remote_out = str(local) if local is not None and not _is_absolute(inp.remote_url) else None

    async def publish() -> dict[str, Any]:
        env = {
            "GIT_AUTHOR_NAME": inp.git_author_name,
            "GIT_AUTHOR_EMAIL": inp.git_author_email,
            "GIT_COMMITTER_NAME": inp.git_author_name,
            "GIT_COMMITTER_EMAIL": inp.git_author_email,
        }
        # The repository's own files live in a fresh temp folder, never in the
        # workspace: a `.git` a skeleton or an earlier step left there could
        # otherwise configure git (core.fsmonitor, hooks, filters run commands).
        repo = ctx.create_temp_dir() / "repo.git"
        git = [f"--git-dir={repo}", f"--work-tree={source}"]
        key = await ctx.step_key()
        message = keyed_message(inp.git_commit_message, key.value)
        # A local remote that does not exist yet is made first and the commit's
        # objects are written straight into it, its branch then set by update-ref:
        # no push, which starts seven more processes (a shell, receive-pack,
        # pack-objects, unpack-objects, rev-list, for-each-ref, gc) to copy them
        # there. Its content is what a push leaves (objects, branch, HEAD, no reflog).
        fresh = local is not None and not inp.scaffold and not local.exists()
        if fresh:
            assert local is not None
            await _create_bare(ctx, git_policy, local, inp.branch)
            env["GIT_OBJECT_DIRECTORY"] = str(local / "objects")
        ctx.logger.info(f"Initialising git repository for {inp.source_path}")
        commit = await commit_folder(
            git_policy, repo, source, branch=inp.branch, message=message, env=env
        )
        ctx.logger.info(f"Committed {commit} as {inp.git_author_name} <{inp.git_author_email}>")
        refspecs = [f"{commit}:refs/heads/{inp.branch}"]
        scaffold: dict[str, Any] | None = None
        if inp.scaffold:
            pristine = commit
            commit, scaffold = await _record_scaffold(ctx, policy, repo, commit)
            refspecs.append(f"{pristine}:refs/heads/{PRISTINE_BRANCH}")
            refspecs[0] = f"{commit}:refs/heads/{inp.branch}"
            ctx.logger.info(f"Recorded the scaffold in {commit} (pristine: {pristine})")
        remote: Remote
        if local is not None:
            if not local.exists():
                await _create_bare(ctx, git_policy, local, inp.branch)
            elif not _is_repository(local):
                raise ActionError(
                    f"remoteUrl {inp.remote_url!r} is an existing {_kind(local)} that is not "
                    "a git repository, so nothing was pushed; give a new path (it is created "
                    "as a bare repository) or an existing repository"
                )
            remote = local_remote(local)
        else:
            remote = await open_remote(
                git_policy, inp.remote_url, token=inp.token, username=inp.username
            )
        url = remote_out or inp.remote_url

        def outputs(pushed: str) -> dict[str, Any]:
            published: dict[str, Any] = {
                "remoteUrl": url,
                "commitHash": pushed,
                "repoContentsUrl": _contents_url(url, inp.branch),
            }
            if scaffold is not None:
                published["scaffold"] = {"repository": scaffold_key(url, inp.branch), **scaffold}
            return published

        async def earlier() -> str | None:
            # the commit an interrupted earlier run of this step pushed, if any
            if not key.earlier:
                return None
            found = await pushed_before(
                git_policy, git, remote, inp.branch, key.value, cwd=source, env=env
            )
            if found is not None:
                ctx.logger.info(
                    f"Branch {inp.branch} of {remote.shown} already has {found}, pushed by an "
                    "earlier run of this step: not pushing again"
                )
            return found

        if fresh:
            create = ["update-ref", f"refs/heads/{inp.branch}", commit, ""]  # "": must be new
            made = await git_result(git_policy, [f"--git-dir={local}", *create])
            if made.code == 0:
                ctx.logger.info(f"Pushed branch {inp.branch} to {remote.shown}")
                return outputs(commit)
            # another task made the branch meanwhile: the push says what to do

        # a force-push would replace it: look first
        if inp.force and (found := await earlier()) is not None:
            return outputs(found)
        push = [*git, "push", "--porcelain", *(["--force"] if inp.force else [])]
        push += ["--", remote.url, *refspecs]
        result = await git_result(git_policy, push, cwd=source, env=env, remote=remote)
        if result.code != 0 and (found := await earlier()) is not None:
            return outputs(found)
        if result.code != 0:
            rejected = _rejection(result.out, remote.shown, inp.branch)
            if rejected is not None:
                raise ActionError(rejected)
            raise failure(push, result, remote)
        ctx.logger.info(f"Pushed branch {inp.branch} to {remote.shown}")
        return outputs(commit)

    # Checkpointed: a retried task reports the earlier push instead of pushing again;
    # a push whose checkpoint was lost (the run was interrupted) is found again by
    # the step's key in its commit (above).
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


async def _create_bare(
    ctx: ActionContext[PublishGitInput], policy: GitPolicy, local: Path, branch: str
) -> None:
    ctx.logger.info(f"Creating bare repository {local}")
    await run_git(policy, ["init", "-q", "--bare", "-b", branch, str(local)])


def published_folder(workspace: Path, source_path: str) -> Path:
    """The real folder ``sourcePath`` names (links inside the workspace on its way
    replaced by their targets), refused when a link in it points outside it:
    git commits a link as a link, and one to ``/etc/passwd`` or ``../../..`` in
    a published repository points into the machine of whoever checks it out."""
    with Tree(workspace) as ws:
        if not ws.is_dir(source_path):
            raise ActionError(f"sourcePath {source_path or '.'!r} is not a folder in the workspace")
        folder = ws.canonical(source_path)
    prefix = f"{source_path}/" if source_path else ""
    with Tree(workspace / folder, where="the published folder", prefix=prefix) as published:
        for entry in published.walk(skip=(".git",)):  # git never publishes a .git
            if entry.kind == "link":
                published.check_link(entry.path)
    return workspace / folder


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


def _is_repository(path: Path) -> bool:
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    return bare or (path / ".git").exists()


def _kind(path: Path) -> str:
    return "folder" if path.is_dir() else "file"


def _rejection(out: str, remote: str, branch: str) -> str | None:
    """A push the remote rejected, in words: what happened and what to do
    (never git's dump); None when the porcelain output shows no rejection."""
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or fields[0] != "!":
            continue
        summary = fields[2]
        if summary.startswith("[rejected]") and (
            "fetch first" in summary or "non-fast-forward" in summary
        ):
            return (
                f"Branch {branch!r} of {remote} already has commits that are not part of "
                "this push (often: an earlier run published to the same repository), so "
                "nothing was pushed. Choose another remoteUrl or branch, remove the "
                "existing repository, or set force: true to replace the branch's history."
            )
        if summary.startswith("[remote rejected]"):
            reason = summary.removeprefix("[remote rejected]").strip(" ()")
            return (
                f"{remote} refused the push to branch {branch!r}: {redact_urls(reason)}. "
                "Nothing was pushed."
            )
    return None


def _contents_url(remote: str, branch: str) -> str:
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https"):
        base = parts._replace(netloc=host_port(remote), query="", fragment="").geturl()
        return f"{base.removesuffix('/').removesuffix('.git')}/tree/{branch}"
    return f"{remote}#{branch}"
