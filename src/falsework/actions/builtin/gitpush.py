"""Git transfer for the forge actions (publish:github, publish:gitlab, their pull and
merge requests, ...): the same git helper and hardening as ``publish:git`` (a
repository kept outside the workspace, no hooks, no signing prompt, credentials in the
child's environment, never on its command line).

``push_folder`` publishes a workspace folder as the first commit of a branch;
``push_changes`` lays a workspace folder over a branch of an existing repository and
pushes the result to another branch (the commit behind a pull request).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falsework.actions.builtin.publish import _rejection
from falsework.actions.context import ActionContext
from falsework.actions.git import GitPolicy, failure, git_result, open_remote, run_git
from falsework.actions.paths import resolve_safe_path
from falsework.errors import ActionError


@dataclass(frozen=True)
class Author:
    name: str
    email: str

    def env(self) -> dict[str, str]:
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


def source_folder(ctx: ActionContext[Any], source_path: str | None) -> Path:
    folder = ctx.resolve_path(source_path or "./")
    if not folder.is_dir():
        raise ActionError(f"sourcePath {source_path!r} is not a folder in the workspace")
    return folder


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
) -> str:
    """Commit ``source`` as one commit on ``branch`` and push it; the commit's id."""
    env = author.env()
    repo = ctx.create_temp_dir() / "repo.git"
    git = [f"--git-dir={repo}", f"--work-tree={source}"]
    await run_git(policy, [*git, "init", "-q", "-b", branch], cwd=source, env=env)
    await run_git(policy, [*git, "add", "-A"], cwd=source, env=env)
    commit_args = [*git, "commit", "-q", "--allow-empty", "-m", message]
    await run_git(policy, commit_args, cwd=source, env=env)
    commit = (await run_git(policy, [*git, "rev-parse", "HEAD"], cwd=source, env=env)).strip()
    ctx.logger.info(f"Committed {commit} as {author.name} <{author.email}>")
    target = await open_remote(policy, remote, token=token, username="x-access-token")
    push = [*git, "push", "--porcelain", "--", target.url, f"HEAD:refs/heads/{branch}"]
    result = await git_result(policy, push, cwd=source, env=env, remote=target)
    if result.code != 0:
        rejected = _rejection(result.out, target.shown, branch)
        if rejected is not None:
            raise ActionError(rejected)
        raise failure(push, result, target)
    ctx.logger.info(f"Pushed branch {branch} to {target.shown}")
    return commit


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
) -> tuple[str | None, str]:
    """Lay ``source`` over ``base`` (the remote's default branch when None), or over
    ``branch`` itself when it exists and ``update`` is set, and push the commit to
    ``branch``. Returns ``(commit or None when nothing changed, the base branch)``."""
    env = author.env()
    target = await open_remote(policy, remote, token=token, username="x-access-token")
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
    elif exists:
        raise ActionError(
            f"Branch {branch!r} already exists in {target.shown}; choose another branch "
            "name, or set update: true to add a commit to it and update its request"
        )
    else:
        await run_git(policy, [*git, "checkout", "--quiet", "-b", branch])
    folder = resolve_safe_path(work, target_path) if target_path else work
    await ctx.in_thread(_overlay, source, folder)
    for item in delete:
        path = resolve_safe_path(folder, item)
        if path.is_dir() and not path.is_symlink():
            await ctx.in_thread(shutil.rmtree, path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    await run_git(policy, [*git, "add", "-A"])
    if (await git_result(policy, [*git, "diff", "--cached", "--quiet"])).code == 0:
        ctx.logger.info(f"No changes to commit onto {branch}")
        return None, base
    await run_git(policy, [*git, "commit", "-q", "-m", message], env=env)
    commit = (await run_git(policy, [*git, "rev-parse", "HEAD"])).strip()
    push = [*git, "push", "--porcelain", "--", target.url, f"HEAD:refs/heads/{branch}"]
    result = await git_result(policy, push, env=env, remote=target)
    if result.code != 0:
        rejected = _rejection(result.out, target.shown, branch)
        if rejected is not None:
            raise ActionError(rejected)
        raise failure(push, result, target)
    ctx.logger.info(f"Pushed {commit} to branch {branch} of {target.shown}")
    return commit, base


def _overlay(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` (a checkout), leaving out any ``.git``; links are
    copied as links (git stores their text), never followed."""
    target.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d != ".git"]
        rel = Path(folder).relative_to(source)
        out = target / rel
        out.mkdir(parents=True, exist_ok=True)
        for name in files + [d for d in dirs if (Path(folder) / d).is_symlink()]:
            src, dst = Path(folder) / name, out / name
            if dst.is_symlink() or dst.is_file():
                dst.unlink()
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)
