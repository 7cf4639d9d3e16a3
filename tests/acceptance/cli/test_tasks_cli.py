"""`falsework tasks` as a subprocess against a real `falsework serve`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.recorder import recording
from support.serve import clean_env, loopback_client
from support.servers import Server, auth_config, start_server, token_of, wait_for_status
from support.sqlite import copy_database

FALSEWORK = Path(sys.executable).with_name("falsework")
API = "/api/scaffolder"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Server]:
    db = copy_database(sqlite_template, tmp_path_factory.mktemp("db") / "falsework.db")
    started = start_server(db, tmp_path_factory.mktemp("server"), config=auth_config())
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
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(task_id[:8])]
    short, status, template = row.split()[:3]
    assert (short, template) == (task_id[:8], "wait") and status in ("open", "processing")
    assert "alice" in row
    # the short id, or any unique start of an id, works where an id is asked for
    shown = cli(server, "show", task_id[:8])
    assert shown.returncode == 0, shown.stderr
    assert "before" in shown.stdout and "debug:wait" in shown.stdout
    assert task_id in shown.stdout
    cancelled = cli(server, "cancel", task_id[:8])
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout
    wait_for_status(alice, task_id, ("cancelled",))
    followed = cli(server, "logs", task_id, "-f")
    assert followed.returncode == 3
    retried = cli(server, "retry", task_id)
    assert retried.returncode == 0, retried.stderr
    assert "re-opened" in retried.stdout
    alice.post(f"{API}/v2/tasks/{task_id}/cancel")


# Logs, then a request the test's recorder holds until released, then logs: the
# task is running for exactly as long as the test needs.
GATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: gate, title: Gate}
spec:
  owner: group:default/team-a
  type: service
  parameters: [{required: [url], properties: {url: {type: string}}}]
  steps:
    - {id: before, name: Before, action: debug:log, input: {message: starting}}
    - id: gate
      name: Gate
      action: http:request
      input: {method: GET, url: "${{ parameters.url }}/hold"}
    - {id: after, name: After, action: debug:log, input: {message: done}}
"""


def test_logs_follow_resumes_across_a_server_restart(sqlite_url: str, tmp_path: Path) -> None:
    url = sqlite_url
    templates = tmp_path / "templates"
    (templates / "gate").mkdir(parents=True)
    (templates / "gate" / "template.yaml").write_text(GATE, encoding="utf-8")
    config = {**auth_config(), "egress": {"allow": ["127.0.0.0/8"]}}
    with recording() as gate:
        first = start_server(url, tmp_path / "a", config=config, templates=templates)
        port = int(first.url.rsplit(":", 1)[1])
        task_id = create(first.client("alice"), "gate", {"url": gate.url})
        gate.wait_for(1)  # running, held in its request until released
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
            # shutting down (it listens no more) with the task in flight: the drain
            # lets it finish once its request is answered
            first.process.send_signal(signal.SIGTERM)
            with loopback_client(timeout=1.0) as probe:
                while True:
                    try:
                        probe.get(f"{first.url}/healthz")
                    except httpx.ConnectError:
                        break
                    assert time.monotonic() < deadline, "the server kept listening"
                    time.sleep(0.02)
            gate.release()
            assert first.stop() == 0
            second = start_server(
                url, tmp_path / "b", config=config, templates=templates, port=port
            )
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


def test_json_outputs_parse(server: Server) -> None:
    alice = server.client("alice")
    task_id = create(alice, "hello", {"name": "json"})
    wait_for_status(alice, task_id, ("completed",))
    listed = cli(server, "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert task_id in {t["id"] for t in body["tasks"]} and body["totalTasks"] >= 1
    shown = cli(server, "show", task_id, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["task"]["id"] == task_id and detail["task"]["status"] == "completed"
    assert [s["status"] for s in detail["steps"]] == ["completed"] * len(detail["steps"])
    assert detail["error"] is None
    failed = create(alice, "wait", {"seconds": "nope"})
    wait_for_status(alice, failed, ("failed",))
    broken = json.loads(cli(server, "show", failed, "--json").stdout)
    assert broken["task"]["status"] == "failed" and broken["error"]


def test_ls_fits_80_columns_on_a_terminal_and_pipes_stay_plain(server: Server) -> None:
    import pexpect

    alice = server.client("alice")
    for _ in range(2):
        create(alice, "hello", {"name": "x" * 40})
    env = clean_env()
    env["FALSEWORK_TOKEN"] = token_of("alice")
    env["TERM"] = "xterm-256color"
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(
        str(FALSEWORK),
        ["tasks", "ls", "--server", server.url],
        env=env,
        encoding="utf-8",
        dimensions=(40, 80),
        timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", str(child.before))
    lines = [line for line in screen.splitlines() if line.strip()]
    assert lines[0].split()[:2] == ["ID", "STATUS"]
    assert all(len(line) <= 80 for line in lines), lines
    assert "\x1b[" in str(child.before)  # a terminal gets colour
    piped = cli(server, "ls")
    assert "\x1b[" not in piped.stdout + piped.stderr
    assert all(line == line.rstrip() for line in piped.stdout.splitlines())


def test_logs_to_a_file_have_no_escape_codes(server: Server, tmp_path: Path) -> None:
    alice = server.client("alice")
    task_id = create(alice, "wait", {"seconds": 1})
    target = tmp_path / "log.txt"
    env = clean_env()
    env["FALSEWORK_TOKEN"] = token_of("alice")
    env["COLUMNS"] = "30"
    with target.open("w") as sink:
        code = subprocess.run(
            [str(FALSEWORK), "tasks", "logs", task_id, "-f", "--server", server.url],
            stdout=sink,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        ).returncode
    assert code == 0
    text = target.read_text()
    assert "\x1b[" not in text and "\r" not in text
    # a log line longer than COLUMNS stays one line
    (line,) = [line for line in text.splitlines() if "Beginning step" in line and "Before" in line]
    assert len(line) > 30
    assert f"task {task_id}: completed" in text


def test_workers_ls_json(sqlite_url: str, tmp_path: Path) -> None:
    url = sqlite_url
    started = start_server(url, tmp_path / "w", config=auth_config(), concurrency=7)
    try:
        env = {**clean_env(), "FALSEWORK_DATABASE_URL": url, "FALSEWORK_DATA_DIR": str(tmp_path)}
        listed = subprocess.run(
            [str(FALSEWORK), "workers", "ls", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        (worker,) = json.loads(listed.stdout)
        assert worker["limit"] == 7 and worker["pid"] == started.process.pid
        table = subprocess.run(
            [str(FALSEWORK), "workers", "ls"], capture_output=True, text=True, env=env, timeout=60
        )
        assert table.stdout.split()[:6] == ["ID", "HOST", "PID", "LIMIT", "RUNNING", "HEARTBEAT"]
        assert worker["id"] in table.stdout and "\x1b[" not in table.stdout
    finally:
        assert started.stop() == 0
