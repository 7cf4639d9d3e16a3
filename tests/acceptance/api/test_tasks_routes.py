"""Task routes through a real server: create, read, list, cancel, retry, events, SSE."""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import Server, sse_messages, wait_for_status

API = "/api/scaffolder"
pytestmark = pytest.mark.slow


def create(client: httpx.Client, template: str, values: dict[str, object], **kw: object) -> str:
    response = client.post(
        f"{API}/v2/tasks",
        json={"templateRef": f"template:default/{template}", "values": values, **kw},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id"}
    return str(body["id"])


def test_create_runs_and_reads_back_in_backstage_shape(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "hello", {"name": "world"})
    task = wait_for_status(alice, task_id, ("completed", "failed"))
    assert task["status"] == "completed"
    assert task["id"] == task_id
    assert task["createdBy"] == "user:default/alice"
    assert task["spec"]["parameters"] == {"name": "world"}
    assert task["spec"]["user"]["ref"] == "user:default/alice"
    assert task["spec"]["templateInfo"]["entityRef"] == "template:default/hello"
    assert task["createdAt"] and "lastHeartbeatAt" in task
    events = alice.get(f"{API}/v2/tasks/{task_id}/events").json()
    assert events[-1]["type"] == "completion"
    assert events[-1]["body"]["output"] == {
        "text": [{"title": "Greeting", "content": "Hello world"}]
    }
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert {"id", "isTaskRecoverable", "taskId", "body", "type", "createdAt"} <= set(events[0])


def test_invalid_values_answer_400_with_each_field(server: Server) -> None:
    alice = server.client("alice")
    response = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/hello", "values": {"name": 42}}
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["path"] for e in errors] == [["name"]]
    assert errors[0]["property"] == "instance.name"
    missing = alice.post(f"{API}/v2/tasks", json={"templateRef": "template:default/hello"})
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["name"] == "required"


