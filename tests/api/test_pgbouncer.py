"""Falsework behind PgBouncer in session pooling mode, the mode docs/operations.md
asks for: a real `falsework serve` whose every connection (the pool, and the LISTEN
connection) goes through a real PgBouncer runs tasks, is woken by NOTIFY (its poll
interval is set far beyond the test's wait) and streams their events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.pgbouncer import pgbouncer
from support.servers import auth_config, sse_messages, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

API = "/api/scaffolder/v2"


def test_serve_through_pgbouncer_in_session_mode(postgres_url: str, tmp_path: Path) -> None:
    with pgbouncer(postgres_url, pool_mode="session") as bouncer:
        server = start_server(
            bouncer.url(postgres_url),
            tmp_path / "serve",
            config=auth_config(),
            # only a NOTIFY can start a task within the test's time: no poll comes first
            env={"FALSEWORK_POLL_INTERVAL": "120", "FALSEWORK_MAX_POLL_INTERVAL": "120"},
            concurrency=5,
        )
        try:
            client = server.client("alice")
            ids = [
                client.post(
                    f"{API}/tasks",
                    json={"templateRef": "template:default/wait", "values": {"seconds": 0.2}},
                ).json()["id"]
                for _ in range(3)
            ]
            for task_id in ids:
                stream = client.get(f"{API}/tasks/{task_id}/eventstream", timeout=60)
                messages = [m for m in sse_messages(stream.text) if "id" in m]
                assert messages[-1]["event"] == "completion", messages
                assert "completed" in json.loads(messages[-1]["data"])["body"]["message"]
                assert client.get(f"{API}/tasks/{task_id}").json()["status"] == "completed"
        finally:
            assert server.stop() == 0
