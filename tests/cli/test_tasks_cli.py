"""`falsework tasks` as a subprocess against a real `falsework serve`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.serve import clean_env
from support.servers import Server, auth_config, start_server, token_of, wait_for_status

FALSEWORK = Path(sys.executable).with_name("falsework")
API = "/api/scaffolder"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("db") / "falsework.db"
    started = start_server(
        f"sqlite:///{db}", tmp_path_factory.mktemp("server"), config=auth_config()
    )
    yield started
    assert started.stop() == 0


def cli(
    server: Server, *args: str, token: str | None = "alice"
) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env["COLUMNS"] = "200"
    if token:
        env["FALSEWORK_TOKEN"] = token_of(token)
    return subprocess.run(
        [str(FALSEWORK), "tasks", *args, "--server", server.url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def create(client: httpx.Client, template: str, values: dict[str, object]) -> str:
    response = client.post(
        f"{API}/v2/tasks", json={"templateRef": f"template:default/{template}", "values": values}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_logs_follow_streams_steps_and_exits_0_on_completion(server: Server) -> None:
    task_id = create(server.client("alice"), "wait", {"seconds": 1})
    result = cli(server, "logs", task_id, "-f")
    assert result.returncode == 0, result.stderr
    assert "starting" in result.stdout and "done" in result.stdout
    assert "Before" in result.stdout and "Wait" in result.stdout
    assert f"task {task_id}: completed" in result.stdout


def test_logs_exit_code_reflects_failure(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "wait", {"seconds": "nope"})
    following = cli(server, "logs", task_id, "-f")
    assert following.returncode == 1, following.stdout + following.stderr
    wait_for_status(alice, task_id, ("failed",))
    plain = cli(server, "logs", task_id)
    assert plain.returncode == 1
    assert "starting" in plain.stdout


def test_ls_show_cancel_retry(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "wait", {"seconds": 60})
    listed = cli(server, "ls")
    assert listed.returncode == 0, listed.stderr
    assert task_id in listed.stdout
    assert "template:default/wait" in listed.stdout
    shown = cli(server, "show", task_id)
    assert shown.returncode == 0, shown.stderr
    assert "before" in shown.stdout and "debug:wait" in shown.stdout
    cancelled = cli(server, "cancel", task_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout
    wait_for_status(alice, task_id, ("cancelled",))
    followed = cli(server, "logs", task_id, "-f")
    assert followed.returncode == 3
    retried = cli(server, "retry", task_id)
    assert retried.returncode == 0, retried.stderr
    assert "re-opened" in retried.stdout
    alice.post(f"{API}/v2/tasks/{task_id}/cancel")


def test_logs_follow_resumes_across_a_server_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'falsework.db'}"
    first = start_server(url, tmp_path / "a", config=auth_config())
    port = int(first.url.rsplit(":", 1)[1])
    task_id = create(first.client("alice"), "wait", {"seconds": 3})
    wait_for_status(first.client("alice"), task_id, ("processing",))
    env = clean_env()
    env["FALSEWORK_TOKEN"] = token_of("alice")
    follower = subprocess.Popen(
        [str(FALSEWORK), "tasks", "logs", task_id, "-f", "--server", first.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while "falsework_eventstream_clients 1.0" not in first.client().get("/metrics").text:
            assert follower.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert first.stop() == 0  # drains: the task finishes during shutdown
        second = start_server(url, tmp_path / "b", config=auth_config(), port=port)
        out, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, out + err
        assert f"task {task_id}: completed" in out
        assert out.count("Beginning step Before") == 1  # resumed, not replayed
        assert second.stop() == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_errors_exit_4_with_the_server_message(server: Server) -> None:
    missing = cli(server, "show", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 4
    assert "NotFoundError" in missing.stderr
    refused = cli(server, "ls", token=None)
    assert refused.returncode == 4
    assert "AuthenticationError" in refused.stderr
    other = create(server.client("bob"), "hello", {"name": "b"})
    forbidden = cli(server, "cancel", other)
    assert forbidden.returncode == 4
    assert "NotAllowedError" in forbidden.stderr
    unreachable = subprocess.run(
        [str(FALSEWORK), "tasks", "ls", "--server", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 4
    assert "cannot reach" in unreachable.stderr
