"""How git runs for ``fetch:*`` and ``publish:git``: which transports, which
configuration, where it may connect, with which credential, and for how long.

Every git process gets the same hardening (``SAFE_CONFIG`` and ``GIT_ALLOW_PROTOCOL``):
only https, ssh, file (for local repositories the caller has checked against its
roots) and, when allowed, http; never ``ext::``, ``fd::`` or another remote
helper, which run commands or read the server's own file descriptors. On a
server (``isolated``) git reads neither the system's nor the user's git config
(a hostile ``~/.gitconfig`` could allow them again) nor proxy variables, and ssh
reads no ssh config and offers no agent or key but the one a scoped credential
names.

A network remote is checked by the egress policy after DNS and pinned to the
checked addresses (``http.curloptResolve`` for curl, ``HostName`` for ssh), and
redirects are not followed (git would resolve the new host itself).

Each git runs in its own process group with a time limit (``GitPolicy.timeout``);
on timeout or when its step is cancelled the whole group (git-remote-https, ssh,
index-pack…) is killed, so nothing outlives its task or request.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import re
import shlex
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from falsework.actions.egress import EgressPolicy, unreachable
from falsework.errors import ActionError, FalseworkError, UnsafePathError
from falsework.globs import matches

Kind = Literal["local", "https", "http", "ssh"]
DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22}


@dataclass(frozen=True)
class GitCredential:
    """A server credential for one host, applying only to the repositories it
    names: an owner (the first segment of the repository's path: ``acme``) or a
    glob over the path (``acme/*``, ``platform/**``; ``**`` is every repository
    on the host). A token is sent to http(s) remotes, an ssh key to ssh ones."""

    host: str  # host, or host:port, lower case
    username: str = "x-access-token"
    token: str | None = None
    ssh_key: Path | None = None
    owners: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def covers(self, repository: str) -> bool:
        owner = repository.split("/", 1)[0]
        return owner in self.owners or matches(repository, self.paths)


@dataclass(frozen=True)
class GitPolicy:
    """The settings every git call of every action family uses."""

    timeout: float = 120.0
    allow_http: bool = False
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    credentials: tuple[GitCredential, ...] = ()
    # A server: ignore the user's and the system's git and ssh configuration,
    # proxies and ssh agent. False for `falsework run`, run by its user.
    isolated: bool = True

    @classmethod
    def local(
        cls, timeout: float = 120.0, credentials: tuple[GitCredential, ...] = ()
    ) -> GitPolicy:
        """``falsework run``: the user's own machine, config and network."""
        return cls(
            timeout=timeout,
            allow_http=True,
            egress=EgressPolicy.unrestricted(),
            credentials=credentials,
            isolated=False,
        )

    @property
    def protocols(self) -> tuple[str, ...]:
        return ("https", "ssh", "file", *(("http",) if self.allow_http else ()))

    def credential(self, kind: Kind, url: str) -> GitCredential | None:
        """The configured credential for the repository ``url`` names, if any
        covers it (a token for http(s), an ssh key for ssh)."""
        host, path = _host_and_path(kind, url)
        repository = repository_path(path)
        if repository is None:
            return None
        for item in self.credentials:
            usable = item.token if kind in ("https", "http") else item.ssh_key
            if usable and item.host == host and item.covers(repository):
                return item
        return None


# Options every git command line carries: command-line config beats every file.
def safe_config(policy: GitPolicy) -> list[str]:
    pairs = [
        "protocol.allow=never",
        *(f"protocol.{name}.allow=always" for name in policy.protocols),
        "core.hooksPath=/dev/null",
        "core.fsmonitor=false",
        "commit.gpgsign=false",
        "http.followRedirects=false",
        "submodule.recurse=false",
    ]
    if policy.isolated:
        pairs.append("credential.helper=")
    return [arg for pair in pairs for arg in ("-c", pair)]


_REMOTE_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")


def remote_kind(policy: GitPolicy, url: str) -> Kind:
    """What transport ``url`` uses, as git reads it; ``ActionError`` for every
    transport a template may not use (``ext::``, ``fd::``, ``git://``, …)."""
    if _REMOTE_HELPER.match(url):
        raise ActionError(
            f"Git URL {safe_url(url)!r} uses a remote helper "
            f"({url.split('::', 1)[0]}::), which is never allowed; use https:// or ssh://"
        )
    if url[:5].lower() == "file:":
        return "local"  # the caller turns it into a checked path; git never sees it
    match = _SCHEME.match(url)
    if match:
        scheme = match[1].lower()
        if scheme in _SSH_SCHEMES:
            return "ssh"
        if scheme == "https" or (scheme == "http" and policy.allow_http):
            return scheme  # type: ignore[return-value]
        allowed = "https://, ssh://" + (", http://" if policy.allow_http else "")
        hint = (
            " (plain http is off on this server: FALSEWORK_GIT_ALLOW_HTTP)"
            if scheme == "http"
            else ""
        )
        raise ActionError(
            f"Git URL {safe_url(url)!r} uses the transport {scheme}://, which is not "
            f"allowed{hint}; use {allowed} or a local repository under an allowed folder"
        )
    colon, slash = url.find(":"), url.find("/")
    if colon > 0 and (slash == -1 or colon < slash):
        return "ssh"  # git@host:org/repo.git
    return "local"


def repository_path(path: str) -> str | None:
    """``acme/svc`` for the URL path ``/acme/svc.git``; None for a path that
    could mean another repository to the server (``..``, encoded slashes)."""
    if re.search(r"%2f|%5c", path, re.IGNORECASE):
        return None
    text = unquote(path).removeprefix("/").rstrip("/").removesuffix(".git")
    segments = text.split("/")
    if "\\" in text or any(s in ("", ".", "..") for s in segments):
        return None
    return text


_SCP = re.compile(r"^(?:[^@/]*@)?(\[[^\]/]*\]|[^:/\[]*):(.*)$", re.DOTALL)


def _host_and_path(kind: Kind, url: str) -> tuple[str, str]:
    """``(host[:port] lower case, path)`` of a network remote."""
    if kind == "ssh" and not _SCHEME.match(url):
        match = _SCP.match(url)
        if match is None:
            return "", ""
        return match[1].strip("[]").lower(), match[2]
    return host_port(url).lower(), urlsplit(url).path


def _host_name(kind: Kind, url: str) -> str:
    """The host name alone (no port, no brackets)."""
    if _SCHEME.match(url):
        return urlsplit(url).hostname or ""
    return _host_and_path(kind, url)[0]


@dataclass(frozen=True)
class Remote:
    """A remote ready for git: checked, pinned and with its credential."""

    url: str  # as given to git
    shown: str  # for messages: without credentials
    kind: Kind
    config: tuple[str, ...] = ()  # extra `-c` arguments (the pinned addresses)
    env: Mapping[str, str] = field(default_factory=dict)  # authentication, ssh command

    @property
    def network(self) -> bool:
        return self.kind != "local"


def local_remote(path: Path) -> Remote:
    """A repository on this machine the caller has checked against its roots."""
    return Remote(url=str(path), shown=str(path), kind="local")


async def open_remote(
    policy: GitPolicy,
    url: str,
    *,
    token: str | None = None,
    username: str | None = None,
    bearer: bool = False,
) -> Remote:
    """Check a network remote against the transports and the egress policy, pin
    it to the checked addresses and attach its credential (the step's ``token``,
    else a configured credential whose scope covers the repository)."""
    kind = remote_kind(policy, url)
    if kind == "local":
        raise UnsafePathError(f"{url!r} is a local path, not a network remote")
    name = _host_name(kind, url)
    if not name or name.startswith("-"):
        raise ActionError(f"Git URL {safe_url(url)!r} names no usable host")
    port = _port(kind, url)
    config: list[str] = []
    env: dict[str, str] = {}
    addresses: list[str] = []
    if policy.egress.enforced:
        try:
            async with asyncio.timeout(policy.timeout):
                addresses = await policy.egress.addresses(name, port)
        except TimeoutError:
            raise unreachable(safe_url(url), None, f"resolving {name} timed out") from None
    credential = policy.credential(kind, url)
    if kind in ("https", "http"):
        if addresses and not _is_ip(name):
            pinned = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
            for spelling in dict.fromkeys((name, name.rstrip("."))):
                config += ["-c", f"http.curloptResolve={spelling}:{port}:{pinned}"]
        if token:
            env.update(_http_auth_env(token, username or "x-access-token", bearer))
        elif credential is not None and credential.token:
            env.update(_http_auth_env(credential.token, credential.username))
    elif policy.isolated:
        env["GIT_SSH_COMMAND"] = _ssh_command(name, addresses, credential)
    return Remote(url=url, shown=safe_url(url), kind=kind, config=tuple(config), env=env)


def _port(kind: Kind, url: str) -> int:
    if _SCHEME.match(url):
        try:
            port = urlsplit(url).port
        except ValueError:
            raise ActionError(f"Git URL {safe_url(url)!r} has an invalid port") from None
        if port:
            return port
    return DEFAULT_PORTS[kind]


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _ssh_command(host: str, addresses: Sequence[str], credential: GitCredential | None) -> str:
    """ssh for one isolated connection: no config file, no agent, no key but the
    credential's, no prompt, a known host key, and the checked address."""
    args = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    args += ["-o", "IdentityAgent=none"]
    if addresses:
        args += ["-o", f"HostName={addresses[0]}", "-o", f"HostKeyAlias={host}"]
    if credential is not None and credential.ssh_key is not None:
        args += ["-o", "IdentitiesOnly=yes", "-o", f"IdentityFile={credential.ssh_key}"]
    else:
        args += ["-o", "PubkeyAuthentication=no"]
    return " ".join(shlex.quote(a) for a in args)


def _http_auth_env(token: str, username: str, bearer: bool = False) -> dict[str, str]:
    """git's environment for HTTP authentication with ``token`` (GitHub, GitLab,
    Gitea and Bitbucket all take a token as the password of Basic auth; Bitbucket
    Server's HTTP access tokens also as a bearer token, ``bearer``); in the
    environment, never on the command line (visible in ``ps``)."""
    if bearer:
        header = f"Authorization: Bearer {token}"
    else:
        basic = base64.b64encode(f"{username}:{token}".encode()).decode()
        header = f"Authorization: Basic {basic}"
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": header,
    }


# ------------------------------------------------------------------ running

GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_ASKPASS": "",
    "LC_ALL": "C",
}
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def _environment(policy: GitPolicy, extra: Mapping[str, str]) -> dict[str, str]:
    if policy.isolated:
        # Nothing inherited steers git: no GIT_* of the server's own environment
        # (GIT_SSH_COMMAND, GIT_CONFIG_*, GIT_DIR…), no proxy, no ssh agent.
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GIT_") and k.lower() not in _PROXY_VARS and k != "SSH_AUTH_SOCK"
        }
        base["GIT_CONFIG_GLOBAL"] = os.devnull
    else:
        base = dict(os.environ)
    return {
        **base,
        **GIT_ENV,
        **extra,
        "GIT_ALLOW_PROTOCOL": ":".join(policy.protocols),
    }


@dataclass(frozen=True)
class GitResult:
    code: int
    out: str
    err: str


async def git_result(
    policy: GitPolicy,
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    remote: Remote | None = None,
    stdin: bytes | None = None,
) -> GitResult:
    """Run ``git <args>`` (hardened, pinned to ``remote`` when it reaches one)
    in its own process group, killed with its group on timeout or cancellation;
    ``stdin`` is written to its standard input (none when None).

    A timeout on a network remote raises ``UnreachableError``; on local work an
    ``ActionError`` naming the limit."""
    command = ["git", *safe_config(policy), *(remote.config if remote else ()), *args]
    full_env = _environment(policy, {**(env or {}), **(remote.env if remote else {})})
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(policy.timeout):
            out, err = await proc.communicate(stdin)
    except TimeoutError:
        await _kill_group(proc)
        if remote is not None and remote.network:
            raise _unreachable(remote, f"{git_command(args)} timed out") from None
        raise ActionError(
            f"{git_command(args)} did not finish within {policy.timeout:g} seconds "
            "(FALSEWORK_GIT_TIMEOUT) and was stopped"
        ) from None
    except BaseException:
        await _kill_group(proc)
        raise
    code = proc.returncode if proc.returncode is not None else -1
    return GitResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL git and everything it started (they share its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    await asyncio.shield(proc.wait())


async def run_git(
    policy: GitPolicy,
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    remote: Remote | None = None,
    stdin: bytes | None = None,
) -> str:
    """Like :func:`git_result`; stdout, or raise the failure (see :func:`failure`)."""
    result = await git_result(policy, args, cwd=cwd, env=env, remote=remote, stdin=stdin)
    if result.code != 0:
        raise failure(args, result, remote)
    return result.out


# What git says when it reached the remote and the remote answered: shown to the
# user. Anything else on a network remote (refused, reset, timed out, no git
# server on that port…) is the one UnreachableError, so git cannot be used to
# tell an open port from a closed one.
_ANSWERED = re.compile(
    r"repository '[^']*' not found|Repository not found|is this a git repository"
    r"|Authentication failed"
    r"|could not read (Username|Password)|terminal prompts disabled"
    r"|Remote branch .* not found|couldn't find remote ref"
    r"|The requested URL returned error: [345]\d\d"
    r"|Permission denied \(|Host key verification failed|No .* host key is known"
    r"|does not appear to be a git repository|\[(remote )?rejected\]|non-fast-forward"
    r"|hook declined|protected branch",
    re.IGNORECASE | re.MULTILINE,
)


def failure(args: Sequence[str], result: GitResult, remote: Remote | None) -> FalseworkError:
    """The error of a failed git command: git's own words when it ran locally or
    the remote answered, else the one ``UnreachableError`` (git's words logged)."""
    detail = redact_urls(result.err.strip())
    if remote is not None and remote.network and not _ANSWERED.search(detail):
        return _unreachable(remote, f"{git_command(args)} exit {result.code}: {detail}")
    return ActionError(f"{git_command(args)} failed (exit {result.code}): {detail}")


def _unreachable(remote: Remote, reason: str) -> FalseworkError:
    return unreachable(remote.shown, None, reason)


def git_command(args: Sequence[str]) -> str:
    """``git <subcommand>`` of a command line, for a message (never its options,
    paths or URLs, which may carry credentials)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "-c":
            skip = True
        elif not arg.startswith("-"):
            return f"git {arg}"
    return "git"


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        if parts.password or parts.username:
            return parts._replace(netloc=f"***@{host_port(url)}").geturl()
    except ValueError:
        pass
    return redact_urls(url)


def host_port(url: str) -> str:
    """``host`` or ``host:port`` of a URL, without any credentials."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return host + (f":{port}" if port else "")


_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact_urls(text: str) -> str:
    """``https://user:token@host/…`` → ``https://***@host/…`` anywhere in ``text``."""
    return _USERINFO.sub(r"\1***@", text)


# -- committing a folder ------------------------------------------------------------
_OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


async def commit_folder(
    policy: GitPolicy,
    git_dir: Path,
    source: Path,
    *,
    branch: str,
    message: str,
    env: Mapping[str, str],
) -> str:
    """Commit ``source`` (what ``git add -A`` takes of it) as the first commit of
    ``branch`` in a new repository ``git_dir`` kept outside it; the commit's id.

    Three git processes: ``init``, ``add``, ``commit``. The repository is thrown
    away with the task's temp folder, so its ``init`` copies no template files
    (sample hooks, which never ran: hooks are off) and its ``commit`` starts no
    background maintenance; the commit's id is read from the branch's ref file git
    has just written (``rev-parse`` only when the branch is not a loose ref there,
    as in a reftable repository)."""
    git = [f"--git-dir={git_dir}", f"--work-tree={source}"]
    await run_git(policy, [*git, "init", "-q", "--template=", "-b", branch], cwd=source, env=env)
    await run_git(policy, [*git, "add", "-A"], cwd=source, env=env)
    commit = [*git, "-c", "maintenance.auto=false", "commit", "-q", "--allow-empty"]
    await run_git(policy, [*commit, "-m", message], cwd=source, env=env)
    try:
        written = (git_dir / "refs" / "heads" / branch).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        written = ""
    if _OBJECT_ID.fullmatch(written):
        return written
    return (await run_git(policy, [*git, "rev-parse", "HEAD"], cwd=source, env=env)).strip()


# -- finding again what an earlier run of a step pushed ---------------------------
# Commits a step pushes carry its idempotency key as a trailer, so a run of the
# step after an interrupted one (the push landed, its record did not) finds its
# commit on the remote and reuses it instead of pushing another.
KEY_TRAILER = "Falsework-Step-Key"


_TRAILER_LINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*: ")


def keyed_message(message: str, key: str) -> str:
    """``message`` with the step's key as a trailer: added to the message's trailer
    block when it ends with one (Backstage's ``Change-Id``, a ``Signed-off-by``), so
    git and Gerrit still read those as trailers; else in a paragraph of its own."""
    text = message.rstrip()
    paragraphs = text.split("\n\n")
    last = paragraphs[-1].splitlines()
    if len(paragraphs) > 1 and last and all(_TRAILER_LINE.match(line) for line in last):
        return f"{text}\n{KEY_TRAILER}: {key}\n"
    return f"{text}\n\n{KEY_TRAILER}: {key}\n"


async def pushed_before(
    policy: GitPolicy,
    git: Sequence[str],
    remote: Remote,
    branch: str,
    key: str,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """The commit at the head of ``branch`` of ``remote`` when it carries ``key``
    (an earlier run of this step pushed it); None when it does not, or the branch
    is not there. ``git`` names the local repository (``--git-dir=…`` or ``-C …``)."""
    ref = f"refs/falsework/pushed-{key}"
    fetch = [*git, "fetch", "--quiet", "--no-tags", "--depth=1", "--", remote.url]
    fetched = await git_result(
        policy, [*fetch, f"+refs/heads/{branch}:{ref}"], cwd=cwd, env=env, remote=remote
    )
    if fetched.code != 0:
        return None
    show = [*git, "log", "-1", f"--format=%H%n%(trailers:key={KEY_TRAILER},valueonly)", ref]
    lines = (await run_git(policy, show, cwd=cwd, env=env)).split()
    return lines[0] if key in lines[1:] else None
