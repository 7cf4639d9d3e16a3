"""Red team, per-user caps (issue 8, item 8): the open-task limit cannot be raced.

A plain user fires 30 creates at once at a real ``falsework serve`` with
``max_open_tasks_per_user: 3`` (and no worker, so nothing finishes): exactly 3
tasks exist afterwards, the other 27 were refused with 429. On the code before
this test the limit was a count followed by an insert, so concurrent requests
all saw room and all succeeded. Then the retry of a cancelled task counts like
a create, and another user is not affected.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from support.servers import Server, ServerFactory, auth_config

API = "/api/scaffolder"
BODY = {"templateRef": "template:default/hello", "values": {"name": "race"}}
CAP = 3


@pytest.fixture(scope="module")
def capped(module_database: str, servers: ServerFactory) -> Server:
    config: dict[str, Any] = {**auth_config(), "max_open_tasks_per_user": CAP}
    return servers(module_database, config=config, concurrency=0)


def _race(server: Server, who: str, n: int) -> list[httpx.Response]:
    clients = [server.client(who) for _ in range(n)]
    for client in clients:  # connections open before the race starts
        assert client.get(f"{API}/v2/me").status_code == 200
    start = threading.Barrier(n)

    def create(client: httpx.Client) -> httpx.Response:
        start.wait()
        return client.post(f"{API}/v2/tasks", json=BODY)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(create, clients))


def test_thirty_concurrent_creates_yield_exactly_the_cap(capped: Server) -> None:
    answers = _race(capped, "alice", 30)
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * CAP + [429] * (30 - CAP), [r.text for r in answers]
    for refused in (r for r in answers if r.status_code == 429):
        error = refused.json()["error"]
        assert error["name"] == "TooManyRequestsError"
        assert f"the limit is {CAP}" in error["message"]
        assert "user:default/alice" in error["message"]
    alice = capped.client("alice")
    listed = alice.get(f"{API}/v2/tasks", params={"status": "open"}).json()
    assert listed["totalTasks"] == CAP
    assert sorted(t["id"] for t in listed["tasks"]) == sorted(
        r.json()["id"] for r in answers if r.status_code == 201
    )
    # bob has a cap of his own
    assert capped.client("bob").post(f"{API}/v2/tasks", json=BODY).status_code == 201


def test_a_retry_counts_like_a_create(capped: Server) -> None:
    alice = capped.client("alice")
    open_ids = [
        t["id"] for t in alice.get(f"{API}/v2/tasks", params={"status": "open"}).json()["tasks"]
    ]
    assert len(open_ids) == CAP
    assert alice.post(f"{API}/v2/tasks/{open_ids[0]}/cancel").status_code == 200
    # room for one: a create takes it, and then the cancelled task cannot be re-opened
    assert alice.post(f"{API}/v2/tasks", json=BODY).status_code == 201
    retried = alice.post(f"{API}/v2/tasks/{open_ids[0]}/retry")
    assert retried.status_code == 429, retried.text
    assert retried.json()["error"]["name"] == "TooManyRequestsError"
    assert alice.get(f"{API}/v2/tasks/{open_ids[0]}").json()["status"] == "cancelled"
    # concurrent retries of cancelled tasks never go past the cap either
    for task_id in open_ids[1:]:
        assert alice.post(f"{API}/v2/tasks/{task_id}/cancel").status_code == 200
    cancelled = [
        t["id"]
        for t in alice.get(f"{API}/v2/tasks", params={"status": "cancelled"}).json()["tasks"]
    ]
    clients = [capped.client("alice") for _ in cancelled]
    start = threading.Barrier(len(cancelled))

    def retry(pair: tuple[httpx.Client, str]) -> int:
        start.wait()
        return pair[0].post(f"{API}/v2/tasks/{pair[1]}/retry").status_code

    with ThreadPoolExecutor(len(cancelled)) as pool:
        codes = list(pool.map(retry, zip(clients, cancelled, strict=True)))
    assert codes.count(201) == CAP - 1  # one slot is held by the create above
    listed = alice.get(f"{API}/v2/tasks", params={"status": "open"}).json()
    assert listed["totalTasks"] == CAP
