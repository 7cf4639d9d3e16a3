"""Where ``fetch:*`` actions read from: the template folder, a local folder under
an allowed root, or a git repository (cloned shallowly, without blocking the loop).

URL forms:
- ``./skeleton`` — relative to the template folder (must stay inside it);
- ``/abs/path`` or ``file:///abs/path`` — a local folder under an allowed root;
- ``git+https://…``, ``https://…/repo.git``, ``ssh://…``, ``git@host:o/r.git`` and
  ``file:///…`` pointing at a git repository (under an allowed root, like any
  local folder); ``#ref`` picks a branch or tag and ``?path=sub/dir`` a folder
  inside the repository;
- the page of a folder or file on a git host, as people copy it from the browser:
  ``https://github.com/o/r/tree/<ref>/<path>`` (and ``/blob/``), GitLab's
  ``…/-/tree/<ref>/<path>``, Gitea's ``…/src/branch/<ref>/<path>``, Bitbucket's
  ``…/src/<ref>/<path>`` — on any host of that shape, self-hosted ones too. The
  repository ``…/o/r.git`` is cloned; which leading part of the rest is the ref
  (a branch may contain ``/``) is read from ``git ls-remote``; a commit id works too.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from falsework.actions.context import ActionContext
from falsework.actions.paths import is_within, resolve_safe_path
from falsework.errors import ActionError, UnsafePathError


async def locate(ctx: ActionContext[Any], url: str, token: str | None = None) -> Path:
    """A local path holding the content ``url`` names (cloned when it is git).

    ``token`` authenticates git over http(s) (sent as a Basic authorization header
    in git's environment, never on its command line or in a log line)."""
    if not url:
        raise ActionError("The url input is empty")
    auth = git_auth_env(ctx, url.removeprefix("git+"), token)
    if _is_git(url):
        return await _clone(ctx, url, auth)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return _local(ctx, Path(unquote(parts.path)), url)
    if parts.scheme in ("http", "https"):
        browse = browse_url(url)
        if browse is not None:
            return await _clone_browsed(ctx, url, *browse, auth)
        raise ActionError(
            f"Cannot fetch {url!r}: only template-relative paths, local folders, git "
            "repositories (…/repo.git, git+https://…) and a git host's folder or file "
            "pages (…/tree/<ref>/<path>, …/-/tree/…, …/src/…) are supported"
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


def _http_auth_env(token: str, username: str) -> dict[str, str]:
    """git's environment for HTTP authentication with ``token`` (GitHub, GitLab,
    Gitea and Bitbucket all take a token as the password of Basic auth)."""
    basic = base64.b64encode(f"{username}:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def git_auth_env(
    ctx: ActionContext[Any], url: str, token: str | None, username: str | None = None
) -> dict[str, str]:
    """Authentication for git over http(s) to ``url``: the step's ``token``, else
    the server's configured credential for the URL's host, else none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return {}
    if token:
        return _http_auth_env(token, username or "x-access-token")
    configured = ctx.git_credentials.get(host_port(url).lower())
    if configured is None:
        return {}
    return _http_auth_env(configured[1], configured[0])


async def _clone(ctx: ActionContext[Any], url: str, auth: dict[str, str]) -> Path:
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
    return await _checkout(ctx, remote, ref, sub, auth)


async def _checkout(
    ctx: ActionContext[Any], remote: str, ref: str | None, sub: str, auth: dict[str, str]
) -> Path:
    """A shallow clone of ``remote`` at the branch or tag ``ref``; the path ``sub``
    inside it (kept inside it)."""
    dest = ctx.create_temp_dir() / "repo"
    args = ["git", "clone", "--quiet", "--depth", "1"]
    if ref:
        args += ["--branch", ref]
    args += ["--", remote, str(dest)]
    ctx.logger.info(f"Cloning {safe_url(remote)}" + (f" at {ref}" if ref else ""))
    await run_git(args, cwd=None, env=auth)
    return resolve_safe_path(dest, sub) if sub else dest


# Where a git host shows a folder or a file: the repository, then what follows
# the view's keyword (ref and path, to be told apart with the remote's refs).
_BROWSE = (
    re.compile(r"^(?P<repo>/.+?)/-/(?:tree|blob|raw)/(?P<rest>.+)$"),  # GitLab
    re.compile(r"^(?P<repo>/[^/]+/[^/]+)/src/(?:branch|tag|commit)/(?P<rest>.+)$"),  # Gitea
    re.compile(r"^(?P<repo>/[^/]+/[^/]+)/(?:tree|blob)/(?P<rest>.+)$"),  # GitHub
    re.compile(r"^(?P<repo>/[^/]+/[^/]+)/src/(?P<rest>.+)$"),  # Bitbucket Cloud
)
_COMMIT = re.compile(r"[0-9a-f]{7,40}")


def browse_url(url: str) -> tuple[str, list[str]] | None:
    """``(clone URL, [ref and path segments])`` for a git host's folder or file
    page, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    path = parts.path.rstrip("/")
    for pattern in _BROWSE:
        match = pattern.match(path)
        if match:
            repo = match["repo"] if match["repo"].endswith(".git") else match["repo"] + ".git"
            remote = parts._replace(path=repo, query="", fragment="").geturl()
            return remote, [unquote(p) for p in match["rest"].split("/") if p]
    return None


async def _clone_browsed(
    ctx: ActionContext[Any], url: str, remote: str, segments: list[str], auth: dict[str, str]
) -> Path:
    ls_remote = ["git", "ls-remote", "--heads", "--tags", "--", remote]
    listing = await run_git(ls_remote, cwd=None, env=auth)
    refs = set()
    for line in listing.splitlines():
        name = line.partition("\t")[2].removesuffix("^{}")
        for prefix in ("refs/heads/", "refs/tags/"):
            if name.startswith(prefix):
                refs.add(name[len(prefix) :])
    # the longest leading part that names a branch or tag is the ref
    for k in range(len(segments), 0, -1):
        ref = "/".join(segments[:k])
        if ref in refs:
            return await _checkout(ctx, remote, ref, "/".join(segments[k:]), auth)
    if segments and _COMMIT.fullmatch(segments[0]):
        dest = ctx.create_temp_dir() / "repo"
        ctx.logger.info(f"Cloning {safe_url(remote)} at commit {segments[0]}")
        clone = ["git", "clone", "--quiet", "--no-checkout", "--", remote, str(dest)]
        await run_git(clone, cwd=None, env=auth)
        await run_git(["git", "checkout", "--quiet", segments[0]], cwd=dest)
        sub = "/".join(segments[1:])
        return resolve_safe_path(dest, sub) if sub else dest
    raise ActionError(
        f"Cannot fetch {url!r}: no branch or tag of {safe_url(remote)} is named by the "
        f"start of {'/'.join(segments)!r}, and it does not start with a commit id"
    )


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password or parts.username:
        return parts._replace(netloc=f"***@{host_port(url)}").geturl()
    return url


def host_port(url: str) -> str:
    """``host`` or ``host:port`` of a URL, without any credentials."""
    parts = urlsplit(url)
    return (parts.hostname or "") + (f":{parts.port}" if parts.port else "")


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
