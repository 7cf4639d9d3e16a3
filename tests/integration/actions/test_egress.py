"""The egress policy, the git transports and the scoped credentials, at the
action level: real loopback HTTP, git and TCP servers, real git and ssh processes,
a runner configured as a server's would be (no loopback unless allowed).

The red-team replay of the same findings through `falsework serve` is in
tests/acceptance/security/test_egress.py and test_sources.py."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from falsework.actions.egress import EgressPolicy, Rule, denied_range
from falsework.actions.git import GitCredential, GitPolicy, open_remote, remote_kind
from falsework.actions.policies import PublishPolicy, SourcePolicy
from falsework.errors import ActionError
from support.githttp import GitHost, bare_repository, serve_git
from support.silent import Silent, silent_server

# ------------------------------------------------------------------ the table


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:7f00:1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("fd00:ec2::254", "unique local"),
        ("10.1.2.3", "private"),
        ("172.31.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("fe80::1", "link-local"),
        ("255.255.255.255", "reserved"),
    ],
)
def test_denied_by_default(address: str, kind: str) -> None:
    found = denied_range(ipaddress.ip_address(address))
    assert found is not None and found.startswith(kind)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert denied_range(ipaddress.ip_address(address)) is None
    assert EgressPolicy().refusal("example.com", ipaddress.ip_address(address)) is None


def test_deny_beats_allow_and_names_match_as_written() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    public = ipaddress.ip_address("8.8.8.8")
    policy = EgressPolicy.from_lists(
        allow=["127.0.0.0/8", "*.corp.example", "localhost"], deny=["bad.corp.example", "8.8.8.8"]
    )
    assert policy.refusal("127.0.0.1", loopback) is None
    assert policy.refusal("git.corp.example", ipaddress.ip_address("10.0.0.1")) is None
    assert policy.refusal("corp.example", ipaddress.ip_address("10.0.0.1")) is not None
    assert policy.refusal("LOCALHOST.", ipaddress.ip_address("::1")) is None
    assert "egress.deny" in str(policy.refusal("bad.corp.example", loopback))
    assert "egress.deny" in str(policy.refusal("dns.google", public))
    assert EgressPolicy.unrestricted().refusal("x", loopback) is None
    assert Rule.parse("[::1]").network == ipaddress.ip_network("::1/128")


# ------------------------------------------------------------ http:request


class Recorder(ThreadingHTTPServer):
    """A loopback HTTP server that records what reaches it; ``redirect`` makes
    every answer a 302 to that URL."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", redirect: str | None = None) -> None:
        outer = self
        self.requests: list[dict[str, str]] = []
        self.redirect = redirect

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append({"path": self.path, "host": self.headers["Host"]})
                if outer.redirect:
                    self.send_response(302)
                    self.send_header("Location", outer.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__((host, 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def strict(harness: Any, egress: EgressPolicy | None = None) -> None:
    """Give the harness's runner a server's default egress policy (or ``egress``)."""
    policy = egress or EgressPolicy()
    git = GitPolicy(allow_http=True, egress=policy, timeout=20)
    harness.configure(
        policy,
        git,
        SourcePolicy(roots=harness.policy(SourcePolicy).roots, git=git),
        PublishPolicy(remotes_dir=harness.policy(PublishPolicy).remotes_dir, git=git),
    )


def masked(message: str) -> str:
    return re.sub(r"Could not reach \S+:", "Could not reach HOST:", message)


LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "localhost",
]


async def test_every_spelling_of_loopback_is_refused_before_connecting(
    harness: Any, recorder: Recorder, one_step: Any
) -> None:
    strict(harness)
    messages = set()
    for host in LOOPBACK_SPELLINGS:
        for port in (recorder.port, closed_port()):
            result = await harness.run([one_step("http:request", url=f"http://{host}:{port}/x")])
            assert result.error is not None, host
            assert result.error.name == "UnreachableError", (host, result.error.message)
            messages.add(masked(result.error.message))
    # httpx itself refuses octal: no connection either
    octal = await harness.run([one_step("http:request", url=f"http://0177.0.0.1:{recorder.port}")])
    assert octal.error is not None and "not a valid URL" in octal.error.message
    assert recorder.requests == []
    assert len(messages) == 1, messages  # open or closed, any spelling: one answer


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.0.1:8080/",
        "http://100.64.0.1/",
        "http://0.0.0.0:80/",
    ],
)
async def test_metadata_and_private_ranges_are_refused(
    harness: Any, one_step: Any, url: str
) -> None:
    strict(harness)
    result = await harness.run([one_step("http:request", url=url, timeout=2)])
    assert result.error is not None and result.error.name == "UnreachableError"
    assert "egress policy" in result.error.message


