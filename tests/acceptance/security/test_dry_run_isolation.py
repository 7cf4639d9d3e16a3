"""Dry-runs cannot freeze or flood the server (issue 8, finding 6): each runs in a
child process with a time limit, a memory limit and a result-size limit, is killed
when its client goes away, and a user runs only a few at once.

Through a real `falsework serve` (SQLite: no dry-run touches the database)."""

from __future__ import annotations

import base64
import json
import select
import socket
import threading
import time
from typing import Any

import httpx
import psutil
import pytest

from support.servers import Server, ServerFactory, auth_config, token_of

API = "/api/scaffolder"
TIMEOUT = 6
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    return servers(
        None,
        config={
            **auth_config(),
            "dry_run_timeout": TIMEOUT,
            "dry_run_memory_mb": 256,
            "dry_run_max_result": 3_000_000,
            # the child's memory limit is what this module tests: the files' own bound
            # (checked before they are read) has its test in test_bounds
            "dry_run_max_bytes": 500_000_000,
            "dry_runs_per_minute": 1000,  # the rate has its own test (test_permissions)
        },
    )


def _template(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "hostile"},
        "spec": {"steps": steps},
    }


# Each step renders a loop of 10^10 turns: stopped by the render's own time limit
# (2 s), after which the next step (`always()`) starts another.
BURN = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
BURNING = _template(
    [
        {
            "id": f"burn{i}",
            "action": "debug:log",
            "if": "${{ always() }}",
            "input": {"message": BURN},
        }
        for i in range(10)
    ]
)


def _pool_children(server: Server) -> set[int]:
    return {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)}


def test_a_burning_dry_run_does_not_stop_healthz_and_is_stopped_at_its_limit(
    server: Server,
) -> None:
    answered: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                if client.get("/healthz").status_code == 200:
                    answered.append(time.monotonic())

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        sent = time.monotonic()
        response = server.client("admin").post(
            f"{API}/v2/dry-run", json={"template": BURNING, "values": {}}, timeout=120
        )
        finished = time.monotonic()
    finally:
        stop.set()
        prober.join(60)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["name"] == "DryRunLimitError"
    assert f"longer than {TIMEOUT} seconds (dry_run_timeout)" in response.json()["error"]["message"]
    # An ordering, not a latency: while the dry-run burned, /healthz kept answering
    # (with the render on the event loop, at most one probe got through per step).
    during = [t for t in answered if sent < t < finished]
    assert len(during) >= 20, f"{len(during)} probes answered during the dry-run"
    # the killed child was replaced: the next dry-run runs
    again = server.client("admin").post(
        f"{API}/v2/dry-run",
        json={"template": _template([{"id": "ok", "action": "debug:log", "input": {}}])},
    )
    assert again.status_code == 200, again.text


def _copies(size: int, count: int) -> dict[str, Any]:
    """A template body copying an uploaded file of ``size`` bytes ``count`` times."""
    steps = [
        {
            "id": f"copy{i}",
            "action": "fetch:plain",
            "input": {"url": "./big", "targetPath": f"c{i}"},
        }
        for i in range(count)
    ]
    content = base64.b64encode(b"x" * size).decode()
    return {
        "template": _template(steps),
        "values": {},
        "directoryContents": [{"path": "big/file.bin", "base64Content": content}],
    }


def test_a_dry_run_over_its_memory_limit_fails_cleanly(server: Server) -> None:
    admin = server.client("admin")
    before = psutil.Process(server.process.pid).memory_info().rss
    response = admin.post(f"{API}/v2/dry-run", json=_copies(7_000_000, 10), timeout=120)
    assert response.status_code == 422, response.text[:500]
    error = response.json()["error"]
    assert error["name"] == "DryRunLimitError"
    assert "more than 256 MiB of memory (dry_run_memory_mb)" in error["message"]
    assert server.process.poll() is None
    assert server.client().get("/healthz").status_code == 200
    # the files were read back in the child, not in the server
    after = psutil.Process(server.process.pid).memory_info().rss
    assert after - before < 100 * 1024 * 1024
    small = admin.post(f"{API}/v2/dry-run", json=_copies(1000, 1))
    assert small.status_code == 200, small.text


