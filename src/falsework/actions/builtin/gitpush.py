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

from falsework.actions.builtin.publish import PUSH_ENV, SAFE_CONFIG, _push_failure
from falsework.actions.context import ActionContext
from falsework.actions.paths import resolve_safe_path
from falsework.actions.sources import git_result, run_git, safe_url
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
    auth: dict[str, str],
) -> str:
    """Commit ``source`` as one commit on ``branch`` and push it; the commit's id."""
    env = author.env()
    repo = ctx.create_temp_dir() / "repo.git"
    git = ["git", f"--git-dir={repo}", f"--work-tree={source}", *SAFE_CONFIG]
    await run_git([*git, "init", "-q", "-b", branch], cwd=source, env=env)
    await run_git([*git, "add", "-A"], cwd=source, env=env)
    await run_git([*git, "commit", "-q", "--allow-empty", "-m", message], cwd=source, env=env)
    commit = (await run_git([*git, "rev-parse", "HEAD"], cwd=source, env=env)).strip()
    ctx.logger.info(f"Committed {commit} as {author.name} <{author.email}>")
    push = [*git, "push", "--porcelain", "--", remote, f"HEAD:refs/heads/{branch}"]
    code, out, err = await git_result(push, cwd=source, env={**env, **PUSH_ENV, **auth})
    if code != 0:
        raise ActionError(_push_failure(out, err, code, safe_url(remote), branch))
    ctx.logger.info(f"Pushed branch {branch} to {safe_url(remote)}")
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
    auth: dict[str, str],
    update: bool,
) -> tuple[str | None, str]:
    """Lay ``source`` over ``base`` (the remote's default branch when None), or over
    ``branch`` itself when it exists and ``update`` is set, and push the commit to
    ``branch``. Returns ``(commit or None when nothing changed, the base branch)``."""
    env = {**author.env(), **PUSH_ENV, **auth}
    work = ctx.create_temp_dir() / "repo"
    clone = ["git", *SAFE_CONFIG, "clone", "--quiet", "--no-tags", "--single-branch"]
    if base:
        clone += ["--branch", base]
    await run_git([*clone, "--", remote, str(work)], cwd=None, env=env)
    git = ["git", "-C", str(work), *SAFE_CONFIG]
    if not base:
        base = (await run_git([*git, "symbolic-ref", "--short", "HEAD"], cwd=None)).strip()
    listing = await run_git([*git, "ls-remote", "--heads", "origin", branch], cwd=None, env=env)
    exists = bool(listing.strip())
    if exists and update:
        await run_git([*git, "fetch", "--quiet", "origin", branch], cwd=None, env=env)
        await run_git([*git, "checkout", "--quiet", "-B", branch, "FETCH_HEAD"], cwd=None)
    elif exists:
        raise ActionError(
            f"Branch {branch!r} already exists in {safe_url(remote)}; choose another branch "
            "name, or set update: true to add a commit to it and update its request"
        )
    else:
        await run_git([*git, "checkout", "--quiet", "-b", branch], cwd=None)
    target = resolve_safe_path(work, target_path) if target_path else work
    await ctx.in_thread(_overlay, source, target)
    for item in delete:
        path = resolve_safe_path(target, item)
        if path.is_dir() and not path.is_symlink():
            await ctx.in_thread(shutil.rmtree, path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    await run_git([*git, "add", "-A"], cwd=None)
    code, _, _ = await git_result([*git, "diff", "--cached", "--quiet"], cwd=None)
    if code == 0:
        ctx.logger.info(f"No changes to commit onto {branch}")
        return None, base
    await run_git([*git, "commit", "-q", "-m", message], cwd=None, env=env)
    commit = (await run_git([*git, "rev-parse", "HEAD"], cwd=None)).strip()
    push = [*git, "push", "--porcelain", "--", "origin", f"HEAD:refs/heads/{branch}"]
    code, out, err = await git_result(push, cwd=None, env=env)
    if code != 0:
        raise ActionError(_push_failure(out, err, code, safe_url(remote), branch))
    ctx.logger.info(f"Pushed {commit} to branch {branch} of {safe_url(remote)}")
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
