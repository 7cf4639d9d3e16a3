"""Each compatibility case through a real server's `POST /api/scaffolder/v2/dry-run`,
as a Backstage client sends it: the same status as the real Backstage, the same
log, files and output; a failing step with Backstage's status and error body, and
also (Falsework's addition) the log and files so far."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from compat.oracle_cases import (
    HERE,
    Case,
    case_names,
    normalise,
    without_known_differences,
)
from support.servers import Server, ServerFactory, auth_config

API = "/api/scaffolder/v2"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Server:
    # the oracle's scaffolder.defaultEnvironment, so the environment case compares
    config = {**auth_config(), **yaml.safe_load((HERE / "oracle-config.yaml").read_text())}
    database = f"sqlite:///{tmp_path_factory.mktemp('db') / 'falsework.db'}"
    return servers(database, config=config)


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
