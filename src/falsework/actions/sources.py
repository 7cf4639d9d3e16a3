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

Local folders and repositories, however written (``git+/abs/path`` too), are read
only under ``SourcePolicy.roots`` or the task's own template folder. Git runs as
``falsework.actions.git`` says: https, ssh (and http when allowed) through the
egress policy, never a remote helper (``ext::``, ``fd::``), time-limited.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from falsework.actions.context import ActionContext
from falsework.actions.git import (
    Remote,
    local_remote,
    open_remote,
    remote_kind,
    run_git,
    safe_url,
)
from falsework.actions.paths import is_within, resolve_safe_path
from falsework.actions.policies import SourcePolicy
from falsework.errors import ActionError, UnsafePathError


async def locate(
    ctx: ActionContext[Any], sources: SourcePolicy, url: str, token: str | None = None
) -> Path:
    """A local path holding the content ``url`` names (cloned when it is git).

    ``token`` authenticates git over http(s) (sent as a Basic authorization header
    in git's environment, never on its command line or in a log line)."""
    if not url:
        raise ActionError("The url input is empty")
    if _is_git(url):
        return await _clone(ctx, sources, url, token)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return _local(ctx, sources, _file_path(url), url)
    if parts.scheme in ("http", "https"):
        browse = browse_url(url)
        if browse is not None:
            return await _clone_browsed(ctx, sources, url, *browse, token)
        raise ActionError(
            f"Cannot fetch {safe_url(url)!r}: only template-relative paths, local folders, "
            "git repositories (…/repo.git, git+https://…) and a git host's folder or file "
            "pages (…/tree/<ref>/<path>, …/-/tree/…, …/src/…) are supported"
        )
    if os.path.isabs(url):
        return _local(ctx, sources, Path(url), url)
    if ctx.template_dir is None:
        raise ActionError(f"Cannot resolve {url!r}: the task has no template location")
    return resolve_safe_path(ctx.template_dir, url)


def _local(ctx: ActionContext[Any], sources: SourcePolicy, path: Path, url: str) -> Path:
    roots = [*sources.roots, *([ctx.template_dir] if ctx.template_dir else [])]
    if not any(is_within(root, path) for root in roots):
        raise UnsafePathError(f"Path {url!r} is not under an allowed template folder")
    return Path(os.path.realpath(path))


def _file_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UnsafePathError(f"{url!r}: a file:// URL names a folder on this machine")
    return Path(unquote(parts.path))


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


async def _clone(
    ctx: ActionContext[Any], sources: SourcePolicy, url: str, token: str | None
) -> Path:
    remote = url[4:] if url.startswith("git+") else url
    kind = remote_kind(sources.git, remote)
    if kind == "local":
        # A repository on this machine is a local folder like any other, however
        # it is written (file://, git+/abs/path): only under an allowed root, or
        # any readable repository could be copied out.
        path_part, ref, sub = _split_ref_and_path(remote)
        if _SCHEME_FILE.match(path_part):
            path = _file_path(path_part)
        elif os.path.isabs(path_part):
            path = Path(path_part)
        else:
            raise UnsafePathError(
                f"Git URL {url!r} is a relative path; give https://, ssh:// or an absolute "
                "path under an allowed folder"
            )
        checked = _local(ctx, sources, path, url)
        return await _checkout(ctx, sources, local_remote(checked), ref, sub)
    parts = urlsplit(remote)
    ref = parts.fragment or None
    sub = parse_qs(parts.query).get("path", [""])[0]
    if parts.scheme:
        remote = parts._replace(fragment="", query="").geturl()
    else:
        remote = remote.split("#", 1)[0]
    target = await open_remote(sources.git, remote, token=token)
    return await _checkout(ctx, sources, target, ref, sub)


_SCHEME_FILE = re.compile(r"^file:", re.IGNORECASE)


def _split_ref_and_path(remote: str) -> tuple[str, str | None, str]:
    """``(location, ref, sub-path)`` of a local git URL (``…#ref``, ``?path=``)."""
    location, _, ref = remote.partition("#")
    location, _, query = location.partition("?")
    sub = parse_qs(query).get("path", [""])[0]
    return location, ref or None, sub


async def _checkout(
    ctx: ActionContext[Any], sources: SourcePolicy, remote: Remote, ref: str | None, sub: str
) -> Path:
    """A shallow clone of ``remote`` at the branch or tag ``ref``; the path ``sub``
    inside it (kept inside it)."""
    dest = ctx.create_temp_dir() / "repo"
    # --no-local: a local repository is read through git's transport like any
    # other (no hardlinks or copies of its object folder), so --depth holds too.
    args = ["clone", "--quiet", "--no-local", "--depth", "1"]
    if ref:
        args += ["--branch", ref]
    args += ["--", remote.url, str(dest)]
    ctx.logger.info(f"Cloning {remote.shown}" + (f" at {ref}" if ref else ""))
    await run_git(sources.git, args, remote=remote)
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
    ctx: ActionContext[Any],
    sources: SourcePolicy,
    url: str,
    clone_url: str,
    segments: list[str],
    token: str | None,
) -> Path:
    remote = await open_remote(sources.git, clone_url, token=token)
    ls_remote = ["ls-remote", "--heads", "--tags", "--", remote.url]
    listing = await run_git(sources.git, ls_remote, remote=remote)
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
            return await _checkout(ctx, sources, remote, ref, "/".join(segments[k:]))
    if segments and _COMMIT.fullmatch(segments[0]):
        dest = ctx.create_temp_dir() / "repo"
        ctx.logger.info(f"Cloning {remote.shown} at commit {segments[0]}")
        clone = ["clone", "--quiet", "--no-checkout", "--", remote.url, str(dest)]
        await run_git(sources.git, clone, remote=remote)
        await run_git(sources.git, ["checkout", "--quiet", segments[0]], cwd=dest)
        sub = "/".join(segments[1:])
        return resolve_safe_path(dest, sub) if sub else dest
    raise ActionError(
        f"Cannot fetch {safe_url(url)!r}: no branch or tag of {remote.shown} is named by the "
        f"start of {'/'.join(segments)!r}, and it does not start with a commit id"
    )
