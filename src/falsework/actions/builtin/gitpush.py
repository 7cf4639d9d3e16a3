"""Git transfer for the forge actions (publish:github, publish:gitlab, their pull and
merge requests, ...): the same git helper and hardening as ``publish:git`` (a
repository kept outside the workspace, no hooks, no signing prompt, credentials in the
child's environment, never on its command line).

``push_folder`` publishes a workspace folder as the first commit of a branch;
``push_changes`` lays a workspace folder over a branch of an existing repository and
pushes the result to another branch (the commit behind a pull request).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falsework.actions.context import ActionContext
from falsework.actions.git import (
    GitPolicy,
    GitResult,
    Remote,
    commit_folder,
    failure,
    git_result,
    keyed_message,
    local_remote,
    open_remote,
    pushed_before,
    redact_urls,
    run_git,
)
from falsework.confine import Tree, relative
from falsework.errors import ActionError, FalseworkError, UnsafePathError

DEFAULT_AUTHOR_EMAIL = "scaffolder@falsework.invalid"


@dataclass(frozen=True)
class Author:
    name: str
    email: str

    @classmethod
    def given(cls, name: str | None, email: str | None) -> Author:
        """The author a step's gitAuthorName/gitAuthorEmail name, Backstage's default
        (Scaffolder) for what they leave out."""
        return cls(name or "Scaffolder", email or DEFAULT_AUTHOR_EMAIL)

    def env(self) -> dict[str, str]:
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


async def source_folder(ctx: ActionContext[Any], source_path: str | None) -> Path:
    """The workspace folder to push (as publish:git: refused when a link in it
    points outside it)."""
    return await ctx.in_thread(published_folder, ctx.workspace, relative(source_path or "./"))


async def push_folder(
    ctx: ActionContext[Any],
    *,
    source: Path,
    remote: str,
    branch: str,
    message: str,
    author: Author,
    policy: GitPolicy,
    token: str | None,
    username: str = "x-access-token",
    bearer: bool = False,
) -> str:
    """Commit ``source`` as one commit on ``branch`` of the network remote ``remote``
    and push it (:func:`publish_folder`); the commit's id. ``username`` goes with
    ``token`` in git's Basic authorization (GitHub and GitLab take any name, Bitbucket
    and Gitea the account's); ``bearer`` sends the token as a bearer token instead
    (Bitbucket Server's HTTP access tokens)."""
    target = await open_remote(policy, remote, token=token, username=username, bearer=bearer)
    return await publish_folder(
        ctx, policy, source=source, remote=target, branch=branch, message=message, author=author
    )


# What ``publish_folder`` may add to the commit before it is published (publish:git's
# scaffold record): given the temp repository and the commit, the commit the branch
# gets and other branches to push with it (name -> commit).
Amend = Callable[[Path, str], Awaitable[tuple[str, dict[str, str]]]]


async def publish_folder(
    ctx: ActionContext[Any],
    policy: GitPolicy,
    *,
    source: Path,
    remote: Remote | LocalRepository,
    branch: str,
    message: str,
    author: Author,
    force: bool = False,
    amend: Amend | None = None,
) -> str:
    """Commit ``source`` as the first commit of ``branch`` and publish it to
    ``remote``: a network remote opened by the caller, or a repository on this
    machine (below a folder the caller checked it against), made as a bare
    repository when it does not exist. The commit's id, or the one an interrupted
    earlier run of the step published (found by the step's key in its message).

    The repository the commit is made in lives in a fresh temp folder, never in the
    workspace: a ``.git`` a skeleton or an earlier step left there could otherwise
    configure git (core.fsmonitor, hooks, filters run commands).

    A repository made here gets the commit's objects written straight into it and
    its branch set by ``update-ref`` (no push, which starts seven more processes: a
    shell, receive-pack, pack-objects, unpack-objects, rev-list, for-each-ref, gc);
    its content is what a push leaves (objects, branch, HEAD, no reflog). When
    anything fails before a branch lands in it, it is removed again."""
    env = author.env()
    key = await ctx.step_key()
    repo = ctx.create_temp_dir() / "repo.git"
    git = [f"--git-dir={repo}", f"--work-tree={source}"]
    made: _Made | None = None
    if isinstance(remote, LocalRepository):
        made = await _open_local(ctx, policy, remote, branch)
        remote = local_remote(remote.path)
    try:
        # the objects go straight into a new repository, unless amend adds a commit
        direct = made is not None and amend is None
        if direct:
            env["GIT_OBJECT_DIRECTORY"] = str(remote.url) + "/objects"
        keyed = keyed_message(message, key.value)
        commit = await commit_folder(policy, repo, source, branch=branch, message=keyed, env=env)
        ctx.logger.info(f"Committed {commit} as {author.name} <{author.email}>")
        others: dict[str, str] = {}
        if amend is not None:
            commit, others = await amend(repo, commit)
        if direct:
            set_ref = ["update-ref", f"refs/heads/{branch}", commit, ""]  # "": must be new
            if (await git_result(policy, [f"--git-dir={remote.url}", *set_ref])).code == 0:
                ctx.logger.info(f"Pushed branch {branch} to {remote.shown}")
                return commit
            # another task made the branch meanwhile: the push says what to do

        async def earlier() -> str | None:
            # the commit an interrupted earlier run of this step pushed, if any
            if not key.earlier:
                return None
            found = await pushed_before(policy, git, remote, branch, key.value, cwd=source, env=env)
            if found is not None:
                ctx.logger.info(_reused(found, branch, remote.shown))
            return found

        # a force-push would replace it: look first
        if force and (found := await earlier()) is not None:
            return found
        refspecs = [f"{c}:refs/heads/{b}" for b, c in {branch: commit, **others}.items()]
        push = [*git, "push", "--porcelain", *(["--force"] if force else [])]
        push += ["--", remote.url, *refspecs]
        result = await git_result(policy, push, cwd=source, env=env, remote=remote)
        if result.code != 0 and (found := await earlier()) is not None:
            return found
        if result.code != 0:
            raise refused(push, result, remote, branch)
        ctx.logger.info(f"Pushed branch {branch} to {remote.shown}")
        return commit
    except BaseException:
        if made is not None:
            # (not in a thread: this also runs when the step is cancelled, and a
            # repository with no branch is a few files)
            _remove_unused(made)
        raise


@dataclass(frozen=True)
class LocalRepository:
    """A repository on this machine: ``names`` below ``root``, a folder the caller
    allows (its own path is the server's choice, followed as configured). Below
    it, no name may be a symbolic link: the path is made and opened one name at a
    time (:func:`_make_below`)."""

    root: Path
    names: tuple[str, ...]

    @property
    def path(self) -> Path:
        return self.root.joinpath(*self.names)


@dataclass(frozen=True)
class _Made:
    """What :func:`_open_local` made: the repository and, outermost first, the
    folders above it that did not exist before."""

    repo: Path
    folders: tuple[Path, ...]


async def _open_local(
    ctx: ActionContext[Any], policy: GitPolicy, local: LocalRepository, branch: str
) -> _Made | None:
    """Make ``local`` a new bare repository whose HEAD is ``branch`` and return
    what was made; None when a repository is there already. Its folder and the
    missing ones above it are made one name at a time from the opened folder
    above (``mkdir`` relative to a descriptor opened with ``O_NOFOLLOW``), so a
    link found, or put, at any name below the root is refused naming it, never
    followed: the repository is made where the caller checked, or not at all."""
    path = local.path

    def make() -> _Made | None:
        made, folder = _make_below(local)
        if made is None:
            if not is_repository(folder):
                raise ActionError(
                    f"remoteUrl {path} is an existing folder that is not a git "
                    "repository, so nothing was pushed; give a new path (it is created "
                    "as a bare repository) or an existing repository"
                )
            return None
        return made

    made = await ctx.in_thread(make)
    if made is None:
        return None
    ctx.logger.info(f"Creating bare repository {path}")
    try:
        await run_git(policy, ["init", "-q", "--bare", "-b", branch, str(path)])
    except BaseException:
        _remove_unused(made)
        raise
    return made


# O_PATH (Linux): a folder the process may pass through but not list (mode 711, as
# a home folder) opens as well as by path
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _make_below(local: LocalRepository) -> tuple[_Made | None, Path]:
    """Walk ``local.names`` from its root, each name opened with ``O_NOFOLLOW``
    relative to the folder above and made there when missing. Returns what was
    made (None when the last folder existed) and that folder. A link at any
    name raises ``UnsafePathError`` naming it; the root is made when missing
    (it is the server's), and what this call made goes again when it fails."""
    os.makedirs(local.root, exist_ok=True)
    fd = os.open(local.root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    made: list[Path] = []
    here = local.root
    try:
        for name in local.names:
            here = here / name
            try:
                os.mkdir(name, 0o777, dir_fd=fd)
            except FileExistsError:
                pass
            else:
                made.append(here)
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _not_a_folder(local, here, name, fd) from exc
            os.close(fd)
            fd = child
    except BaseException:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise
    finally:
        os.close(fd)
    if not made or made[-1] != here:
        return None, here
    return _Made(here, tuple(made[:-1])), here


def _not_a_folder(local: LocalRepository, at: Path, name: str, fd: int) -> FalseworkError:
    """Why the name ``name`` (at ``at``) on the way to a local repository could not
    be opened as a folder: a link (refused, naming it), a file, or the system's
    reason."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError as exc:
        return ActionError(f"remoteUrl {local.path}: {at}: {exc.strerror or exc}")
    if stat.S_ISLNK(st.st_mode):
        if not os.path.exists(at):
            return dangling_link(str(local.path), at)
        return UnsafePathError(
            f"remoteUrl {str(local.path)!r}: {at} is a symbolic link; publish:git never "
            "makes or pushes to a repository on this machine through a link (it may have "
            "been put there after the path was checked): give a path with no link below "
            f"{local.root}"
        )
    if at == local.path:
        return ActionError(
            f"remoteUrl {at} is an existing file that is not a git repository, so nothing "
            "was pushed; give a new path (it is created as a bare repository) or an "
            "existing repository"
        )
    return ActionError(f"remoteUrl {local.path}: {at} is a file, not a folder")


def dangling_link(url: str, path: Path) -> UnsafePathError:
    """A local remote with a link to nothing on its path (``path``): refused, never
    followed (its target may lie anywhere)."""
    return UnsafePathError(
        f"remoteUrl {url!r}: {path} is a symbolic link to nothing; publish:git never "
        "makes a repository through a link: remove the link or give another path"
    )


def is_repository(path: Path) -> bool:
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    return bare or (path / ".git").exists()


def _remove_unused(made: _Made) -> None:
    """Remove the repository made at ``made.repo`` unless a branch landed in it
    (another task may have pushed into it meanwhile), then the folders made above
    it that are still empty (another task may have put something there)."""
    repo = made.repo
    heads = repo / "refs" / "heads"
    try:
        if (repo / "packed-refs").exists() or (heads.is_dir() and any(heads.iterdir())):
            return
        shutil.rmtree(repo)
        for folder in reversed(made.folders):
            os.rmdir(folder)
    except OSError:
        pass


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


def refused(push: list[str], result: GitResult, remote: Remote, branch: str) -> FalseworkError:
    """The error of a failed push: the remote's rejection in words, else git's."""
    rejected = _rejection(result.out, remote.shown, branch)
    return ActionError(rejected) if rejected is not None else failure(push, result, remote)


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


def _reused(commit: str, branch: str, remote: str) -> str:
    return (
        f"Branch {branch} of {remote} already has {commit}, pushed by an earlier run of "
        "this step: not pushing again"
    )


async def push_changes(
    ctx: ActionContext[Any],
    *,
    source: Path,
    remote: str,
    base: str | None,
    branch: str,
    target_path: str | None,
    delete: list[str],
    message: str,
    author: Author,
    policy: GitPolicy,
    token: str | None,
    update: bool,
    username: str = "x-access-token",
    bearer: bool = False,
    check: Callable[[Path], None] | None = None,
    branch_when_unchanged: bool = False,
) -> tuple[str | None, str]:
    """Lay ``source`` over ``base`` (the remote's default branch when None), or over
    ``branch`` itself when it exists and ``update`` is set, and push the commit to
    ``branch``. Returns ``(commit or None when nothing changed, the base branch)``.
    The commit carries the step's key; a ``branch`` that exists because an
    interrupted earlier run of the step pushed it is that run's commit, reused.
    ``check`` sees the checkout before anything is laid over it (in a thread), and may
    refuse it. ``branch_when_unchanged``: a new ``branch`` is pushed even when nothing
    changed (at the base's commit), so a request can be opened from it."""
    env = author.env()
    key = await ctx.step_key()
    target = await open_remote(policy, remote, token=token, username=username, bearer=bearer)
    work = ctx.create_temp_dir() / "repo"
    clone = ["clone", "--quiet", "--no-tags", "--single-branch"]
    if base:
        clone += ["--branch", base]
    await run_git(policy, [*clone, "--", target.url, str(work)], env=env, remote=target)
    git = ["-C", str(work)]
    if not base:
        base = (await run_git(policy, [*git, "symbolic-ref", "--short", "HEAD"])).strip()
    heads = [*git, "ls-remote", "--heads", target.url, branch]
    exists = bool((await run_git(policy, heads, env=env, remote=target)).strip())
    if exists and update:
        fetch = [*git, "fetch", "--quiet", target.url, branch]
        await run_git(policy, fetch, env=env, remote=target)
        await run_git(policy, [*git, "checkout", "--quiet", "-B", branch, "FETCH_HEAD"])
    elif (
        exists
        and key.earlier
        and (found := await pushed_before(policy, git, target, branch, key.value, env=env))
    ):
        ctx.logger.info(_reused(found, branch, target.shown))
        return found, base
    elif exists:
        raise ActionError(
            f"Branch {branch!r} already exists in {target.shown}; choose another branch "
            "name, or set update: true to add a commit to it and update its request"
        )
    else:
        await run_git(policy, [*git, "checkout", "--quiet", "-b", branch])
    if check is not None:
        await ctx.in_thread(check, work)
    await ctx.in_thread(_overlay, source, work, target_path or "", delete)
    await run_git(policy, [*git, "add", "-A"])
    commit: str | None = None
    if (await git_result(policy, [*git, "diff", "--cached", "--quiet"])).code == 0:
        ctx.logger.info(f"No changes to commit onto {branch}")
        if exists or not branch_when_unchanged:
            return None, base
    else:
        await run_git(
            policy, [*git, "commit", "-q", "-m", keyed_message(message, key.value)], env=env
        )
        commit = (await run_git(policy, [*git, "rev-parse", "HEAD"])).strip()
    push = [*git, "push", "--porcelain", "--", target.url, f"HEAD:refs/heads/{branch}"]
    result = await git_result(policy, push, env=env, remote=target)
    if result.code != 0:
        raise refused(push, result, target, branch)
    ctx.logger.info(f"Pushed {commit or base} to branch {branch} of {target.shown}")
    return commit, base


def _overlay(source: Path, work: Path, target_path: str, delete: list[str]) -> None:
    """Copy ``source`` over the folder ``target_path`` of the checkout ``work``, leaving
    out any ``.git``, then delete ``delete`` (paths in that folder). The checkout is
    the remote's content: it is written like a workspace (``falsework.confine``), so
    a link it holds is never written through, and its ``.git`` is never touched."""
    where = "the repository"
    base = relative(target_path, where)
    with Tree(source, where="the published folder") as src, Tree(work, where=where) as repo:
        paths = [base, *(_join(base, relative(item, where)) for item in delete)]
        for path in paths:
            if ".git" in path.split("/"):
                raise UnsafePathError(f"Path {path!r} is inside the repository's .git folder")
        repo.mkdir(base)
        for entry in src.walk(skip={".git"}):
            dest = _join(base, entry.path)
            if entry.kind == "dir":
                repo.mkdir(dest)
            elif entry.kind == "link":  # git stores its text; it was checked in source
                repo.symlink(dest, src.readlink(entry.path))
            elif entry.kind == "file":
                with src.open_read(entry.path) as data:
                    out = repo.open_write(dest, mode=entry.stat.st_mode & 0o777)
                    if out is not None:  # always, with replace (the default)
                        with out:
                            shutil.copyfileobj(data, out, 1 << 20)
        for path in paths[1:]:
            repo.remove(path)


def _join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if base and rel else base or rel