def test_a_dry_run_result_over_its_size_limit_is_refused(server: Server) -> None:
    response = server.client("admin").post(f"{API}/v2/dry-run", json=_copies(1_500_000, 2))
    assert response.status_code == 422, response.text[:500]
    assert "(dry_run_max_result)" in response.json()["error"]["message"]


@pytest.fixture(scope="module")
def patient(servers: ServerFactory) -> Server:
    """Dry-runs wait as long as their clients do: two children, no queue."""
    config = {
        **auth_config(),
        "dry_run_timeout": 600,
        "dry_run_workers": 2,
        "dry_run_queue": 0,
        "dry_runs_per_minute": 1000,  # the rate has its own test (test_permissions)
    }
    return servers(None, config=config)


WAITING = {"templateRef": "template:default/wait", "values": {"seconds": 300}}
HELLO = {"templateRef": "template:default/hello", "values": {"name": "h"}}


def _wait_then_leave(server: Server, who: str, leave: threading.Event, outcomes: list[str]) -> None:
    """A dry-run that waits, whose client gives up once ``leave`` is set (it closes
    the connection, unanswered); retried while the server is full, so it surely gets in."""
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps(WAITING).encode()
    request = (
        f"POST {API}/v2/dry-run HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token_of(who)}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(request)
            while not leave.is_set():
                if select.select([sock], [], [], 0.05)[0]:
                    status = sock.recv(65536).split(b" ", 2)[1:2]
                    break
            else:
                outcomes.append("left")
                return
        if status != [b"429"]:
            outcomes.append(f"answered {status}")
            return
        time.sleep(0.05)
    outcomes.append("never got in")


def _refused(client: httpx.Client, body: dict[str, Any]) -> httpx.Response | None:
    """The first 429 answer to ``body`` within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = client.post(f"{API}/v2/dry-run", json=body)
        if answer.status_code == 429:
            return answer
        time.sleep(0.05)
    return None


def test_a_dry_run_is_killed_when_its_client_goes_away(patient: Server) -> None:
    alice = patient.client("alice")
    assert alice.post(f"{API}/v2/dry-run", json=HELLO).status_code == 200
    children = _pool_children(patient)
    assert len(children) >= 3  # the fork server and the pool's two children
    outcomes: list[str] = []
    leave = threading.Event()
    leavers = [
        threading.Thread(target=_wait_then_leave, args=(patient, "alice", leave, outcomes))
        for _ in range(2)
    ]
    for thread in leavers:
        thread.start()
    # two at once per user: a third is refused while both run
    refused = _refused(alice, HELLO)
    leave.set()
    assert refused is not None, "a third dry-run of alice's was not refused"
    assert "dry-runs open on this server (the limit is 2 per user)" in refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    for thread in leavers:
        thread.join(60)
    assert outcomes == ["left", "left"]
    # both children that were waiting are killed (and replaced)
    deadline = time.monotonic() + 30
    while len(children - _pool_children(patient)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(children - _pool_children(patient)) >= 2
    assert alice.post(f"{API}/v2/dry-run", json=HELLO).status_code == 200


def test_the_pool_takes_a_bounded_number_of_dry_runs(patient: Server) -> None:
    outcomes: list[str] = []
    leave = threading.Event()
    leavers = [
        threading.Thread(target=_wait_then_leave, args=(patient, who, leave, outcomes))
        for who in ("alice", "bob")
    ]
    for thread in leavers:
        thread.start()
    refused = _refused(patient.client("admin"), HELLO)
    leave.set()
    assert refused is not None, "the pool took a third dry-run with two children and no queue"
    assert "dry_run_workers + dry_run_queue" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    for thread in leavers:
        thread.join(60)
    assert outcomes == ["left", "left"]
