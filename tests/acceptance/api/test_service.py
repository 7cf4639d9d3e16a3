"""Service routes through a real server: templates, actions, workers, dry-run, health,
metrics and the OpenAPI document."""

from __future__ import annotations

import base64
import time

import pytest

from .conftest import Server, wait_for_status

API = "/api/scaffolder"
pytestmark = pytest.mark.slow


def test_health_and_readiness(server: Server) -> None:
    client = server.client()
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "worker": "ok"}}


def test_metrics_expose_the_documented_names(server: Server) -> None:
    alice = server.client("alice")
    created = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/hello", "values": {"name": "m"}}
    )
    wait_for_status(alice, created.json()["id"], ("completed",))
    text = server.client().get("/metrics").text
    for name in (
        "falsework_tasks_created_total",
        "falsework_tasks_claimed_total",
        'falsework_tasks_completed_total{status="completed"}',
        "falsework_worker_running",
        "falsework_worker_limit",
        "falsework_claim_latency_seconds_bucket",
        'falsework_worker_step_duration_seconds_count{action="debug:log"}',
        "falsework_eventstream_clients",
    ):
        assert name in text, name
    values = {
        line.split()[0]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("falsework_") and " " in line
    }
    assert values["falsework_tasks_created_total"] >= 1
    assert values["falsework_tasks_claimed_total"] >= 1
    assert values["falsework_claim_latency_seconds_count"] >= 1
    assert values['falsework_worker_step_duration_seconds_count{action="debug:log"}'] >= 1


def test_templates_gallery_and_parameter_schema(server: Server) -> None:
    alice = server.client("alice")
    gallery = {t["ref"]: t for t in alice.get(f"{API}/v2/templates").json()}
    assert gallery["template:default/hello"] == {
        "ref": "template:default/hello",
        "name": "hello",
        "namespace": "default",
        "title": "Hello",
        "description": "One debug:log step.",
        "tags": ["test"],
        "owner": "group:default/team-a",
        "type": "service",
    }
    schema = alice.get(f"{API}/v2/templates/default/template/hello/parameter-schema").json()
    assert schema["title"] == "Hello"
    assert schema["steps"][0]["title"] == "Input"
    assert schema["steps"][0]["schema"]["required"] == ["name"]
    assert "secretsSchema" not in schema
    with_secrets = alice.get(f"{API}/v2/templates/default/template/secret/parameter-schema")
    assert with_secrets.json()["secretsSchema"]["properties"]["password"]["title"] == "Password"
    missing = alice.get(f"{API}/v2/templates/default/template/nope/parameter-schema")
    assert missing.status_code == 404
    assert missing.json()["error"]["name"] == "NotFoundError"


def test_actions_list_their_schemas(server: Server) -> None:
    actions = {a["id"]: a for a in server.client("bob").get(f"{API}/v2/actions").json()}
    log = actions["debug:log"]
    assert set(log) == {"id", "description", "examples", "schema", "supportsDryRun"}
    assert "properties" in log["schema"]["input"]
    assert all(set(e) == {"description", "example"} for e in log["examples"])


def test_workers_list_and_admin_only_limit(server: Server) -> None:
    admin, alice = server.client("admin"), server.client("alice")
    # host names and pids are for admins (and the workers:read role) only
    hidden = alice.get(f"{API}/v2/workers")
    assert hidden.status_code == 403
    assert "workers:read" in hidden.json()["error"]["message"]
    workers = admin.get(f"{API}/v2/workers").json()
    assert len(workers) >= 1
    worker = workers[0]
    assert worker["limit"] == 20
    assert {"id", "limit", "running", "heartbeatAt"} <= set(worker)
    refused = alice.patch(f"{API}/v2/workers/{worker['id']}", json={"limit": 5})
    assert refused.status_code == 403
    changed = admin.patch(f"{API}/v2/workers/{worker['id']}", json={"limit": 7})
    assert changed.status_code == 200
    assert changed.json()["limit"] == 7
    metrics = server.client().get("/metrics").text
    assert "falsework_worker_limit 7.0" in metrics
    restored = admin.patch(f"{API}/v2/workers/{worker['id']}", json={"limit": 20})
    assert restored.json()["limit"] == 20
    assert admin.patch(f"{API}/v2/workers/nobody", json={"limit": 1}).status_code == 404
    assert admin.patch(f"{API}/v2/workers/{worker['id']}", json={"limit": -1}).status_code == 422


DRY_TEMPLATE = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "kind": "Template",
    "metadata": {"name": "dry", "title": "Dry"},
    "spec": {
        "parameters": [{"properties": {"name": {"type": "string"}}}],
        "steps": [
            {
                "id": "fetch",
                "name": "Fetch",
                "action": "fetch:template",
                "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}"}},
            }
        ],
        "output": {"text": [{"title": "Name", "content": "${{ parameters.name }}"}]},
    },
}


