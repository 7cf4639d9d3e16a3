"""Authentication and authorisation through a real server; secrets never leak."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Server, wait_for_status

API = "/api/scaffolder"
pytestmark = pytest.mark.slow
SECRET = "hunter2-very-secret-value"


def create(client: httpx.Client, template: str, values: dict[str, object], **kw: object) -> str:
    response = client.post(
        f"{API}/v2/tasks",
        json={"templateRef": f"template:default/{template}", "values": values, **kw},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_no_token_or_an_unknown_one_answers_401(server: Server) -> None:
    anonymous = server.client()
    for method, path in [
        ("GET", "/v2/tasks"),
        ("GET", "/v2/templates"),
        ("GET", "/v2/actions"),
        ("GET", "/v2/me"),
        ("POST", "/v2/tasks"),
    ]:
        response = anonymous.request(method, f"{API}{path}", json={})
        assert response.status_code == 401, path
        assert response.json()["error"]["name"] == "AuthenticationError"
        assert response.headers["www-authenticate"] == "Bearer"
    unknown = httpx.get(
        f"{server.url}{API}/v2/tasks", headers={"Authorization": "Bearer not-a-token"}
    )
    assert unknown.status_code == 401
    basic = httpx.get(f"{server.url}{API}/v2/tasks", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401


def test_me_names_the_caller(server: Server) -> None:
    me = server.client("alice").get(f"{API}/v2/me").json()
    assert me == {
        "user": "user:default/alice",
        "groups": ["group:default/team-a"],
        "admin": False,
        "roles": [],
        "localMode": False,
        "authRequired": True,
    }
    assert server.client("admin").get(f"{API}/v2/me").json()["admin"] is True


def test_authz_matrix(server: Server) -> None:
    alice, bob, admin = server.client("alice"), server.client("bob"), server.client("admin")
    # a finished task of alice's: read, events, retry-conflict paths
    done = create(alice, "hello", {"name": "mine"})
    wait_for_status(alice, done, ("completed",))
    for who, client, allowed in (
        ("owner", alice, True),
        ("other", bob, False),
        ("admin", admin, True),
    ):
        expected = 200 if allowed else 403
        assert client.get(f"{API}/v2/tasks/{done}").status_code == expected, who
        assert client.get(f"{API}/v2/tasks/{done}/events").status_code == expected, who
        stream = client.get(f"{API}/v2/tasks/{done}/eventstream")
        assert stream.status_code == expected, who
        # retry of a completed task: allowed callers reach the state check (409)
        retry = client.post(f"{API}/v2/tasks/{done}/retry")
        assert retry.status_code == (409 if allowed else 403), who
    # cancel: other is refused, owner and admin cancel
    for client, expected in ((bob, 403), (alice, 200)):
        running = create(alice, "wait", {"seconds": 30})
        assert client.post(f"{API}/v2/tasks/{running}/cancel").status_code == expected
        if expected == 403:
            assert admin.post(f"{API}/v2/tasks/{running}/cancel").status_code == 200
        wait_for_status(alice, running, ("cancelled",))
    # retry of a cancelled task: owner and admin re-open it, other is refused
    cancelled = create(alice, "wait", {"seconds": 30})
    alice.post(f"{API}/v2/tasks/{cancelled}/cancel")
    wait_for_status(alice, cancelled, ("cancelled",))
    assert bob.post(f"{API}/v2/tasks/{cancelled}/retry").status_code == 403
    assert admin.post(f"{API}/v2/tasks/{cancelled}/retry").status_code == 201
    admin.post(f"{API}/v2/tasks/{cancelled}/cancel")
    wait_for_status(alice, cancelled, ("cancelled",))
    assert alice.post(f"{API}/v2/tasks/{cancelled}/retry").status_code == 201
    alice.post(f"{API}/v2/tasks/{cancelled}/cancel")
    # list: each user their own, admin everything, another user's filter refused
    mine = alice.get(f"{API}/v2/tasks").json()
    assert mine["tasks"] and all(t["createdBy"] == "user:default/alice" for t in mine["tasks"])
    assert all(t["id"] != done for t in bob.get(f"{API}/v2/tasks").json()["tasks"])
    assert bob.get(f"{API}/v2/tasks", params={"createdBy": "user:default/alice"}).status_code == 403
    everyone = admin.get(f"{API}/v2/tasks", params={"createdBy": "user:default/alice"}).json()
    assert everyone["totalTasks"] == mine["totalTasks"]
    assert admin.get(f"{API}/v2/tasks").json()["totalTasks"] >= mine["totalTasks"]


def test_restricted_template_runs_only_for_its_groups(server: Server) -> None:
    alice, bob, admin = server.client("alice"), server.client("bob"), server.client("admin")
    ref = "template:default/restricted"
    body = {"templateRef": ref, "values": {"name": "x"}}
    # to bob the template does not exist: the answers of an unknown one, word for word
    unknown = bob.post(f"{API}/v2/tasks", json={**body, "templateRef": "template:default/nope"})
    refused = bob.post(f"{API}/v2/tasks", json=body)
    assert refused.status_code == unknown.status_code == 404
    assert refused.json()["error"] == {
        "name": "NotFoundError",
        "message": "Template template:default/restricted not found",
    }
    assert unknown.json()["error"]["message"] == "Template template:default/nope not found"
    schema = f"{API}/v2/templates/default/template/restricted/parameter-schema"
    assert bob.get(schema).status_code == 404
    assert bob.get(schema).json()["error"]["name"] == "NotFoundError"
    assert "restricted" not in {t["name"] for t in bob.get(f"{API}/v2/templates").json()}
    assert "restricted" in {t["name"] for t in alice.get(f"{API}/v2/templates").json()}
    created = alice.post(f"{API}/v2/tasks", json=body)
    assert created.status_code == 201
    assert admin.post(f"{API}/v2/tasks", json=body).status_code == 201
    # the identity reaches the template context as user.ref
    task_id = created.json()["id"]
    wait_for_status(alice, task_id, ("completed",))
    messages = [
        e["body"].get("message", "") for e in alice.get(f"{API}/v2/tasks/{task_id}/events").json()
    ]
    assert any("run by user:default/alice" in m for m in messages), messages


def test_secrets_never_appear_in_any_response(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "secret", {"name": "s"}, secrets={"password": SECRET})
    wait_for_status(alice, task_id, ("completed", "failed"))
    responses = [
        alice.get(f"{API}/v2/tasks/{task_id}"),
        alice.get(f"{API}/v2/tasks"),
        alice.get(f"{API}/v2/tasks/{task_id}/events"),
        alice.get(f"{API}/v2/tasks/{task_id}/eventstream"),
        server.client("admin").get(f"{API}/v2/tasks"),
        alice.post(f"{API}/v2/tasks/{task_id}/retry"),
    ]
    for response in responses:
        assert response.status_code < 500
        assert SECRET not in response.text
    # the secret did reach the step: the log shows it redacted, not absent
    events = alice.get(f"{API}/v2/tasks/{task_id}/events").json()
    assert any("the password is" in str(e["body"].get("message", "")) for e in events)
