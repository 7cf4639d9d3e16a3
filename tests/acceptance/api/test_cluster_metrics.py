"""Cluster metrics scraped from two real `falsework serve` processes on one
database (a worker node and an API-only node), parsed with prometheus_client's
parser, on SQLite and Postgres."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Server, ServerFactory, auth_config, wait_for_status

API = "/api/scaffolder"
pytestmark = pytest.mark.slow
FAST = {
    "FALSEWORK_CLUSTER_METRICS_INTERVAL": "0.2",
    "FALSEWORK_CLUSTER_METRICS_LAG": "0",
}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def pair(module_database: str, servers: ServerFactory) -> tuple[Server, Server]:
    a = servers(module_database, config=auth_config(), concurrency=10, env=FAST)
    b = servers(module_database, config=auth_config(), concurrency=0, env=FAST)
    return a, b


def scrape(server: Server) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, labels), and each family's type."""
    text = server.client().get("/metrics").text
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape_until(server: Server, ok: Any, within: float = 20.0) -> Samples:
    deadline = time.monotonic() + within
    while True:
        samples, _ = scrape(server)
        if ok(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never matched: {sorted(samples.items())}")
        time.sleep(0.1)


def test_cluster_metrics_from_any_node(pair: tuple[Server, Server]) -> None:
    a, b = pair
    # the histograms count what ends after the first snapshot (no backfill): as
    # Prometheus does, scrape before the tasks run
    scrape_until(b, lambda s: value(s, "falsework_tasks", status="open") == 0)
    alice = a.client("alice")
    done = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/hello", "values": {"name": "m"}}
    ).json()["id"]
    wait_for_status(alice, done, ("completed",))
    slow = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/wait", "values": {"seconds": 60}}
    ).json()["id"]
    wait_for_status(alice, slow, ("processing",))
    alice.post(f"{API}/v2/tasks/{slow}/cancel")
    wait_for_status(alice, slow, ("cancelled",))

    def settled(s: Samples) -> bool:
        run = "falsework_task_duration_seconds_count"
        return (
            value(s, run, template="template:default/hello", status="completed") == 1
            and value(s, run, template="template:default/wait", status="cancelled") == 1
        )

    on_b = scrape_until(b, settled)  # the API-only node serves them too
    _, types = scrape(b)
    assert types["falsework_tasks"] == "gauge"
    assert types["falsework_task_duration_seconds"] == "histogram"
    assert types["falsework_step_duration_seconds"] == "histogram"
    assert value(on_b, "falsework_tasks", status="completed") == 1
    assert value(on_b, "falsework_tasks", status="cancelled") == 1
    assert value(on_b, "falsework_tasks", status="open") == 0
    assert value(on_b, "falsework_oldest_open_task_age_seconds") == 0
    assert value(on_b, "falsework_workers_alive") == 1  # A's worker; B runs none
    assert value(on_b, "falsework_worker_capacity") == 10
    step = "falsework_step_duration_seconds_count"
    assert value(on_b, step, action="debug:log", status="completed") == 2  # hello, wait's first
    assert value(on_b, step, action="debug:wait", status="cancelled") == 1
    # the wait ran a while before its cancel: its run's sum says so
    wait_sum = value(
        on_b,
        "falsework_task_duration_seconds_sum",
        template="template:default/wait",
        status="cancelled",
    )
    assert wait_sum is not None and wait_sum > 0
    inf = value(
        on_b,
        "falsework_task_duration_seconds_bucket",
        template="template:default/hello",
        status="completed",
        le="+Inf",
    )
    assert inf == 1
    # the same numbers on the worker node (one snapshot for the cluster)
    on_a = scrape_until(a, settled)
    for key, v in on_b.items():
        if key[0].startswith(("falsework_task_duration", "falsework_step_duration")):
            assert on_a.get(key) == v, key
    # no label names a user
    assert all(k not in ("user", "created_by", "createdBy") for _, ls in on_b for k, _ in ls)
    assert "alice" not in str(on_b)


def test_a_waiting_task_ages(pair: tuple[Server, Server]) -> None:
    a, b = pair
    admin = b.client("admin")
    (worker,) = admin.get(f"{API}/v2/workers").json()
    assert admin.patch(f"{API}/v2/workers/{worker['id']}", json={"limit": 0}).status_code == 200
    try:
        # the worker takes its new limit at its next heartbeat
        scrape_until(a, lambda s: value(s, "falsework_worker_limit") == 0)
        alice = b.client("alice")
        queued = alice.post(
            f"{API}/v2/tasks",
            json={"templateRef": "template:default/hello", "values": {"name": "q"}},
        ).json()["id"]
        samples = scrape_until(
            b,
            lambda s: (
                (value(s, "falsework_oldest_open_task_age_seconds") or 0) > 0.3
                and value(s, "falsework_worker_capacity") == 0
            ),
        )
        assert value(samples, "falsework_tasks", status="open") == 1
        assert value(samples, "falsework_workers_alive") == 1
    finally:
        admin.patch(f"{API}/v2/workers/{worker['id']}", json={"limit": 10})
    wait_for_status(alice, queued, ("completed",))