async def test_an_allowed_host_is_reached_and_its_failures_look_alike(
    harness: Any, recorder: Recorder, one_step: Any
) -> None:
    strict(harness, EgressPolicy.from_lists(allow=["127.0.0.1"]))
    ok = await harness.run([one_step("http:request", url=f"http://127.0.0.1:{recorder.port}/a")])
    assert ok.error is None, ok.error
    assert ok.steps["s"]["output"]["body"] == {"ok": True}
    # a closed port, a port that is not HTTP, a port that never answers: one message
    messages = set()
    with (
        socket.create_server(("127.0.0.1", 0)) as silent,
        socket.create_server(("127.0.0.1", 0)) as garbage,
    ):
        stop = threading.Event()

        def babble() -> None:
            garbage.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = garbage.accept()
                except TimeoutError:
                    continue
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                conn.close()

        thread = threading.Thread(target=babble, daemon=True)
        thread.start()
        try:
            for port in (closed_port(), silent.getsockname()[1], garbage.getsockname()[1]):
                result = await harness.run(
                    [one_step("http:request", url=f"http://127.0.0.1:{port}/", timeout=1)]
                )
                assert result.error is not None and result.error.name == "UnreachableError"
                messages.add(masked(result.error.message))
        finally:
            stop.set()
            thread.join()
    assert len(messages) == 1, messages


async def test_the_connection_goes_to_the_checked_address(
    harness: Any, recorder: Recorder, one_step: Any
) -> None:
    """The name is resolved once, by the policy, and the connection goes to that
    address: `rebind.test` exists only in the policy's resolver, so reaching the
    server through it proves nothing resolved the name a second time."""

    async def resolver(host: str, port: int) -> Sequence[str]:
        return {"rebind.test": ["127.0.0.1"], "meta.test": ["169.254.169.254"]}[host]

    strict(harness, EgressPolicy.from_lists(allow=["127.0.0.1"], resolver=resolver))
    url = f"http://rebind.test:{recorder.port}/pinned"
    result = await harness.run([one_step("http:request", url=url)])
    assert result.error is None, result.error
    assert recorder.requests == [{"path": "/pinned", "host": f"rebind.test:{recorder.port}"}]
    refused = await harness.run([one_step("http:request", url="http://meta.test/")])
    assert refused.error is not None and refused.error.name == "UnreachableError"


async def test_each_redirect_hop_is_checked(harness: Any, one_step: Any) -> None:
    inner = Recorder(host="127.0.0.2")
    outer = Recorder(redirect=f"http://127.0.0.2:{inner.port}/secret")
    try:
        strict(harness, EgressPolicy.from_lists(allow=["127.0.0.1"]))
        url = f"http://127.0.0.1:{outer.port}/start"
        kept = await harness.run([one_step("http:request", url=url)])
        assert kept.error is None and kept.steps["s"]["output"]["code"] == 302
        followed = await harness.run([one_step("http:request", url=url, followRedirects=True)])
        assert followed.error is not None and followed.error.name == "UnreachableError"
        assert f"127.0.0.1:{outer.port}" in followed.error.message  # the URL the user gave
        assert inner.requests == [] and len(outer.requests) == 2
        strict(harness, EgressPolicy.from_lists(allow=["127.0.0.1", "127.0.0.2"]))
        allowed = await harness.run([one_step("http:request", url=url, followRedirects=True)])
        assert allowed.error is None and allowed.steps["s"]["output"]["code"] == 200
        assert inner.requests == [{"path": "/secret", "host": f"127.0.0.2:{inner.port}"}]
    finally:
        inner.close()
        outer.close()


