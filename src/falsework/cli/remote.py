"""Templates in git repositories for `falsework run`, written as cookiecutter and
copier users do: ``gh:org/repo[/path][@ref]`` (``gl:`` GitLab, ``bb:`` Bitbucket),
any git URL (``https://host/org/repo.git[/path][@ref]``, ``git@host:org/repo.git``,
``ssh://…``, ``file:///…``, fetch's ``?path=`` and ``#ref``), a repository on this
machine (``/srv/templates.git/service@v1``) and a git host's page of a folder
(``https://github.com/org/repo/tree/<ref>/<path>``). A path holding ``@`` is not
supported: the first ``@`` in the repository's path starts the ref.

The clone goes through ``falsework.actions.git`` with the local policy of
``Settings.action_policies(local=True)``: the user's own git configuration and
network, but never a remote helper (``ext::``, ``fd::``), hooks, or a clone that
outlives its time limit.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from falsework.actions.git import (
    GitPolicy,
    Remote,
    local_remote,
    open_remote,
    remote_kind,
    run_git,
)
from falsework.actions.paths import resolve_safe_path
from falsework.actions.sources import browse_url
from falsework.errors import FalseworkError

HOSTS = {"gh": "github.com", "gl": "gitlab.com", "bb": "bitbucket.org"}
_SHORT = re.compile(r"^(gh|gl|bb):(?P<rest>.+)$")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_LOCAL_REPO = re.compile(r"^(?P<repo>(?:/|\./|\.\./|~/).*?\.git)(?=/|@|$)(?P<rest>.*)$")
_URL = re.compile(r"^(git\+)?(https?|ssh|git\+ssh|file)://|^[\w.-]+@[\w.-]+:", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """A template folder in a git repository."""

    url: str  # what git clones
    ref: str | None = None  # a branch, tag or commit; None: the default branch
    path: str = ""  # the folder (or file) inside the repository
    # a host's folder page: [ref and path segments], the ref told apart by ls-remote
    segments: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.url}" + (f"/{self.path}" if self.path else "")
        return where + (f"@{self.ref}" if self.ref else "")


def parse(text: str) -> Source | None:
    """The repository ``text`` names, or None when it is not a git location."""
    short = _SHORT.match(text)
    if short:
        rest, ref = _split_ref(short["rest"])
        parts = [p for p in rest.strip("/").split("/") if p]
        if len(parts) < 2:
            raise FalseworkError(
                f"{text!r}: expected {short[1]}:OWNER/REPO[/PATH][@REF], e.g. "
                f"{short[1]}:acme/templates/service@v1"
            )
        owner, repo = parts[0], parts[1].removesuffix(".git")
        url = f"https://{HOSTS[short[1]]}/{owner}/{repo}.git"
        return Source(url, ref, "/".join(parts[2:]))
    local = _LOCAL_REPO.match(text)
    if local:
        # a repository on this machine: /path/to/repo.git[/path][@ref]
        rest, ref = _split_ref(text)
        found = _LOCAL_REPO.match(rest)
        repo, sub = (found["repo"], found["rest"]) if found else (rest, "")
        return Source(repo, ref, sub.strip("/"))
    if not _URL.match(text):
        return None
    url = text.removeprefix("git+")
    browse = browse_url(url)
    if browse is not None:
        return Source(browse[0], None, "", tuple(browse[1]))
    split = urlsplit(url) if "://" in url else None
    if split is not None and (split.fragment or split.query):
        # fetch's own syntax: URL#ref?path=sub
        sub = parse_qs(split.query).get("path", [""])[0]
        base = split._replace(fragment="", query="").geturl()
        return Source(base, split.fragment or None, sub.strip("/"))
    rest, ref = _split_ref(url)
    if ".git/" in rest:
        repo, _, sub = rest.partition(".git/")
        return Source(repo + ".git", ref, sub.strip("/"))
    return Source(rest, ref, "")


def _split_ref(text: str) -> tuple[str, str | None]:
    """``(text, ref)`` of ``text@ref``: the first ``@`` in the repository's path
    (never one in ``user@host``); a ref may hold ``/`` (``@feature/x``)."""
    if "://" in text:
        start = text.find("/", text.index("://") + 3)
    elif _SCP_HOST.match(text):
        start = text.index(":")
    else:
        start = 0
    if start < 0:
        return text, None
    head, at, ref = text[start:].partition("@")
    if at and ref:
        return text[:start] + head, ref
    return text, None


_SCP_HOST = re.compile(r"^[\w.-]+@[\w.-]+:")


async def clone(policy: GitPolicy, source: Source, dest: Path) -> Path:
    """Clone ``source`` into ``dest``; the template's folder (or file) inside it."""
    kind = remote_kind(policy, source.url)
    if kind == "local":
        remote = local_remote(_local_path(source.url))
    else:
        remote = await open_remote(policy, source.url)
    ref, sub = source.ref, source.path
    if source.segments:
        ref, sub = await _browsed(policy, remote, source.segments)
    # --no-local: a repository on this machine is read through git's transport too
    args = ["clone", "--quiet", "--no-local"]
    commit = ref is not None and _COMMIT.match(ref) is not None
    if not commit:
        args += ["--depth", "1"] + (["--branch", ref] if ref else [])
    await run_git(policy, [*args, "--", remote.url, str(dest)], remote=remote)
    if commit:
        assert ref is not None
        await run_git(policy, ["checkout", "--quiet", ref], cwd=dest)
    found = resolve_safe_path(dest, sub) if sub else dest
    if not found.exists():
        raise FalseworkError(f"{source}: the repository has no {sub!r}")
    return found


def _local_path(url: str) -> Path:
    path = unquote(urlsplit(url).path) if "://" in url else url
    return Path(os.path.abspath(os.path.expanduser(path)))


async def _browsed(
    policy: GitPolicy, remote: Remote, segments: tuple[str, ...]
) -> tuple[str | None, str]:
    """``(ref, path)`` of a host's folder page: the longest leading part of the
    segments that names a branch or tag (a branch may hold ``/``), or a commit."""
    listing = await run_git(
        policy, ["ls-remote", "--heads", "--tags", "--", remote.url], remote=remote
    )
    refs = set()
    for line in listing.splitlines():
        name = line.partition("\t")[2].removesuffix("^{}")
        for prefix in ("refs/heads/", "refs/tags/"):
            if name.startswith(prefix):
                refs.add(name[len(prefix) :])
    for k in range(len(segments), 0, -1):
        ref = "/".join(segments[:k])
        if ref in refs:
            return ref, "/".join(segments[k:])
    if segments and _COMMIT.match(segments[0]):
        return segments[0], "/".join(segments[1:])
    raise FalseworkError(
        f"{remote.shown}: no branch or tag is named by the start of {'/'.join(segments)!r}"
    )
