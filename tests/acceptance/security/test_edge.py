"""The API's edge (issue 8, findings 7, 9 and 12): the Host rule of local mode, JSON
depth, slow clients, per-user stream caps, what /readyz and errors reveal, and the
API docs page's scripts. Through real `falsework serve` processes."""

from __future__ import annotations

import base64
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from support.postgres import fresh_database
from support.servers import (
    Server,
    ServerFactory,
    auth_config,
    start_server,
    token_of,
    wait_for_status,
)

API = "/api/scaffolder"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local(module_database: str, servers: ServerFactory) -> Server:
    """Local mode (no tokens, loopback) with one extra allowed name."""
    return servers(
        module_database,
        config={"allowed_hosts": ["dev.box"], "header_timeout": 1, "body_timeout": 1},
    )


@pytest.fixture(scope="module")
def server(module_database: str, servers: ServerFactory) -> Server:
    return servers(
        module_database,
        config={**auth_config(), "max_streams_per_user": 2, "body_timeout": 1},
    )


def _port(server: Server) -> int:
    return int(urlsplit(server.url).port or 0)


# -- Host ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}", "x:y"]
)
def test_local_mode_refuses_a_foreign_host(local: Server, host: str) -> None:
    header = host.format(port=_port(local))
    refused = local.client().get(f"{API}/v2/me", headers={"Host": header})
    assert refused.status_code == 421, refused.text
    error = refused.json()["error"]
    assert error["name"] == "MisdirectedRequestError"
    assert "allowed_hosts" in error["message"]
    created = local.client().post(
        f"{API}/v2/tasks",
        json={"templateRef": "template:default/hello", "values": {"name": "x"}},
        headers={"Host": header},
    )
    assert created.status_code == 421


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "dev.box:{port}", "LOCALHOST"]
)
def test_local_mode_answers_loopback_and_configured_names(local: Server, host: str) -> None:
    answer = local.client().get(f"{API}/v2/me", headers={"Host": host.format(port=_port(local))})
    assert answer.status_code == 200, answer.text
    assert answer.json()["admin"] is True


def test_probes_answer_any_host(local: Server) -> None:
    assert local.client().get("/healthz", headers={"Host": "lb.internal"}).status_code == 200


def test_with_tokens_any_host_is_answered(server: Server) -> None:
    # a browser never sends the bearer token by itself: a rebound page gains nothing
    answer = server.client("alice").get(f"{API}/v2/me", headers={"Host": "api.example.com"})
    assert answer.status_code == 200


# -- JSON depth ------------------------------------------------------------------
def _create_with_depth(client: httpx.Client, depth: int) -> httpx.Response:
    """A create request whose body is nested ``depth`` levels deep (written by hand:
    json.dumps itself stops near 1,000 levels)."""
    levels = depth - 2  # the body, then values, then deep
    deep = '{"a":' * levels + '"x"' + "}" * levels
    body = f'{{"templateRef":"template:default/hello","values":{{"name":"deep","deep":{deep}}}}}'
    return client.post(
        f"{API}/v2/tasks", content=body, headers={"Content-Type": "application/json"}
    )


@pytest.mark.parametrize("depth", [63, 64])
def test_nesting_up_to_the_limit_creates_and_lists(server: Server, depth: int) -> None:
    alice = server.client("alice")
    created = _create_with_depth(alice, depth)
    assert created.status_code == 201, created.text
    wait_for_status(alice, created.json()["id"], ("completed",))
    for who in ("alice", "admin"):
        listed = server.client(who).get(f"{API}/v2/tasks")
        assert listed.status_code == 200, listed.text
    task = alice.get(f"{API}/v2/tasks/{created.json()['id']}")
    assert task.status_code == 200


