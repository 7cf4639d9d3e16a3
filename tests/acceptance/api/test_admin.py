"""The admin routes through a real `falsework serve` (SQLite and Postgres): the
overview, the cluster-wide pause of claiming, bulk cancel and retry by filter;
audited; admins only."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from support.servers import Server, ServerFactory, auth_config, wait_for_status

API = "/api/scaffolder/v2"
ADMIN = "/api/falsework/v1/admin"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def admin_server(module_database: str, servers: ServerFactory) -> Server:
    return servers(
        module_database,
        config=auth_config(),
        env={"FALSEWORK_POLL_INTERVAL": "0.2", "FALSEWORK_MAX_POLL_INTERVAL": "0.5"},
    )


def _create(client: httpx.Client, template: str, **values: Any) -> str:
    made = client.post(
        f"{API}/tasks", json={"templateRef": f"template:default/{template}", "values": values}
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _actions(admin: httpx.Client) -> list[str]:
    entries = admin.get("/api/falsework/v1/audit", params={"actor": "user:default/root"})
    return [e["action"] for e in entries.json()["entries"]]


def test_only_admins_reach_the_admin_routes(admin_server: Server) -> None:
    alice = admin_server.client("alice")
    calls = [
        alice.get(f"{ADMIN}/overview"),
        alice.put(f"{ADMIN}/pause", json={"reason": "x"}),
        alice.delete(f"{ADMIN}/pause"),
        alice.post(f"{ADMIN}/tasks/cancel", json={}),
        alice.post(f"{ADMIN}/tasks/retry", json={}),
    ]
    assert [c.status_code for c in calls] == [403] * 5
    assert "admins only" in calls[0].json()["error"]["message"]
    assert admin_server.client().get(f"{ADMIN}/overview").status_code == 401
    admin = admin_server.client("admin")
    assert admin.get(f"{ADMIN}/overview").json()["paused"] is None


def test_pause_stops_claiming_everywhere_until_resumed(admin_server: Server) -> None:
    alice, admin = admin_server.client("alice"), admin_server.client("admin")
    paused = admin.put(f"{ADMIN}/pause", json={"reason": "database upgrade"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"]["detail"] == {"reason": "database upgrade"}
    assert paused.json()["paused"]["setBy"] == "user:default/root"
    task = _create(alice, "hello", name="x")
    time.sleep(1.0)  # five of the worker's polls: none may claim it
    assert alice.get(f"{API}/tasks/{task}").json()["status"] == "open"
    seen = admin.get(f"{ADMIN}/overview").json()
    assert seen["paused"]["detail"]["reason"] == "database upgrade"
    assert seen["queue"]["claimable"] >= 1 and seen["queue"]["oldestOpenAgeSeconds"] >= 0.9
    (worker,) = seen["workers"]
    assert worker["limit"] == 20 and worker["heartbeatAgeSeconds"] < 5
    assert admin.delete(f"{ADMIN}/pause").json() == {"paused": None}
    assert wait_for_status(alice, task, ("completed", "failed"))["status"] == "completed"
    assert admin.get(f"{ADMIN}/overview").json()["paused"] is None
    actions = _actions(admin)
    assert actions.index("admin.resume") < actions.index("admin.pause")  # newest first


def test_bulk_cancel_and_retry_by_filter(admin_server: Server) -> None:
    alice, bob, admin = (admin_server.client(n) for n in ("alice", "bob", "admin"))
    waits = [_create(alice, "wait", seconds=60) for _ in range(3)]
    other = _create(bob, "wait", seconds=60)
    mine = {"createdBy": "user:default/alice", "template": "template:default/wait"}
    preview = admin.post(f"{ADMIN}/tasks/cancel", json={**mine, "dryRun": True}).json()
    assert preview == {"matched": waits, "done": [], "failed": [], "dryRun": True}
    assert alice.get(f"{API}/tasks/{waits[0]}").json()["status"] in ("open", "processing")
    done = admin.post(f"{ADMIN}/tasks/cancel", json={**mine, "limit": 2}).json()
    assert done["done"] == waits[:2] and done["failed"] == []
    for task in waits[:2]:
        wait_for_status(alice, task, ("cancelled",))
    retried = admin.post(f"{ADMIN}/tasks/retry", json=mine).json()
    assert retried["done"] == waits[:2]
    # a status the action cannot take is refused, naming it
    wrong = admin.post(f"{ADMIN}/tasks/retry", json={"status": ["processing"]})
    assert wrong.status_code == 400 and "processing" in wrong.json()["error"]["message"]
    naive = admin.post(f"{ADMIN}/tasks/cancel", json={"createdBefore": "2026-01-01T00:00:00"})
    assert naive.status_code == 400 and "time zone" in naive.json()["error"]["message"]
    # clean up: everything of alice's and bob's cancelled
    everything = admin.post(f"{ADMIN}/tasks/cancel", json={"template": "template:default/wait"})
    assert set(everything.json()["done"]) == {*waits, other}
    actions = _actions(admin)
    assert {"admin.bulk_cancel", "admin.bulk_retry"} <= set(actions)
