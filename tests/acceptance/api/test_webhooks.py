"""Completion webhooks from a real `falsework serve` (API + worker, SQLite and
Postgres): a task created through the API is announced, signed, to a loopback
receiver; its owner sees the delivery's result among the task's events, never the
delivery task itself; an admin does."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from support.receiver import SECRET, Receiver, receiving
from support.servers import Server, ServerFactory, auth_config, wait_for_status

API = "/api/scaffolder/v2"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture(scope="module")
def hooked(module_database: str, servers: ServerFactory, receiver: Receiver) -> Server:
    config = {
        **auth_config(),
        "egress": {"allow": ["127.0.0.1"]},
        "webhooks": [
            {
                "url": receiver.url,
                "secret_env": "HOOK_SECRET",
                "events": ["completed"],
                "templates": ["hello"],
                "name": "chat",
            }
        ],
    }
    return servers(
        module_database,
        config=config,
        env={"HOOK_SECRET": SECRET, "FALSEWORK_JANITOR_INTERVAL": "0.2"},
    )


def test_a_task_made_through_the_api_is_announced(hooked: Server, receiver: Receiver) -> None:
    alice, admin = hooked.client("alice"), hooked.client("admin")
    made = alice.post(
        f"{API}/tasks", json={"templateRef": "template:default/hello", "values": {"name": "Ann"}}
    )
    assert made.status_code == 201, made.text
    task = made.json()["id"]
    wait_for_status(alice, task, ("completed",))
    # another template is not announced to this receiver
    other = alice.post(
        f"{API}/tasks", json={"templateRef": "template:default/wait", "values": {"seconds": 0}}
    )
    wait_for_status(alice, other.json()["id"], ("completed", "failed"))
    deadline = time.monotonic() + 20
    while True:
        events = alice.get(f"{API}/tasks/{task}/events").json()
        hooks = [e["body"]["webhook"] for e in events if "webhook" in e["body"]]
        if hooks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(h["receiver"], h["outcome"], h["httpStatus"]) for h in hooks] == [
        ("chat", "delivered", 204)
    ]
    (got,) = [r for r in receiver.received if r.json["data"]["taskId"] == task]
    assert got.verified and got.by_hand
    assert got.json["type"] == "task.completed"
    assert got.json["data"]["createdBy"] == "user:default/alice"
    assert got.json["data"]["output"]["text"][0]["content"] == "Hello Ann"
    assert all(r.json["data"]["taskId"] != other.json()["id"] for r in receiver.received)
    delivery = hooks[0]["deliveryId"]
    assert delivery == got.id
    # the delivery task is nobody's: its owner-less spec is for admins only
    assert alice.get(f"{API}/tasks/{delivery}").status_code == 403
    # the delivery writes its outcome on the announced task before it finishes itself
    seen = wait_for_status(admin, delivery, ("completed", "failed"))
    assert seen["status"] == "completed" and seen["spec"]["kind"] == "WebhookDelivery"
