"""Where ``fetch:*`` actions read from: the template folder, a local folder under
an allowed root, or a git repository (cloned shallowly, without blocking the loop).

URL forms:
- ``./skeleton`` — relative to the template folder (must stay inside it);
- ``/abs/path`` or ``file:///abs/path`` — a local folder under an allowed root;
- ``git+https://…``, ``https://…/repo.git``, ``ssh://…``, ``git@host:o/r.git`` and
  ``file:///…`` pointing at a git repository (under an allowed root, like any
  local folder); ``#ref`` picks a branch or tag and ``?path=sub/dir`` a folder
  inside the repository.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from falsework.actions.context import ActionContext
from falsework.actions.paths import is_within, resolve_safe_path
from falsework.errors import ActionError, UnsafePathError


async def locate(ctx: ActionContext[Any], url: str) -> Path:
    """A local path holding the content ``url`` names (cloned when it is git)."""
    if not url:
        raise ActionError("The url input is empty")
    if _is_git(url):
        return await _clone(ctx, url)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return _local(ctx, Path(unquote(parts.path)), url)
    if parts.scheme in ("http", "https"):
        raise ActionError(
            f"Cannot fetch {url!r}: only template-relative paths, local folders and git "
            "repositories (…/repo.git, git+https://…) are supported"
        )
    if os.path.isabs(url):
        return _local(ctx, Path(url), url)
    if ctx.template_dir is None:
        raise ActionError(f"Cannot resolve {url!r}: the task has no template location")
    return resolve_safe_path(ctx.template_dir, url)


def _local(ctx: ActionContext[Any], path: Path, url: str) -> Path:
    roots = [*ctx.allowed_roots, *([ctx.template_dir] if ctx.template_dir else [])]
    if not any(is_within(root, path) for root in roots):
        raise UnsafePathError(f"Path {url!r} is not under an allowed template folder")
    return Path(os.path.realpath(path))


def _is_git(url: str) -> bool:
    if url.startswith(("git+", "git@")):
        return True
    parts = urlsplit(url)
    if parts.scheme in ("git", "ssh"):
        return True
    if parts.scheme in ("http", "https", "file") and parts.path.rstrip("/").endswith(".git"):
        return True
    if parts.scheme == "file":
        local = Path(unquote(parts.path))
        return (local / ".git").exists() or (
            (local / "HEAD").is_file() and (local / "objects").is_dir()
        )
    return False


async def _clone(ctx: ActionContext[Any], url: str) -> Path:
    remote = url[4:] if url.startswith("git+") else url
    parts = urlsplit(remote)
    if parts.scheme == "file":
        # A repository on this machine is a local folder like any other: only
        # under an allowed root, or any readable repo could be copied out.
        _local(ctx, Path(unquote(parts.path)), url)
    ref = parts.fragment or None
    sub = parse_qs(parts.query).get("path", [""])[0]
    if parts.scheme:
        remote = parts._replace(fragment="", query="").geturl()
    else:
        remote = remote.split("#", 1)[0]
    dest = ctx.create_temp_dir() / "repo"
    args = ["git", "clone", "--quiet", "--depth", "1"]
    if ref:
        args += ["--branch", ref]
    args += ["--", remote, str(dest)]
    ctx.logger.info(f"Cloning {safe_url(remote)}" + (f" at {ref}" if ref else ""))
    await run_git(args, cwd=None)
    return resolve_safe_path(dest, sub) if sub else dest


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password or parts.username:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return parts._replace(netloc=f"***@{host}{port}").geturl()
    return url


GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_ASKPASS": "",
    "LC_ALL": "C",
}


async def run_git(args: list[str], *, cwd: Path | None, env: dict[str, str] | None = None) -> str:
    """Run git as a child process (no thread, no blocking); kill it on cancel.

    Returns stdout; a failure raises ``ActionError`` with git's stderr.
    """
    code, out, err = await git_result(args, cwd=cwd, env=env)
    if code != 0:
        raise ActionError(f"{git_command(args)} failed (exit {code}): {redact_urls(err.strip())}")
    return out


async def git_result(
    args: list[str], *, cwd: Path | None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run git like :func:`run_git` but return ``(exit code, stdout, stderr)``."""
    full_env = {**os.environ, **GIT_ENV, **(env or {})}
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    code = proc.returncode if proc.returncode is not None else -1
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def git_command(args: list[str]) -> str:
    """The start of a git command line for a message (``git push -q``), without
    options that carry values (``-c key=value``) or credentials."""
    shown = [a for i, a in enumerate(args) if a != "-c" and (not i or args[i - 1] != "-c")]
    words = [safe_url(a) for a in shown if "=" not in a or "://" in a]
    return " ".join(words[:3])


_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact_urls(text: str) -> str:
    """``https://user:token@host/…`` → ``https://***@host/…`` anywhere in ``text``."""
    return _USERINFO.sub(r"\1***@", text)