@pytest.mark.parametrize("depth", [65, 260, 700, 5000])
def test_nesting_over_the_limit_is_refused_at_the_edge(server: Server, depth: int) -> None:
    alice = server.client("alice")
    refused = _create_with_depth(alice, depth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["name"] == "InputError"
    assert "more than 64 levels" in refused.json()["error"]["message"]
    for who in ("alice", "admin"):
        assert server.client(who).get(f"{API}/v2/tasks").status_code == 200


# -- slow clients ------------------------------------------------------------------
def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        chunk = sock.recv(65536)  # the socket's timeout ends a hung test
        if not chunk:
            return received
        received += chunk


def test_a_request_head_that_never_completes_is_dropped(local: Server) -> None:
    with socket.create_connection(("127.0.0.1", _port(local)), timeout=30) as sock:
        sock.sendall(b"GET /api/scaffolder/v2/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert _read_until_closed(sock) == b""  # closed by the server, nothing answered


def test_a_body_that_never_completes_answers_408(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=30) as sock:
        sock.sendall(
            b"POST /api/scaffolder/v2/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"templateRef"'
        )
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 1 seconds" in answer


# -- event streams per user ----------------------------------------------------------
def test_event_streams_per_user_are_capped(server: Server) -> None:
    alice, bob = server.client("alice"), server.client("bob")
    task_id = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/wait", "values": {"seconds": 60}}
    ).json()["id"]
    stream = f"{API}/v2/tasks/{task_id}/eventstream"
    try:
        with contextlib.ExitStack() as held:
            opened = [held.enter_context(alice.stream("GET", stream)) for _ in range(2)]
            assert [r.status_code for r in opened] == [200, 200]
            refused = alice.get(stream)
            assert refused.status_code == 429, refused.text
            assert "limit is 2 per user" in refused.json()["error"]["message"]
            polled = alice.get(f"{API}/v2/tasks/{task_id}/events", params={"after": 10**9})
            assert polled.status_code == 429
            # the cap is per user: bob is not affected (his own stream is a 403, not a 429)
            assert bob.get(stream).status_code == 403
        # closing a stream frees its slot (once the server has seen the disconnect)
        assert _opens_again(alice, stream)
    finally:
        alice.post(f"{API}/v2/tasks/{task_id}/cancel")


def _opens_again(client: httpx.Client, url: str) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with client.stream("GET", url) as response:
            if response.status_code == 200:
                return True
        time.sleep(0.1)
    return False


# -- what answers reveal --------------------------------------------------------------
def test_an_api_answer_allows_no_scripts_and_there_is_no_cdn_docs_page(server: Server) -> None:
    answer = server.client("alice").get(f"{API}/v2/templates")
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    assert answer.headers["x-content-type-options"] == "nosniff"
    docs = server.client().get(f"{API}/docs")
    assert docs.status_code == 404
    assert "cdn" not in docs.text.lower()
    # the page keeps its own policy
    page = server.client().get("/create")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_a_file_error_is_no_database_outage(server: Server) -> None:
    long_name = "n" * 300 + ".txt"
    answer = server.client("admin").post(
        f"{API}/v2/dry-run",
        json={
            "template": {"kind": "Template", "metadata": {"name": "f"}, "spec": {"steps": []}},
            "values": {},
            "directoryContents": [
                {"path": long_name, "base64Content": base64.b64encode(b"x").decode()}
            ],
        },
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["name"] == "InputError"
    assert "File name too long" in answer.json()["error"]["message"]
    assert "database" not in server.log.read_text().lower()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty database this module's server migrates (and a test drops under it)."""
    with fresh_database("fw_edge") as url:
        yield url


def test_readyz_does_not_reveal_the_database_error(postgres_url: str, tmp_path: Any) -> None:
    server = start_server(postgres_url, tmp_path, concurrency=0, config=auth_config())
    try:
        name = postgres_url.rsplit("/", 1)[1]
        admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        ready = server.client().get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "checks": {"database": "unavailable", "worker": "disabled"},
        }
        assert name not in ready.text
        # the operator still learns why, from the log
        assert name in server.log.read_text()
    finally:
        server.process.kill()
        server.process.wait()


def test_tokens_are_needed_for_the_api_outside_local_mode(server: Server) -> None:
    # the edge rules do not replace authentication
    assert httpx.get(f"{server.url}{API}/v2/me").status_code == 401
    other = httpx.get(
        f"{server.url}{API}/v2/me", headers={"Authorization": f"Bearer {token_of('bob')}"}
    )
    assert other.json()["user"] == "user:default/bob"
