"""Who may do what (issue 8, finding 2): a signed-in user runs the templates they may
run; only a template author (the templates:author role) dry-runs a template body;
restricted templates stay invisible on every path, dry-runs and other templates'
fetches included; workers are for admins and the workers:read role.

Attacked through a real `falsework serve` as plain users: alice (team-a), bob
(team-b, the only group allowed to run api-vault), dave (no group); carol is an
author through her group, ops holds workers:read on her token.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from support.servers import (
    TEMPLATES,
    Server,
    ServerFactory,
    auth_config,
    token_of,
    wait_for_status,
)

API = "/api/scaffolder"
SECURITY_TEMPLATES = Path(__file__).resolve().parent / "templates"
VAULT = SECURITY_TEMPLATES / "api-vault"
CANARY = "VAULT-CANARY-7f3a9c"
RATE = 30  # the default of dry_runs_per_minute
pytestmark = pytest.mark.slow


def _token(name: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(token_of(name).encode()).hexdigest(), "user": user, **extra}


def permissions_config() -> dict[str, Any]:
    config = auth_config()
    config["auth"]["tokens"] += [
        _token("carol", "user:default/carol", groups=["group:default/platform"]),
        _token("ops", "user:default/ops", roles=["workers:read"]),
        _token("dave", "user:default/dave"),
    ]
    config["auth"]["roles"] = {"templates:author": ["group:default/platform"]}
    return config


@pytest.fixture(scope="module")
def server(module_database: str, servers: ServerFactory) -> Server:
    return servers(
        module_database,
        config=permissions_config(),
        env={"FALSEWORK_TEMPLATES": f"{TEMPLATES}:{SECURITY_TEMPLATES}"},
    )


BODY = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "kind": "Template",
    "metadata": {"name": "body"},
    "spec": {
        "steps": [{"id": "log", "action": "debug:log", "input": {"message": "from a body"}}],
    },
}


def _fetching(url: str) -> dict[str, Any]:
    step = {"id": "copy", "action": "fetch:plain", "input": {"url": url, "targetPath": "copy"}}
    return {**BODY, "spec": {"steps": [step]}}


def _files(result: dict[str, Any]) -> dict[str, bytes]:
    return {f["path"]: base64.b64decode(f["base64Content"]) for f in result["directoryContents"]}


def test_a_template_body_needs_the_author_role(server: Server) -> None:
    for who in ("alice", "bob"):
        refused = server.client(who).post(
            f"{API}/v2/dry-run", json={"template": BODY, "values": {}, "directoryContents": []}
        )
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["name"] == "NotAllowedError"
        assert "templates:author" in error["message"]
        assert "templateRef" in error["message"]  # what a plain user may do instead


def test_an_author_dry_runs_any_template_body(server: Server) -> None:
    carol = server.client("carol")
    assert carol.get(f"{API}/v2/me").json()["roles"] == ["templates:author"]
    done = carol.post(f"{API}/v2/dry-run", json={"template": BODY, "values": {}})
    assert done.status_code == 200, done.text
    assert "from a body" in str(done.json()["log"])


def test_a_user_dry_runs_a_catalog_template_by_reference(server: Server) -> None:
    alice = server.client("alice")
    done = alice.post(
        f"{API}/v2/dry-run",
        json={"templateRef": "template:default/hello", "values": {"name": "dry"}},
    )
    assert done.status_code == 200, done.text
    assert done.json()["output"] == {"text": [{"title": "Greeting", "content": "Hello dry"}]}
    assert "Hello dry" in str(done.json()["log"])
    # its parameter schema holds, as for a task
    invalid = alice.post(
        f"{API}/v2/dry-run",
        json={"templateRef": "template:default/hello", "values": {"name": "x" * 41}},
    )
    assert invalid.status_code == 400, invalid.text
    assert invalid.json()["errors"][0]["property"] == "instance.name"
    both = alice.post(
        f"{API}/v2/dry-run",
        json={"templateRef": "template:default/hello", "template": BODY, "values": {}},
    )
    assert both.status_code == 400
    assert "not both" in both.json()["error"]["message"]


def test_a_restricted_template_is_invisible_on_every_path(server: Server) -> None:
    alice, bob = server.client("alice"), server.client("bob")
    ref = "template:default/api-vault"
    assert "api-vault" not in {t["name"] for t in alice.get(f"{API}/v2/templates").json()}
    assert "api-vault" in {t["name"] for t in bob.get(f"{API}/v2/templates").json()}
    unknown = alice.post(f"{API}/v2/dry-run", json={"templateRef": "template:default/nope"})
    answers = [
        alice.get(f"{API}/v2/templates/default/template/api-vault/parameter-schema"),
        alice.post(f"{API}/v2/tasks", json={"templateRef": ref, "values": {}}),
        alice.post(f"{API}/v2/dry-run", json={"templateRef": ref, "values": {}}),
    ]
    for answer in answers:
        assert answer.status_code == unknown.status_code == 404, answer.text
        assert answer.json()["error"]["message"] == "Template template:default/api-vault not found"
        assert CANARY not in answer.text
    # bob may: the same dry-run shows him his template's files
    allowed = bob.post(f"{API}/v2/dry-run", json={"templateRef": ref, "values": {}})
    assert allowed.status_code == 200, allowed.text
    assert _files(allowed.json())["vault/vault.txt"].decode().strip() == CANARY


@pytest.mark.parametrize(
    "source", ["../api-vault", str(VAULT), VAULT.as_uri(), f"{VAULT}/vault.txt", "../../"]
)
def test_a_dry_run_never_reads_another_templates_folder(server: Server, source: str) -> None:
    alice = server.client("alice")
    by_ref = alice.post(
        f"{API}/v2/dry-run",
        json={"templateRef": "template:default/api-open", "values": {"source": source}},
    )
    # the step fails: Backstage's status for its error (400 a path refused, 500 else)
    assert by_ref.status_code in (400, 500), by_ref.text
    assert CANARY not in by_ref.text
    assert by_ref.json()["steps"][0]["status"] == "failed"
    # nor does an author's template body, from its own uploaded folder
    body = server.client("carol").post(
        f"{API}/v2/dry-run", json={"template": _fetching(source), "values": {}}
    )
    assert body.status_code in (400, 500), body.text
    assert CANARY not in body.text
    assert body.json()["steps"][0]["status"] == "failed"


def test_a_dry_run_reads_its_own_template_folder(server: Server) -> None:
    done = server.client("alice").post(
        f"{API}/v2/dry-run",
        json={"templateRef": "template:default/api-open", "values": {"source": "./"}},
    )
    assert done.status_code == 200, done.text
    assert "copy/template.yaml" in _files(done.json())
    # the server's folders do not show in its log
    assert str(SECURITY_TEMPLATES) not in done.text
    assert "falsework-dry-run-" not in done.text


def test_workers_are_for_admins_and_the_workers_read_role(server: Server) -> None:
    for who in ("alice", "carol"):
        refused = server.client(who).get(f"{API}/v2/workers")
        assert refused.status_code == 403
        assert "workers:read" in refused.json()["error"]["message"]
    for who in ("ops", "admin"):
        workers = server.client(who).get(f"{API}/v2/workers")
        assert workers.status_code == 200
        assert {"host", "pid"} <= set(workers.json()[0])
    # reading is not changing: the limit stays an admin's
    worker = server.client("ops").get(f"{API}/v2/workers").json()[0]
    patched = server.client("ops").patch(f"{API}/v2/workers/{worker['id']}", json={"limit": 3})
    assert patched.status_code == 403


def test_dry_runs_per_user_are_rate_limited(server: Server) -> None:
    dave, bob = server.client("dave"), server.client("bob")
    body = {"templateRef": "template:default/hello", "values": {"name": "r"}}
    for _ in range(RATE):
        assert dave.post(f"{API}/v2/dry-run", json=body).status_code == 200
    refused = dave.post(f"{API}/v2/dry-run", json=body)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["name"] == "TooManyRequestsError"
    assert f"more than {RATE} dry-runs in a minute" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    # another user's quota is their own
    assert bob.post(f"{API}/v2/dry-run", json=body).status_code == 200


def test_task_json_shows_no_server_path_to_a_user(server: Server) -> None:
    alice, admin = server.client("alice"), server.client("admin")
    created = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/hello", "values": {"name": "p"}}
    )
    task_id = created.json()["id"]
    seen = alice.get(f"{API}/v2/tasks/{task_id}")
    assert seen.json()["spec"]["templateInfo"]["baseUrl"] == "hello/template.yaml"
    assert str(TEMPLATES) not in seen.text
    listed = alice.get(f"{API}/v2/tasks")
    assert str(TEMPLATES) not in listed.text
    # an admin sees where the template lives
    assert (
        admin.get(f"{API}/v2/tasks/{task_id}")
        .json()["spec"]["templateInfo"]["baseUrl"]
        .startswith("file:///")
    )


@pytest.mark.parametrize("source", [str(VAULT), VAULT.as_uri(), f"git+{VAULT}", "../api-vault"])
def test_a_task_never_reads_another_templates_folder(server: Server, source: str) -> None:
    alice = server.client("alice")
    created = alice.post(
        f"{API}/v2/tasks",
        json={"templateRef": "template:default/api-open", "values": {"source": source}},
    )
    assert created.status_code == 201, created.text
    task = wait_for_status(alice, created.json()["id"], ("completed", "failed"))
    assert task["status"] == "failed", task
    events = alice.get(f"{API}/v2/tasks/{task['id']}/events").text
    assert CANARY not in events
    assert "UnsafePathError" in events or "outside" in events or "allowed" in events, events
