"""Two `falsework serve` processes on one Postgres database form one cluster."""

from __future__ import annotations

import json

import pytest

from .conftest import Server, ServerFactory, auth_config, sse_messages, wait_for_status

API = "/api/scaffolder"
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pair(pg_database: str, servers: ServerFactory) -> tuple[Server, Server]:
    """A runs tasks; B serves the API only, so every task runs on A."""
    a = servers(pg_database, config=auth_config(), concurrency=10)
    b = servers(pg_database, config=auth_config(), concurrency=0)
    return a, b


def test_task_created_on_a_streams_from_b(pair: tuple[Server, Server]) -> None:
    a, b = pair
    on_a, on_b = a.client("alice"), b.client("alice")
    task_id = on_a.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/wait", "values": {"seconds": 1}}
    ).json()["id"]
    stream = on_b.get(f"{API}/v2/tasks/{task_id}/eventstream")
    assert stream.status_code == 200
    messages = [m for m in sse_messages(stream.text) if "id" in m]
    ids = [int(m["id"]) for m in messages]
    assert ids == sorted(set(ids))
    assert messages[-1]["event"] == "completion"
    assert "completed" in json.loads(messages[-1]["data"])["body"]["message"]
    assert [e["id"] for e in on_a.get(f"{API}/v2/tasks/{task_id}/events").json()] == ids


def test_cancel_through_b_reaches_a_task_running_on_a(pair: tuple[Server, Server]) -> None:
    a, b = pair
    on_a, on_b = a.client("alice"), b.client("alice")
    task_id = on_a.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/wait", "values": {"seconds": 60}}
    ).json()["id"]
    wait_for_status(on_b, task_id, ("processing",))
    assert on_b.post(f"{API}/v2/tasks/{task_id}/cancel").json() == {"status": "cancelled"}
    final = wait_for_status(on_a, task_id, ("cancelled", "failed", "completed"), timeout=10)
    assert final["status"] == "cancelled"
    events = on_b.get(f"{API}/v2/tasks/{task_id}/events").json()
    assert events[-1]["type"] == "cancelled"


def test_the_cluster_workers_are_listed_from_any_node(pair: tuple[Server, Server]) -> None:
    a, b = pair
    workers = b.client("admin").get(f"{API}/v2/workers").json()
    # A's worker (limit 10) and no other: B serves the API only (concurrency 0)
    assert [(w["pid"], w["limit"]) for w in workers] == [(a.process.pid, 10)]
