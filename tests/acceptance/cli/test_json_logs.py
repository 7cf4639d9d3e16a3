"""`--log-format json` / FALSEWORK_LOG_FORMAT=json: every line of `falsework serve` and
`falsework worker` is one JSON object, and every line about a task carries its
task_id, step_id, attempt, worker_id, template and user (real processes, one SQLite
database: the API node runs no tasks, the worker runs them)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.serve import clean_env, free_port, stop_process, wait_healthy
from support.servers import FALSEWORK, TEMPLATES, wait_for_status

pytestmark = pytest.mark.slow


def lines(log: Path) -> list[dict[str, Any]]:
    """Every line of ``log`` as JSON (a line that is not JSON fails the test)."""
    parsed = []
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(value, dict), line
        assert {"time", "level", "logger", "message"} <= set(value), line
        parsed.append(value)
    return parsed


def test_serve_and_worker_log_json_with_the_task_fields(tmp_path: Path) -> None:
    env = {
        **clean_env(),
        "FALSEWORK_DATA_DIR": str(tmp_path / "data"),
        "FALSEWORK_TEMPLATES": str(TEMPLATES),
        "FALSEWORK_SECRET_KEY": "q0WZ3v0n1Fv7d9b5Qm1mKc5V4r6Hn3bJ8yq2tF3pG0E=",
    }
    port = free_port()
    api_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    with api_log.open("wb") as sink:
        api = subprocess.Popen(
            [str(FALSEWORK), "serve", "--port", str(port), "--concurrency", "0"],
            cwd=tmp_path,
            env={**env, "FALSEWORK_LOG_FORMAT": "json"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, api, api_log, stop=lambda: stop_process(api, 10))
    with worker_log.open("wb") as sink:
        worker = subprocess.Popen(
            [str(FALSEWORK), "worker", "--log-format", "json"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            ids = {}
            for ref, values in (("hello", {"name": "json"}), ("wait", {"seconds": "nope"})):
                body = {"templateRef": f"template:default/{ref}", "values": values}
                made = client.post("/api/scaffolder/v2/tasks", json=body)
                assert made.status_code == 201, made.text
                ids[ref] = str(made.json()["id"])
            wait_for_status(client, ids["hello"], ("completed",))
            wait_for_status(client, ids["wait"], ("failed",))
            (worker_row,) = client.get("/api/scaffolder/v2/workers").json()
    finally:
        assert stop_process(worker, 30) == 0, worker_log.read_text()
        assert stop_process(api, 30) == 0, api_log.read_text()

    served = lines(api_log)
    assert any(line["logger"].startswith("uvicorn") for line in served), served
    # the audit stream, its fields as fields of their own
    created = [line for line in served if line["logger"] == "falsework.audit"]
    assert [(line["actor"], line["action"], line["target"]) for line in created] == [
        ("user:default/guest", "task.create", tid) for tid in ids.values()
    ]
    assert created[0]["detail"] == {"template": "template:default/hello"}
    worked = lines(worker_log)
    about = {tid: [line for line in worked if line.get("task_id") == tid] for tid in ids.values()}
    hello, failing = about[ids["hello"]], about[ids["wait"]]
    # the start and end lines of each task, with every field of the task
    assert [line["message"].split(" ")[2] for line in hello] == ["started:", "completed"]
    for line in hello + failing:
        assert line["attempt"] == 1
        assert line["worker_id"] == worker_row["id"]
        assert line["user"] == "user:default/guest"
        assert line["logger"] == "falsework.tasks"
    assert {line["template"] for line in hello} == {"template:default/hello"}
    assert {line["template"] for line in failing} == {"template:default/wait"}
    # the line saying the task failed names the step that failed; the start line none
    assert "step_id" not in failing[0]
    assert failing[-1]["message"].split(" ")[2] == "failed"
    assert failing[-1]["step_id"] == "wait"
    # lines about no task carry no task fields
    idle = [line for line in worked if "task_id" not in line]
    assert idle and all("worker_id" not in line for line in idle)


def test_an_unknown_log_format_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(FALSEWORK), "worker", "--log-format", "xml", "--burst"],
        cwd=tmp_path,
        env={**clean_env(), "FALSEWORK_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "log_format" in done.stderr and "Traceback" not in done.stderr
