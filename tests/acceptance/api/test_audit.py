"""The audit trail through a real `falsework serve` (SQLite and Postgres): who did
what lands in the `falsework.audit` log stream and in the table behind
`GET /api/falsework/v1/audit`, which only admins may read."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from support.servers import Server, wait_for_status

API = "/api/scaffolder/v2"
AUDIT = "/api/falsework/v1/audit"
ALICE, BOB, ROOT = "user:default/alice", "user:default/bob", "user:default/root"
pytestmark = pytest.mark.slow


def entries(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    answer = admin.get(AUDIT, params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["entries"])


def test_who_did_what_is_recorded_and_queryable(server: Server) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    alice, bob, admin = server.client("alice"), server.client("bob"), server.client("admin")
    made = alice.post(
        f"{API}/tasks",
        json={"templateRef": "template:default/wait", "values": {"seconds": 30}},
    )
    assert made.status_code == 201, made.text
    task = made.json()["id"]
    wait_for_status(alice, task, ("processing",))
    # bob may not touch alice's task, nor run a restricted template, nor read the trail
    assert bob.post(f"{API}/tasks/{task}/cancel").status_code == 403
    hidden = bob.post(
        f"{API}/tasks", json={"templateRef": "template:default/restricted", "values": {}}
    )
    assert hidden.status_code == 404, hidden.text
    assert hidden.json()["error"]["name"] == "NotFoundError"
    assert bob.get(AUDIT).status_code == 403
    # alice cancels and retries her task, then cancels it again; the admin cancels nothing
    assert alice.post(f"{API}/tasks/{task}/cancel").status_code == 200
    wait_for_status(alice, task, ("cancelled",))
    assert alice.post(f"{API}/tasks/{task}/retry").status_code == 201
    assert admin.post(f"{API}/tasks/{task}/cancel").status_code == 200
    wait_for_status(alice, task, ("cancelled",))
    # a body dry-run: refused to alice (no author role), run for the admin
    body = {
        "template": {
            "apiVersion": "scaffolder.backstage.io/v1beta3",
            "kind": "Template",
            "metadata": {"name": "probe"},
            "spec": {"steps": [{"id": "a", "action": "debug:log", "input": {"message": "x"}}]},
        },
        "values": {},
        "directoryContents": [],
    }
    assert alice.post(f"{API}/dry-run", json=body).status_code == 403
    assert admin.post(f"{API}/dry-run", json=body).status_code == 200
    (worker,) = admin.get(f"{API}/workers").json()
    limit = admin.patch(f"{API}/workers/{worker['id']}", json={"limit": 7})
    assert limit.status_code == 200, limit.text
    # an unknown token: the log stream only
    assert (
        server.client().get(f"{API}/tasks", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )

    mine = entries(admin, actor=ALICE)
    acts = [(e["action"], e["target"]) for e in reversed(mine)]
    assert acts == [
        ("task.create", task),
        ("task.cancel", task),
        ("task.retry", task),
        ("authz.denied", "POST /api/scaffolder/v2/dry-run"),
    ]
    assert mine[-1]["detail"] == {"template": "template:default/wait"}
    assert "templates:author" in mine[0]["detail"]["reason"]
    denied = entries(admin, actor=BOB)
    assert [(e["action"], e["target"]) for e in reversed(denied)] == [
        ("authz.denied", f"POST /api/scaffolder/v2/tasks/{task}/cancel"),
        ("authz.denied", "template:default/restricted"),
        ("authz.denied", "GET /api/falsework/v1/audit"),
    ]
    assert denied[1]["detail"] == {"route": "POST /api/scaffolder/v2/tasks"}
    by_admin = [(e["action"], e["target"], e["detail"]) for e in entries(admin, actor=ROOT)]
    assert by_admin[:3] == [
        ("worker.limit", worker["id"], {"limit": 7}),
        ("dryrun.body", "probe", {"files": 0}),
        ("task.cancel", task, {"owner": ALICE}),
    ]
    # filters, paging and time
    assert {e["actor"] for e in entries(admin, action="authz.denied")} == {ALICE, BOB}
    everything = entries(admin, since=started.isoformat())
    assert "anonymous" not in {e["actor"] for e in everything}
    first = admin.get(AUDIT, params={"limit": 3}).json()
    assert len(first["entries"]) == 3 and "next" in first
    rest = entries(admin, before=first["next"], limit=1000)
    assert [e["id"] for e in first["entries"] + rest] == [
        e["id"] for e in entries(admin, limit=1000)
    ]
    for e in everything:
        assert datetime.fromisoformat(e["at"].replace("Z", "+00:00")) >= started
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert entries(admin, since=later) == []
    naive = admin.get(AUDIT, params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 400 and "time zone" in naive.text

    # the same acts on the log stream (even at --log-level warning)
    deadline = time.monotonic() + 10
    while "auth.failed" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log.read_text()
    assert f"falsework.audit: {ALICE} task.create {task} template=template:default/wait" in log
    assert f"falsework.audit: {BOB} authz.denied template:default/restricted" in log
    assert "falsework.audit: anonymous auth.failed GET /api/scaffolder/v2/tasks" in log