# ------------------------------------------------------------------------ git


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/x",
        "fd::0",
        "fd::17/foo",
        "testgit::/x",
        "git://127.0.0.1/x.git",
        "ftp://example.com/x.git",
        "http://example.com/x.git",  # plain http is off by default
    ],
)
def test_transports_a_template_may_not_use(url: str) -> None:
    with pytest.raises(ActionError):
        remote_kind(GitPolicy(), url)


def test_transports_as_git_reads_them() -> None:
    policy = GitPolicy(allow_http=True)
    assert remote_kind(policy, "https://h/o/r.git") == "https"
    assert remote_kind(policy, "http://h/o/r.git") == "http"
    assert remote_kind(policy, "ssh://git@h:2222/o/r.git") == "ssh"
    assert remote_kind(policy, "git@github.com:o/r.git") == "ssh"
    assert remote_kind(policy, "[::1]:o/r.git") == "ssh"
    assert remote_kind(policy, "/srv/repo.git") == "local"
    assert remote_kind(policy, "./a:b") == "local"  # a slash before the colon
    assert remote_kind(policy, "file:///srv/repo.git") == "local"


def exists(path: Path) -> bool:
    return path.exists()


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "CANARY"


@pytest.mark.parametrize("form", ["git+ext::sh -c touch% {canary}", "git+fd::0", "git+fd::3,4"])
async def test_remote_helpers_are_refused_and_run_nothing(
    harness: Any, one_step: Any, canary: Path, form: str
) -> None:
    url = form.format(canary=canary)
    result = await harness.run([one_step("fetch:plain", url=url, targetPath="x")])
    assert result.error is not None and result.error.name == "ActionError"
    assert "never allowed" in result.error.message
    assert not exists(canary)


def git_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name().startswith("git") and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture
def silent() -> Iterator[Silent]:
    with silent_server() as server:
        yield server


async def test_git_stops_at_its_time_limit_with_its_whole_group(
    harness: Any, one_step: Any, silent: Silent
) -> None:
    git = GitPolicy(allow_http=True, egress=EgressPolicy.from_lists(allow=["127.0.0.1"]), timeout=1)
    harness.configure(git, SourcePolicy(git=git))
    url = f"http://127.0.0.1:{silent.port}/team/tools.git"
    result = await harness.run([one_step("fetch:plain", url=url, targetPath="x")])
    assert result.error is not None and result.error.name == "UnreachableError"
    assert silent.accepted  # git did connect, and was stopped
    assert git_children() == []


async def test_a_cancelled_step_kills_its_git(harness: Any, one_step: Any, silent: Silent) -> None:
    git = GitPolicy(allow_http=True, egress=EgressPolicy.from_lists(allow=["127.0.0.1"]))
    harness.configure(git, SourcePolicy(git=git))
    url = f"http://127.0.0.1:{silent.port}/team/tools.git"
    run = asyncio.create_task(harness.run([one_step("fetch:plain", url=url, targetPath="x")]))
    await asyncio.to_thread(silent.connected.wait, 30)  # git is connected and waiting
    assert git_children() != []
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert git_children() == []


@pytest.fixture
def site(tmp_path: Path) -> Iterator[GitHost]:
    root = tmp_path / "site"
    for owner in ("acme", "other"):
        bare_repository(root / owner / "tools.git", {f"{owner}.txt": owner})
    host = serve_git(root)
    yield host
    host.close()


async def test_git_goes_to_the_checked_address(harness: Any, one_step: Any, site: GitHost) -> None:
    """`rebind.test` exists only in the policy's resolver: git reaches the server
    only because the checked address is pinned (curl never resolves the name)."""

    async def resolver(host: str, port: int) -> Sequence[str]:
        return {"rebind.test": ["127.0.0.1"]}[host]

    strict(harness, EgressPolicy.from_lists(allow=["127.0.0.1"], resolver=resolver))
    port = site.url.rsplit(":", 1)[1]
    url = f"http://rebind.test:{port}/acme/tools.git"
    result = await harness.run([one_step("fetch:plain", url=url, targetPath="x")])
    assert result.error is None, result.error
    assert (harness.workspace / "x" / "acme.txt").read_text() == "acme"


