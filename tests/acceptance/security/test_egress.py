"""Red team, egress (issue 8, findings 4 and 10): a plain user (alice) runs catalog
templates whose `http:request`, `fetch:plain` and `publish:git` reach URLs she
chooses, on a real `falsework serve`.

- with the default policy, every spelling of loopback, the metadata address and
  the private ranges are refused, with the same message whether a port is open
  or closed (no port scan), and nothing reaches the servers listening there;
- an operator's `egress.allow` lets loopback through; a redirect from there to a
  denied address is refused at its hop;
- a configured git token goes to the repositories its scope names (`acme/*`),
  never to another owner's on the same host, for reads and for pushes.

Egress is about the network, not the database: these servers run on SQLite.
"""

from __future__ import annotations

import base64
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.githttp import GitHost, bare_repository, git, serve_git
from support.servers import TEMPLATES, Server, ServerFactory, auth_config, wait_for_status

API = "/api/scaffolder"
SECURITY_TEMPLATES = Path(__file__).resolve().parent / "templates"
TOKEN = "server-token-7c1e"
BASIC = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


def start(servers: ServerFactory, config: dict[str, Any]) -> Server:
    env = {"FALSEWORK_TEMPLATES": f"{TEMPLATES}:{SECURITY_TEMPLATES}"}
    return servers(None, env=env, config={**auth_config(), **config})


class Recorder(ThreadingHTTPServer):
    """A loopback HTTP server recording what reaches it; ``redirect`` makes every
    answer a 302 there."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", redirect: str | None = None) -> None:
        outer = self
        self.paths: list[str] = []
        self.redirect = redirect

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                if outer.redirect:
                    self.send_response(302)
                    self.send_header("Location", outer.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

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


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(client: httpx.Client, template: str, values: dict[str, Any]) -> str:
    response = client.post(
        f"{API}/v2/tasks", json={"templateRef": f"template:default/{template}", "values": values}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def outcome(client: httpx.Client, task_id: str, step: str) -> tuple[str, str]:
    """(task status, the step's failure event message or "")."""
    task = wait_for_status(client, task_id, ("failed", "completed", "cancelled"))
    for event in client.get(f"{API}/v2/tasks/{task_id}/events").json():
        body = event["body"]
        if body.get("stepId") == step and body.get("status") == "failed":
            return str(task["status"]), str(body["message"])
    return str(task["status"]), ""


def masked(message: str) -> str:
    return re.sub(r"Could not reach \S+:", "Could not reach HOST:", message)


# ------------------------------------------------------------- the default


@pytest.fixture(scope="module")
def default(servers: ServerFactory) -> Server:
    """A server as installed: no egress section, plain http allowed for git only
    so that git's refusal comes from the egress policy."""
    return start(servers, {"git_allow_http": True})


LOOPBACK = ["127.0.0.1", "127.1", "0x7f000001", "2130706433", "[::1]", "[::ffff:127.0.0.1]"]
LOOPBACK += ["localhost", "[::ffff:7f00:1]", "127.0.0.2"]


def test_http_request_refuses_every_loopback_spelling_open_or_closed(
    default: Server, recorder: Recorder
) -> None:
    alice = default.client("alice")
    messages = set()
    for host in LOOPBACK:
        for port in (recorder.port, closed_port()):
            task_id = run(alice, "egress-http", {"url": f"http://{host}:{port}/admin"})
            status, message = outcome(alice, task_id, "call")
            assert status == "failed", (host, port)
            assert message.startswith("UnreachableError: Could not reach "), message
            messages.add(masked(message))
    assert len(messages) == 1, messages
    assert recorder.paths == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://10.255.255.1:8080/",
        "http://192.168.0.1/",
        "http://172.16.0.1/",
        "http://100.100.100.200/",  # CGNAT-range metadata of some clouds
        "http://0.0.0.0:{port}/",
    ],
)
def test_http_request_refuses_metadata_and_private_ranges(
    default: Server, recorder: Recorder, url: str
) -> None:
    alice = default.client("alice")
    status, message = outcome(
        alice, run(alice, "egress-http", {"url": url.format(port=recorder.port)}), "call"
    )
    assert status == "failed"
    assert masked(message) == masked(
        "UnreachableError: Could not reach x: the connection failed, timed out, or is not "
        "allowed by this server's egress policy (the server's log has the reason)"
    )
    assert recorder.paths == []


def test_git_refuses_loopback_and_does_not_tell_open_from_closed(
    default: Server, recorder: Recorder
) -> None:
    alice = default.client("alice")
    messages = set()
    for host in ("127.0.0.1", "localhost", "0x7f000001", "[::1]"):
        for port in (recorder.port, closed_port()):
            url = f"http://{host}:{port}/team/x.git"
            status, message = outcome(alice, run(alice, "sources-fetch", {"url": url}), "fetch")
            assert status == "failed"
            assert message.startswith("UnreachableError: "), message
            messages.add(masked(message.replace(url, "URL")))
    assert len(messages) == 1, messages
    assert recorder.paths == []


# ------------------------------------------------------------- allowed


@pytest.fixture(scope="module")
def open_loopback(servers: ServerFactory) -> Server:
    """An operator allowed 127.0.0.1 (and only it)."""
    return start(
        servers,
        {"egress": {"allow": ["127.0.0.1"]}, "git_allow_http": True, "git_timeout": 5},
    )


