"""Git transfer for the forge actions (publish:github, publish:gitlab, their pull and
merge requests, ...): the same git helper and hardening as ``publish:git`` (a
repository kept outside the workspace, no hooks, no signing prompt, credentials in the
child's environment, never on its command line).

``push_folder`` publishes a workspace folder as the first commit of a branch;
``push_changes`` lays a workspace folder over a branch of an existing repository and
pushes the result to another branch (the commit behind a pull request).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falsework.actions.builtin.publish import _rejection, published_folder
from falsework.actions.context import ActionContext
from falsework.actions.git import (
    GitPolicy,
    commit_folder,
    failure,
    git_result,
    keyed_message,
    open_remote,
    pushed_before,
    run_git,
)
from falsework.confine import Tree, relative
from falsework.errors import ActionError, UnsafePathError

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
    """Commit ``source`` as one commit on ``branch`` and push it; the commit's id.
    The commit carries the step's key: when the push is refused because an
    interrupted earlier run of the step already pushed, that commit is the answer.
    ``username`` goes with ``token`` in git's Basic authorization (GitHub and GitLab
    take any name, Bitbucket and Gitea the account's); ``bearer`` sends the token as a
    bearer token instead (Bitbucket Server's HTTP access tokens)."""
    env = author.env()
    key = await ctx.step_key()
    repo = ctx.create_temp_dir() / "repo.git"
    git = [f"--git-dir={repo}", f"--work-tree={source}"]
    keyed = keyed_message(message, key.value)
    commit = await commit_folder(policy, repo, source, branch=branch, message=keyed, env=env)
    ctx.logger.info(f"Committed {commit} as {author.name} <{author.email}>")
    target = await open_remote(policy, remote, token=token, username=username, bearer=bearer)
    push = [*git, "push", "--porcelain", "--", target.url, f"HEAD:refs/heads/{branch}"]
    result = await git_result(policy, push, cwd=source, env=env, remote=target)
    if result.code != 0 and key.earlier:
        found = await pushed_before(policy, git, target, branch, key.value, cwd=source, env=env)
        if found is not None:
            ctx.logger.info(_reused(found, branch, target.shown))
            return found
    if result.code != 0:
        rejected = _rejection(result.out, target.shown, branch)
        if rejected is not None:
            raise ActionError(rejected)
        raise failure(push, result, target)
    ctx.logger.info(f"Pushed branch {branch} to {target.shown}")
    return commit


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
        rejected = _rejection(result.out, target.shown, branch)
        if rejected is not None:
            raise ActionError(rejected)
        raise failure(push, result, target)
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
