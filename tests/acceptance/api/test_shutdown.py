"""SIGTERM: event streams end, the running task is drained, the process exits 0."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from support.serve import clean_env

from .conftest import FALSEWORK, start_server, wait_for_status

API = "/api/scaffolder"
pytestmark = pytest.mark.slow


def test_sigterm_ends_streams_drains_the_task_and_exits_0(sqlite_url: str, tmp_path: Path) -> None:
    server = start_server(sqlite_url, tmp_path / "a")
    client = server.client()
    task_id = client.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/wait", "values": {"seconds": 2}}
    ).json()["id"]
    wait_for_status(client, task_id, ("processing",))
    received: list[str] = []
    ended = threading.Event()

    def watch() -> None:
        with httpx.stream(
            "GET", f"{server.url}{API}/v2/tasks/{task_id}/eventstream", timeout=60
        ) as response:
            for line in response.iter_lines():
                received.append(line)
        ended.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    while not any(line.startswith("id:") for line in received):
        assert watcher.is_alive()
        ended.wait(0.05)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    assert ended.wait(10), "the event stream outlived the server"
    # the task ran to its end during the drain: a new server on the same file says so
    again = start_server(sqlite_url, tmp_path / "b")
    try:
        assert (
            wait_for_status(again.client(), task_id, ("completed", "failed", "cancelled"))["status"]
            == "completed"
        )
    finally:
        assert again.stop() == 0


def test_readyz_answers_503_when_the_database_is_gone(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    server = start_server(postgres_url, tmp_path / "a", concurrency=0)
    try:
        assert server.client().get("/readyz").status_code == 200
        name = postgres_url.rsplit("/", 1)[1]
        admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        ready = server.client().get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["checks"]["database"].startswith("unavailable")
        assert server.client().get("/healthz").status_code == 200
        listed = server.client().get("/api/scaffolder/v2/tasks")
        assert listed.status_code == 503, listed.text
        assert listed.json()["error"]["name"] == "DatabaseUnavailableError"
    finally:
        server.process.kill()
        server.process.wait()


def _serve_once(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``falsework serve`` with only ``env`` as its settings; it must not start."""
    return subprocess.run(
        [str(FALSEWORK), "serve", "--port", "1"],
        env={**clean_env(), **env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )


def test_serve_refuses_a_bad_config_or_database_in_one_line(tmp_path: Path) -> None:
    missing = _serve_once(tmp_path, FALSEWORK_CONFIG=str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "nope.yaml" in missing.stderr
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text(
        "auth:\n  tokens:\n    - sha256: ab\n      user: user:default/a\n      amdin: true\n"
    )
    refused = _serve_once(tmp_path, FALSEWORK_CONFIG=str(misspelt))
    assert refused.returncode == 2  # a misspelt key is an error, not an ignored line
    assert "auth.tokens.0.amdin" in refused.stderr
    assert "Traceback" not in refused.stderr
    unreachable = _serve_once(
        tmp_path, FALSEWORK_DATABASE_URL="postgresql://nobody:secret@127.0.0.1:1/x"
    )
    assert unreachable.returncode == 2
    assert "Cannot reach the database" in unreachable.stderr
    assert "secret" not in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