def test_an_allow_listed_address_is_reached(open_loopback: Server, recorder: Recorder) -> None:
    alice = open_loopback.client("alice")
    task_id = run(alice, "egress-http", {"url": f"http://127.0.0.1:{recorder.port}/allowed"})
    assert outcome(alice, task_id, "call") == ("completed", "")
    assert "/allowed" in recorder.paths
    # the rest of loopback is still refused
    task_id = run(alice, "egress-http", {"url": f"http://[::1]:{recorder.port}/v6"})
    assert outcome(alice, task_id, "call")[0] == "failed"
    assert "/v6" not in recorder.paths


def test_an_allowed_host_is_no_port_scanner(open_loopback: Server) -> None:
    """Allowed or not, a closed port, a port that speaks something else and a port
    that never answers give one message, for http:request and for git."""
    alice = open_loopback.client("alice")
    with (
        socket.create_server(("127.0.0.1", 0)) as silent,
        socket.create_server(("127.0.0.1", 0)) as chatty,
    ):
        stop = threading.Event()

        def babble() -> None:
            chatty.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = chatty.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.sendall(b"220 smtp.internal ESMTP ready\r\n")

        thread = threading.Thread(target=babble, daemon=True)
        thread.start()
        try:
            ports = (closed_port(), silent.getsockname()[1], chatty.getsockname()[1])
            for template, step, path in (
                ("egress-http", "call", "/"),
                ("sources-fetch", "fetch", "/team/x.git"),
            ):
                messages = set()
                for port in ports:
                    url = f"http://127.0.0.1:{port}{path}"
                    status, message = outcome(alice, run(alice, template, {"url": url}), step)
                    assert status == "failed"
                    assert "UnreachableError: Could not reach" in message, message
                    messages.add(masked(message.replace(url, "URL")))
                assert len(messages) == 1, (template, messages)
        finally:
            stop.set()
            thread.join()


def test_a_redirect_to_a_denied_address_is_refused_at_its_hop(open_loopback: Server) -> None:
    inner = Recorder(host="127.0.0.2")
    outer = Recorder(redirect=f"http://127.0.0.2:{inner.port}/internal")
    metadata = Recorder(redirect="http://169.254.169.254/latest/meta-data/")
    try:
        alice = open_loopback.client("alice")
        for hop in (outer, metadata):
            url = f"http://127.0.0.1:{hop.port}/start"
            task_id = run(alice, "egress-http", {"url": url, "follow": True})
            status, message = outcome(alice, task_id, "call")
            assert status == "failed"
            assert message.startswith(f"UnreachableError: Could not reach 127.0.0.1:{hop.port}:")
            assert hop.paths == ["/start"]
        assert inner.paths == []
    finally:
        for server in (inner, outer, metadata):
            server.close()


# ------------------------------------------------------------- credentials


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHost]:
    root = tmp_path_factory.mktemp("githost")
    for owner in ("acme", "other", "acmeco"):
        bare_repository(root / owner / "tools.git", {"README.md": f"{owner}\n"})
    host = serve_git(root)
    yield host
    host.close()


@pytest.fixture(scope="module")
def scoped(servers: ServerFactory, site: GitHost) -> Server:
    """The server's git token for this host is scoped to the owner acme."""
    credential = {"host": site.netloc, "token": TOKEN, "allowedOwners": ["acme"]}
    return start(
        servers,
        {
            "egress": {"allow": ["127.0.0.1"]},
            "git_allow_http": True,
            "integrations": {"git": [credential]},
        },
    )


def authorizations(site: GitHost, owner: str) -> set[str | None]:
    return {s.authorization for s in site.seen if s.path.startswith(f"/{owner}/")}


def test_the_token_goes_to_its_owner_only_for_reads(scoped: Server, site: GitHost) -> None:
    alice = scoped.client("alice")
    for owner in ("acme", "other", "acmeco"):
        url = f"{site.url}/{owner}/tools.git"
        task_id = run(alice, "sources-fetch", {"url": url})
        assert outcome(alice, task_id, "fetch") == ("completed", ""), owner
    assert authorizations(site, "acme") == {BASIC}
    assert authorizations(site, "other") == {None}
    assert authorizations(site, "acmeco") == {None}
    # a path that climbs out of acme/ gets no token either
    url = f"{site.url}/acme/../other/tools.git"
    before = len(site.seen)
    run_id = run(alice, "sources-fetch", {"url": url})
    outcome(alice, run_id, "fetch")
    assert {s.authorization for s in site.seen[before:]} <= {None}


def test_the_token_goes_to_its_owner_only_for_pushes(scoped: Server, site: GitHost) -> None:
    alice = scoped.client("alice")
    before = len(site.seen)
    for owner in ("acme", "other"):
        remote = f"{site.url}/{owner}/tools.git"
        task_id = run(alice, "egress-publish", {"remote": remote})
        status, message = outcome(alice, task_id, "publish")
        assert status == "failed", owner  # the branch exists: nothing is forced
        assert "already has commits" in message, message
    pushes = site.seen[before:]
    assert {s.authorization for s in pushes if s.path.startswith("/acme/")} == {BASIC}
    assert {s.authorization for s in pushes if s.path.startswith("/other/")} == {None}
    assert git("log", "--format=%s", "main", cwd=site.root / "other" / "tools.git") == "init"
