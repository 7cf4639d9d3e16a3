"""A server in local mode (no tokens, loopback) serving the API only, with a
per-user limit on open tasks."""

from __future__ import annotations

import pytest

from .conftest import Server, ServerFactory

API = "/api/scaffolder"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local(module_database: str, servers: ServerFactory) -> Server:
    return servers(module_database, concurrency=0, env={"FALSEWORK_MAX_OPEN_TASKS_PER_USER": "2"})


def test_local_mode_callers_are_an_admin_guest(local: Server) -> None:
    me = local.client().get(f"{API}/v2/me").json()
    assert me == {
        "user": "user:default/guest",
        "groups": [],
        "admin": True,
        "roles": ["templates:author", "workers:read"],
        "localMode": True,
        "authRequired": False,
    }


def test_api_only_server_is_ready_without_a_worker(local: Server) -> None:
    ready = local.client().get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "worker": "disabled"}


def test_open_task_limit_answers_429(local: Server) -> None:
    client = local.client()
    body = {"templateRef": "template:default/hello", "values": {"name": "x"}}
    first = client.post(f"{API}/v2/tasks", json=body)
    second = client.post(f"{API}/v2/tasks", json=body)
    assert (first.status_code, second.status_code) == (201, 201)
    # nothing runs them (concurrency 0): both stay open, the third is refused
    refused = client.post(f"{API}/v2/tasks", json=body)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["name"] == "TooManyRequestsError"
    assert "limit is 2" in error["message"]
    assert client.get(f"{API}/v2/tasks/{first.json()['id']}").json()["createdBy"] == (
        "user:default/guest"
    )
    client.post(f"{API}/v2/tasks/{first.json()['id']}/cancel")
    assert client.post(f"{API}/v2/tasks", json=body).status_code == 201


def test_idempotency_key_returns_the_same_task(local: Server) -> None:
    client = local.client()
    for task in client.get(f"{API}/v2/tasks", params={"status": "open"}).json()["tasks"]:
        client.post(f"{API}/v2/tasks/{task['id']}/cancel")
    body = {"templateRef": "template:default/hello", "values": {"name": "once"}}
    headers = {"Idempotency-Key": "create-once-1"}
    first = client.post(f"{API}/v2/tasks", json=body, headers=headers)
    again = client.post(f"{API}/v2/tasks", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    # a key past 200 characters is malformed input, like any other (422)
    long = client.post(f"{API}/v2/tasks", json=body, headers={"Idempotency-Key": "k" * 201})
    assert long.status_code == 422
    assert long.json()["error"] == {
        "name": "InputError",
        "message": "header.idempotency-key: String should have at most 200 characters",
    }
    assert (
        client.post(
            f"{API}/v2/tasks", json=body, headers={"Idempotency-Key": "k" * 200}
        ).status_code
        == 201
    )
