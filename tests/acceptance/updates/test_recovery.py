"""An update task whose worker is killed (SIGKILL) in the middle of its push, on
SQLite and Postgres: the repository is served over HTTP by git's own
http-backend, whose pre-receive hook holds the push until the test has killed
the worker. Another worker recovers the task and finishes it: the same commit,
exactly one update branch, the task completed on its second attempt."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.githttp import GitHost, serve_git
from support.serve import clean_env
from support.servers import (  # the fixtures of real servers, one per dialect
    FALSEWORK,
    SECRET_KEY,
    ServerFactory,
    auth_config,
    module_database,
    pg_database,
    servers,
    wait_for_status,
)
from support.updates import build_template_repo, falsework, git

__all__ = ["module_database", "pg_database", "servers"]

HOOK = """#!/bin/sh
# holds the first push until the test has killed the worker, then lets it land
if [ ! -e "{marker}" ]; then
  touch "{marker}"
  i=0
  while [ ! -e "{release}" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
fi
exit 0
"""


@pytest.fixture
def git_host(tmp_path: Path) -> Iterator[GitHost]:
    (tmp_path / "served").mkdir()
    host = serve_git(tmp_path / "served")
    yield host
    host.close()


def worker(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / f"worker-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(
        [str(FALSEWORK), "worker", "--concurrency", "4"],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_worker_killed_mid_push_leaves_one_branch(
    tmp_path: Path, module_database: str, servers: ServerFactory, git_host: GitHost
) -> None:
    templates = build_template_repo(tmp_path / "templates")
    templates.checkout("v1")
    made = tmp_path / "remotes" / "svc.git"
    done = falsework(
        "run", str(templates.folder), "--set", "name=svc", "--set", f"remote={made}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    served = git_host.root / "svc.git"
    git("clone", "-q", "--bare", str(made), str(served), cwd=tmp_path)
    git("fetch", "-q", str(made), "+refs/heads/*:refs/heads/*", cwd=served)
    marker, release = tmp_path / "push-started", tmp_path / "push-release"
    hook = served / "hooks" / "pre-receive"
    hook.write_text(HOOK.format(marker=marker, release=release))
    hook.chmod(0o755)

    timings = {
        "FALSEWORK_TEMPLATES": str(templates.root),
        "FALSEWORK_GIT_ALLOW_HTTP": "true",
        "FALSEWORK_HEARTBEAT_INTERVAL": "0.2",
        "FALSEWORK_STALE_TIMEOUT": "2",
        "FALSEWORK_POLL_INTERVAL": "0.2",
        "FALSEWORK_MAX_POLL_INTERVAL": "0.5",
    }
    config = {**auth_config(), "egress": {"allow": ["127.0.0.0/8"]}}
    server = servers(module_database, config=config, concurrency=0, env=timings)
    env = clean_env(keep=("_TEST_DATABASE_URL",)) | timings
    env |= {
        "FALSEWORK_DATABASE_URL": module_database,
        "FALSEWORK_DATA_DIR": str(tmp_path / "worker-data"),
        "FALSEWORK_SECRET_KEY": SECRET_KEY,
        "FALSEWORK_CONFIG": str(next(server.log.parent.glob("falsework.yaml"))),
    }
    first = worker(env, tmp_path)
    admin = server.client("admin")
    remote = f"{git_host.url}/svc.git"
    started = admin.post(
        "/api/falsework/v1/scaffolds/updates",
        json={"repositories": [{"remoteUrl": remote}], "to": "v2"},
    )
    assert started.status_code == 201, started.text
    task_id = started.json()["tasks"][0]["id"]
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the push never started"
        assert first.poll() is None, "the worker exited"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)  # mid-push: the hook holds it
    first.wait(10)
    release.touch()  # the orphaned push may now land, as a remote may complete it

    second = worker(env, tmp_path)
    try:
        task = wait_for_status(admin, task_id, ("completed", "failed"), timeout=90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert task["status"] == "completed", task
    events = admin.get(f"/api/scaffolder/v2/tasks/{task_id}/events").json()
    assert any(e["type"] == "recovered" for e in events), [e["type"] for e in events]
    output = events[-1]["body"]["output"]["update"]
    branches = git("branch", "--format=%(refname:short)", cwd=served).split()
    assert sorted(branches) == ["falsework/pristine", "falsework/update/service-v2", "main"]
    tip = git("rev-parse", "falsework/update/service-v2", cwd=served).strip()
    assert output["commit"] == tip
    # one update commit on top of main, whatever the runs
    assert git("rev-list", "--count", "main..falsework/update/service-v2", cwd=served) == "1\n"
