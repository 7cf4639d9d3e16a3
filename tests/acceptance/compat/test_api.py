"""Each compatibility case through a real server's `POST /api/scaffolder/v2/dry-run`,
as a Backstage client sends it: the same status as the real Backstage, the same
log, files and output; a failing step with Backstage's status and error body, and
also (Falsework's addition) the log and files so far."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from falsework.runner.dry_run import write_files
from support.compat.oracle_cases import (
    HERE,
    Case,
    case_names,
    normalise,
    real_run_names,
    without_known_differences,
)
from support.servers import Server, ServerFactory, auth_config, wait_for_status

API = "/api/scaffolder/v2"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Server:
    # the oracle's scaffolder.defaultEnvironment, so the environment case compares;
    # and every case as a catalog template, for real runs
    config = {**auth_config(), **yaml.safe_load((HERE / "oracle-config.yaml").read_text())}
    templates = tmp_path_factory.mktemp("templates")
    for name in case_names():
        case = Case.load(name)
        write_files(templates / name, case.directory_contents())
        (templates / name / "template.yaml").write_text(yaml.safe_dump(case.template))
    return servers(None, config=config, env={"FALSEWORK_TEMPLATES": str(templates)})


@pytest.mark.parametrize("name", case_names())
def test_the_api_answers_as_backstage(server: Server, name: str) -> None:
    case = Case.load(name)
    status, recorded = case.recorded()
    response = server.client("admin").post(f"{API}/dry-run", json=case.request())
    body: dict[str, Any] = response.json()
    assert response.status_code == status, body
    expected, got = normalise(status, recorded), normalise(response.status_code, body)
    if status == 200:
        expected["log"] = without_known_differences(expected["log"])
        got["log"] = without_known_differences(got["log"])
        assert got == expected
        return
    # Backstage's error body...
    assert got == expected  # the status and the error's name
    assert body["request"] == {"method": "POST", "url": "/v2/dry-run"}
    assert body["response"] == {"statusCode": status}
    assert body["error"]["message"]
    # ...and what Falsework adds: the run so far
    assert {"log", "directoryContents", "output", "steps"} <= set(body)
    failed = [s for s in body["steps"] if s["status"] == "failed"]
    assert len(failed) == 1
    messages = [entry["body"]["message"] for entry in body["log"]]
    assert any(body["error"]["message"] in m for m in messages)


DRY_RUN_ONLY = (" in dry-run mode with inputs ", " does not support dry-run")  # a dry run's only


@pytest.mark.parametrize("name", real_run_names())
def test_a_task_runs_as_backstage_dry_ran_it(server: Server, name: str) -> None:
    """The case as a task of the catalog, run by the server's worker: its events
    and output are what the real Backstage's dry run showed (its steps all can
    dry-run, so a real run does the same), but for the dry-run-only lines."""
    case = Case.load(name)
    expected = normalise(*case.recorded())
    client = server.client("admin")
    ref = f"template:default/{case.template['metadata']['name']}"
    created = client.post(f"{API}/tasks", json={"templateRef": ref, "values": case.values})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    assert wait_for_status(client, task_id, ("completed", "failed"))["status"] == "completed"
    events = client.get(f"{API}/tasks/{task_id}/events").json()
    completion = [e for e in events if e["type"] == "completion"]
    assert completion[0]["body"]["output"] == expected["output"]
    log = [
        {**e["body"], "message": re.sub(rf"\S*/{task_id}", "<workspace>", e["body"]["message"])}
        for e in events
        if e["type"] == "log"
    ]
    want = [
        entry
        for entry in expected["log"]
        if not any(part in entry["message"] for part in DRY_RUN_ONLY)
    ]
    assert without_known_differences(log) == without_known_differences(want)