async def test_git_to_loopback_is_refused_by_default(
    harness: Any, one_step: Any, site: GitHost
) -> None:
    strict(harness)
    for url in (f"{site.url}/acme/tools.git", f"git+{site.url}/acme/tools.git"):
        result = await harness.run([one_step("fetch:plain", url=url, targetPath="x")])
        assert result.error is not None and result.error.name == "UnreachableError"
    assert site.seen == []


# ------------------------------------------------------------- credentials


def test_a_credential_covers_only_the_repositories_it_names() -> None:
    acme = GitCredential(host="git.example.com", token="t", owners=("acme",))
    paths = GitCredential(host="git.example.com", token="u", paths=("platform/templates/*",))
    policy = GitPolicy(credentials=(acme, paths))
    base = "https://git.example.com"
    assert policy.credential("https", f"{base}/acme/svc.git") is acme
    assert policy.credential("https", f"{base}/acme/team/svc.git") is acme
    assert policy.credential("https", f"{base}/platform/templates/x.git") is paths
    for other in (
        "/other/svc.git",
        "/acmeco/svc.git",
        "/acme/../other/svc.git",
        "/acme/%2e%2e/other/svc.git",
        "/acme%2Fother/svc.git",
        "//acme/svc.git",
        "/platform/templates/x/y.git",  # * stays in one segment
    ):
        assert policy.credential("https", base + other) is None, other
    assert policy.credential("https", "https://git.example.com:8443/acme/svc.git") is None
    assert policy.credential("https", "https://other.example.com/acme/svc.git") is None
    assert policy.credential("ssh", "git@git.example.com:acme/svc.git") is None  # a token


def test_an_ssh_key_goes_only_to_its_scope_and_ssh_reads_no_config() -> None:
    key = GitCredential(host="git.example.com", ssh_key=Path("/keys/deploy"), owners=("acme",))

    async def resolver(host: str, port: int) -> Sequence[str]:
        return ["203.0.113.10"]

    policy = GitPolicy(credentials=(key,), egress=EgressPolicy(resolver=resolver))

    async def command(url: str) -> str:
        remote = await open_remote(policy, url)
        return str(remote.env["GIT_SSH_COMMAND"])

    mine = asyncio.run(command("git@git.example.com:acme/svc.git"))
    theirs = asyncio.run(command("ssh://git@git.example.com/other/svc.git"))
    for text in (mine, theirs):
        assert "-F /dev/null" in text and "IdentityAgent=none" in text
        assert "HostName=203.0.113.10" in text and "HostKeyAlias=git.example.com" in text
    assert "IdentityFile=/keys/deploy" in mine and "IdentitiesOnly=yes" in mine
    assert "IdentityFile" not in theirs and "PubkeyAuthentication=no" in theirs


async def test_ssh_goes_to_the_checked_address(harness: Any, one_step: Any) -> None:
    """A real ssh client, pinned: `rebind.test` is only in the policy's resolver,
    so the banner reaching this socket proves ssh used the checked address."""
    banners: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)

        def accept() -> None:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                return
            with conn:
                conn.settimeout(5)
                banners.append(conn.recv(64))

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()

        async def resolver(host: str, port: int) -> Sequence[str]:
            return {"rebind.test": ["127.0.0.1"]}[host]

        strict(harness, EgressPolicy.from_lists(allow=["127.0.0.1"], resolver=resolver))
        port = server.getsockname()[1]
        url = f"ssh://git@rebind.test:{port}/acme/tools.git"
        result = await harness.run([one_step("fetch:plain", url=url, targetPath="x")])
        thread.join()
    assert result.error is not None and result.error.name == "UnreachableError"
    assert banners and banners[0].startswith(b"SSH-2.0-")