def test_unknown_template_and_task_answer_404_in_backstage_shape(server: Server) -> None:
    alice = server.client("alice")
    response = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/nope", "values": {}}
    )
    assert response.status_code == 404
    body = response.json()
    assert body["error"]["name"] == "NotFoundError"
    assert body["request"] == {"method": "POST", "url": "/v2/tasks"}
    assert body["response"] == {"statusCode": 404}
    missing = "00000000-0000-0000-0000-000000000000"
    for path in ("", "/events", "/eventstream"):
        response = alice.get(f"{API}/v2/tasks/{missing}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["name"] == "NotFoundError"
    assert alice.post(f"{API}/v2/tasks/{missing}/cancel").status_code == 404
    assert alice.post(f"{API}/v2/tasks/{missing}/retry").status_code == 404
    assert alice.get(f"{API}/v2/tasks/not-a-uuid").status_code == 404


def test_malformed_requests_answer_422_in_backstage_shape(server: Server) -> None:
    alice = server.client("alice")
    no_ref = alice.post(f"{API}/v2/tasks", json={"values": {}})
    assert no_ref.status_code == 422
    assert no_ref.json()["error"]["name"] == "InputError"
    assert "templateRef" in no_ref.json()["error"]["message"]
    assert no_ref.json()["response"] == {"statusCode": 422}
    not_json = alice.post(
        f"{API}/v2/tasks", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    bad_query = alice.get(f"{API}/v2/tasks", params={"limit": "many"})
    assert bad_query.status_code == 422


def test_bodies_over_10_mb_answer_413(server: Server) -> None:
    alice = server.client("alice")
    big = {"templateRef": "template:default/hello", "values": {"name": "x" * (10 * 1024 * 1024)}}
    response = alice.post(f"{API}/v2/tasks", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["name"] == "PayloadTooLargeError"

    def chunks() -> object:
        yield b'{"templateRef": "template:default/hello", "values": {"name": "'
        for _ in range(11):
            yield b"y" * (1024 * 1024)
        yield b'"}}'

    streamed = alice.post(
        f"{API}/v2/tasks", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_cancel_a_running_task_then_conflict(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "wait", {"seconds": 30})
    wait_for_status(alice, task_id, ("processing",))
    response = alice.post(f"{API}/v2/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert response.json() == {"status": "cancelled"}
    assert wait_for_status(alice, task_id, ("cancelled", "failed", "completed"))["status"] == (
        "cancelled"
    )
    again = alice.post(f"{API}/v2/tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["name"] == "ConflictError"


def test_retry_a_failed_task_and_conflict_on_a_completed_one(server: Server) -> None:
    alice = server.client("alice")
    failed = create(alice, "wait", {"seconds": "not-a-number"})
    assert wait_for_status(alice, failed, ("completed", "failed"))["status"] == "failed"
    response = alice.post(f"{API}/v2/tasks/{failed}/retry")
    assert response.status_code == 201
    assert set(response.json()) == {"id"}
    done = create(alice, "hello", {"name": "x"})
    wait_for_status(alice, done, ("completed",))
    conflict = alice.post(f"{API}/v2/tasks/{done}/retry")
    assert conflict.status_code == 409


def test_events_after_and_long_poll(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "hello", {"name": "events"})
    wait_for_status(alice, task_id, ("completed",))
    events = alice.get(f"{API}/v2/tasks/{task_id}/events").json()
    first = events[0]["id"]
    after = alice.get(f"{API}/v2/tasks/{task_id}/events", params={"after": first}).json()
    assert [e["id"] for e in after] == [e["id"] for e in events[1:]]
    # after the last event of a finished task: nothing more will come, so [] at once
    last = events[-1]["id"]
    assert alice.get(f"{API}/v2/tasks/{task_id}/events", params={"after": last}).json() == []
    # a running task with nothing new: waits (long_poll_timeout) and answers []
    waiting = create(alice, "wait", {"seconds": 30})
    wait_for_status(alice, waiting, ("processing",))
    seen = alice.get(f"{API}/v2/tasks/{waiting}/events").json()
    tail = alice.get(f"{API}/v2/tasks/{waiting}/events", params={"after": seen[-1]["id"]}).json()
    assert isinstance(tail, list)
    assert all(e["id"] > seen[-1]["id"] for e in tail)
    alice.post(f"{API}/v2/tasks/{waiting}/cancel")


def test_eventstream_frames_orders_and_ends(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "wait", {"seconds": 1})
    response = alice.get(f"{API}/v2/tasks/{task_id}/eventstream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = [m for m in sse_messages(response.text) if "comment" not in m]
    ids = [int(m["id"]) for m in messages]
    assert ids == sorted(set(ids))
    assert messages[-1]["event"] == "completion"
    for message in messages:
        data = json.loads(message["data"])
        assert data["id"] == int(message["id"])
        assert data["type"] == message["event"]
    events = alice.get(f"{API}/v2/tasks/{task_id}/events").json()
    assert [e["id"] for e in events] == ids


def test_eventstream_sends_keepalives_while_idle_and_ends_on_cancel(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "wait", {"seconds": 60})
    lines: list[str] = []
    with alice.stream("GET", f"{API}/v2/tasks/{task_id}/eventstream") as response:
        for line in response.iter_lines():
            lines.append(line)
            if line == ": keep-alive" and lines.count(line) == 1:
                assert alice.post(f"{API}/v2/tasks/{task_id}/cancel").status_code == 200
    events = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")]
    assert ": keep-alive" in lines
    assert events[-1] in ("cancelled", "completion")


def test_eventstream_resumes_after_last_event_id_and_after(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "hello", {"name": "resume"})
    wait_for_status(alice, task_id, ("completed",))
    ids = [e["id"] for e in alice.get(f"{API}/v2/tasks/{task_id}/events").json()]
    resumed = alice.get(
        f"{API}/v2/tasks/{task_id}/eventstream", headers={"Last-Event-ID": str(ids[1])}
    )
    got = [int(m["id"]) for m in sse_messages(resumed.text) if "id" in m]
    assert got == ids[2:]
    by_query = alice.get(f"{API}/v2/tasks/{task_id}/eventstream", params={"after": ids[2]})
    assert [int(m["id"]) for m in sse_messages(by_query.text) if "id" in m] == ids[3:]
    bad = alice.get(f"{API}/v2/tasks/{task_id}/eventstream", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 400


def test_list_filters_paginates_and_counts(server: Server) -> None:
    bob = server.client("bob")
    made = [create(bob, "hello", {"name": f"n{i}"}) for i in range(3)]
    for task_id in made:
        wait_for_status(bob, task_id, ("completed",))
    body = bob.get(f"{API}/v2/tasks", params={"limit": 2, "order": "desc:created_at"}).json()
    assert body["totalTasks"] == 3
    assert len(body["tasks"]) == 2
    rest = bob.get(f"{API}/v2/tasks", params={"limit": 2, "offset": 2}).json()
    assert len(rest["tasks"]) == 1
    listed = {t["id"] for t in body["tasks"]} | {t["id"] for t in rest["tasks"]}
    assert listed == set(made)
    completed = bob.get(f"{API}/v2/tasks", params={"status": "completed"}).json()
    assert completed["totalTasks"] == 3
    none = bob.get(f"{API}/v2/tasks", params={"status": "open"}).json()
    assert none == {"tasks": [], "totalTasks": 0}


def test_a_retried_task_streams_its_new_run_after_the_old_one(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "wait", {"seconds": "not-a-number"})
    wait_for_status(alice, task_id, ("failed",))
    first_run = alice.get(f"{API}/v2/tasks/{task_id}/eventstream")
    first_ids = [int(m["id"]) for m in sse_messages(first_run.text) if "id" in m]
    assert alice.post(f"{API}/v2/tasks/{task_id}/retry").status_code == 201
    second_run = alice.get(
        f"{API}/v2/tasks/{task_id}/eventstream", headers={"Last-Event-ID": str(first_ids[-1])}
    )
    messages = [m for m in sse_messages(second_run.text) if "id" in m]
    assert messages, second_run.text
    assert all(int(m["id"]) > first_ids[-1] for m in messages)
    assert messages[-1]["event"] == "completion"
