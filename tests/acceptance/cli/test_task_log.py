"""The server's terminal: one line when a task starts and one when it ends (id,
template, user, outcome, duration), through a real `falsework serve`; the task_log
setting turns them off."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from support.serve import clean_env, free_port, stop_process, wait_healthy
from support.servers import FALSEWORK, TEMPLATES, wait_for_status

pytestmark = pytest.mark.slow


def serve(tmp_path: Path, **env: str) -> tuple[str, subprocess.Popen[bytes], Path]:
    port = free_port()
    log = tmp_path / "serve.log"
    environment = {
        **clean_env(),
        "FALSEWORK_DATA_DIR": str(tmp_path / "data"),
        "FALSEWORK_TEMPLATES": str(TEMPLATES),
        **env,
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(FALSEWORK), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log, stop=lambda: stop_process(process, 10))
    return url, process, log


def run_two(url: str) -> tuple[str, str]:
    """A task that completes and one that fails; their ids."""
    ids = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for ref, values in (("hello", {"name": "log"}), ("wait", {"seconds": "nope"})):
            body = {"templateRef": f"template:default/{ref}", "values": values}
            made = client.post("/api/scaffolder/v2/tasks", json=body)
            assert made.status_code == 201, made.text
            ids.append(str(made.json()["id"]))
        wait_for_status(client, ids[0], ("completed",))
        wait_for_status(client, ids[1], ("failed",))
    return ids[0], ids[1]


def test_one_line_per_task_start_and_end(tmp_path: Path) -> None:
    url, process, log = serve(tmp_path)
    try:
        done, failed = run_two(url)
    finally:
        assert stop_process(process, 30) == 0
    text = log.read_text()
    who = "by user:default/guest"
    assert f"INFO falsework.tasks: task {done} started: template:default/hello {who}" in text
    assert re.search(
        rf"INFO falsework.tasks: task {done} completed in \d+\.\ds: template:default/hello {who}\n",
        text,
    ), text
    assert re.search(
        rf"task {failed} failed in \d+\.\ds: template:default/wait {who} \(\w+: .+\)\n", text
    ), text
    assert len(re.findall(rf"task {done} ", text)) == 2


def test_the_setting_turns_them_off(tmp_path: Path) -> None:
    url, process, log = serve(tmp_path, FALSEWORK_TASK_LOG="false")
    try:
        run_two(url)
    finally:
        assert stop_process(process, 30) == 0
    assert "falsework.tasks" not in log.read_text()