def test_dry_run_renders_files_and_writes_nothing(server: Server) -> None:
    author = server.client("admin")  # a template body needs the templates:author role
    before = author.get(f"{API}/v2/tasks").json()["totalTasks"]
    readme = base64.b64encode(b"# ${{ values.name }}\n").decode()
    response = author.post(
        f"{API}/v2/dry-run",
        json={
            "template": DRY_TEMPLATE,
            "values": {"name": "dry-svc"},
            "directoryContents": [{"path": "skeleton/README.md", "base64Content": readme}],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"log", "directoryContents", "output", "steps"} <= set(body)
    assert body.get("error") is None
    files = {f["path"]: base64.b64decode(f["base64Content"]) for f in body["directoryContents"]}
    assert files["README.md"] == b"# dry-svc\n"
    assert body["output"] == {"text": [{"title": "Name", "content": "dry-svc"}]}
    assert author.get(f"{API}/v2/tasks").json()["totalTasks"] == before


def test_dry_run_of_a_failing_step_answers_as_backstage_with_its_log(server: Server) -> None:
    broken = {**DRY_TEMPLATE, "spec": {**DRY_TEMPLATE["spec"]}}
    broken["spec"]["steps"] = [
        {"id": "wait", "name": "Wait", "action": "debug:wait", "input": {"seconds": "x"}}
    ]
    response = server.client("admin").post(
        f"{API}/v2/dry-run", json={"template": broken, "values": {}}
    )
    assert response.status_code == 400, response.text  # input the action refuses
    body = response.json()
    assert body["error"]["name"] == "InputError"
    assert body["response"] == {"statusCode": 400}
    assert body["steps"][0]["id"] == "wait"
    assert body["steps"][0]["status"] == "failed"
    assert "InputError: Invalid input to step wait" in str(body["log"])


def test_openapi_document_lists_every_route(server: Server) -> None:
    document = server.client().get(f"{API}/openapi.json").json()
    paths = document["paths"]
    expected = {
        f"{API}/v2/tasks": {"get", "post"},
        f"{API}/v2/tasks/{{taskId}}": {"get"},
        f"{API}/v2/tasks/{{taskId}}/cancel": {"post"},
        f"{API}/v2/tasks/{{taskId}}/retry": {"post"},
        f"{API}/v2/tasks/{{taskId}}/events": {"get"},
        f"{API}/v2/tasks/{{taskId}}/eventstream": {"get"},
        f"{API}/v2/templates": {"get"},
        f"{API}/v2/templates/{{namespace}}/{{kind}}/{{name}}/parameter-schema": {"get"},
        f"{API}/v2/actions": {"get"},
        f"{API}/v2/dry-run": {"post"},
        f"{API}/v2/workers": {"get"},
        f"{API}/v2/workers/{{workerId}}": {"patch"},
        f"{API}/v2/me": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    create = paths[f"{API}/v2/tasks"]["post"]["responses"]
    # a template the caller may not run answers 404, like an unknown one
    assert {"201", "400", "401", "404", "413", "422", "429"} <= set(create)
    dry_run = paths[f"{API}/v2/dry-run"]["post"]
    assert {"200", "400", "401", "403", "404", "422", "429"} <= set(dry_run["responses"])
    assert "templateRef" in str(document["components"]["schemas"]["DryRunRequest"])
    assert "text/event-stream" in str(paths[f"{API}/v2/tasks/{{taskId}}/eventstream"])


def test_heartbeat_is_visible_on_a_running_task(server: Server) -> None:
    alice = server.client("alice")
    task_id = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/wait", "values": {"seconds": 30}}
    ).json()["id"]
    task = wait_for_status(alice, task_id, ("processing",))
    claimed_at = task["lastHeartbeatAt"]  # set by the claim itself
    assert claimed_at
    # a heartbeat (every 2 s by default) moves it on while the task runs
    deadline = time.monotonic() + 10
    while task["lastHeartbeatAt"] == claimed_at and time.monotonic() < deadline:
        time.sleep(0.2)
        task = alice.get(f"{API}/v2/tasks/{task_id}").json()
    assert task["lastHeartbeatAt"] > claimed_at
    assert task["status"] == "processing"
    alice.post(f"{API}/v2/tasks/{task_id}/cancel")


def test_the_page_is_served_beside_the_api_without_a_token(server: Server) -> None:
    client = server.client()
    assert client.get("/").status_code == 307
    page = client.get("/create")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
