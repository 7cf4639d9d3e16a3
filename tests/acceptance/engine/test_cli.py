"""The engine's commands as subprocesses: db upgrade, worker --burst, workers ls/set-limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from falsework.config import Settings
from falsework.engine.migrate import head
from support.engine import open_broker


def cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FALSEWORK_DATABASE_URL": url,
        "FALSEWORK_DATA_DIR": str(tmp_path / "data"),
        "FALSEWORK_TEMPLATES": str(tmp_path),
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("falsework")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )


async def test_db_upgrade_worker_burst_and_workers(database_url: str, tmp_path: Path) -> None:
    up = cli(database_url, tmp_path, "db", "upgrade")
    assert up.returncode == 0 and f"revision {head()}" in up.stdout, up.stderr
    again = cli(database_url, tmp_path, "db", "upgrade")
    assert again.returncode == 0
    settings = Settings(data_dir=tmp_path / "data")
    broker = await open_broker(database_url, settings)
    try:
        task = await broker.create(
            {
                "apiVersion": "scaffolder.backstage.io/v1beta3",
                "steps": [
                    {"id": "log", "name": "Log", "action": "debug:log", "input": {"message": "hi"}}
                ],
                "output": {},
                "parameters": {},
            }
        )
        run = cli(database_url, tmp_path, "worker", "--burst", "--concurrency", "3")
        assert run.returncode == 0, run.stderr
        done = await broker.get(task.id)
        assert done.status == "completed", [e.body for e in await broker.events(task.id)]
        await broker.register_worker("w-test", "box", 42, 7)
        ls = cli(database_url, tmp_path, "workers", "ls")
        assert ls.returncode == 0 and "w-test" in ls.stdout and "box" in ls.stdout
        set_limit = cli(database_url, tmp_path, "workers", "set-limit", "w-test", "3")
        assert set_limit.returncode == 0 and "limit 3" in set_limit.stdout
        assert [w.limit for w in await broker.workers()] == [3]
        missing = cli(database_url, tmp_path, "workers", "set-limit", "nobody", "3")
        assert missing.returncode == 1 and "No worker" in missing.stderr
    finally:
        await broker.close()


async def test_worker_sigterm_releases_and_exits_zero(database_url: str, tmp_path: Path) -> None:
    import asyncio
    import signal

    from support.engine import wait_for

    settings = Settings(data_dir=tmp_path / "data")
    broker = await open_broker(database_url, settings)
    env = {
        **os.environ,
        "FALSEWORK_DATABASE_URL": database_url,
        "FALSEWORK_DATA_DIR": str(tmp_path / "data"),
        "FALSEWORK_TEMPLATES": str(tmp_path),
        "FALSEWORK_SHUTDOWN_GRACE": "0.5",
        "FALSEWORK_POLL_INTERVAL": "0.2",
    }
    proc = _start_worker(env, tmp_path)
    try:
        task = await broker.create(
            {
                "apiVersion": "scaffolder.backstage.io/v1beta3",
                "steps": [
                    {"id": "w", "name": "W", "action": "debug:wait", "input": {"seconds": 60}}
                ],
                "output": {},
                "parameters": {},
            }
        )

        async def started() -> bool:
            return (await broker.get(task.id)).status == "processing"

        await wait_for(started, within=30)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
        released = await broker.get(task.id)
        assert released.status == "open" and released.claimed_by is None
        assert await broker.workers() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await broker.close()


def _start_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    with (cwd / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("falsework")), "worker", "--concurrency", "2"],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_workers_pause_and_resume_from_the_command_line(
    database_url: str, tmp_path: Path
) -> None:
    from falsework.engine.models import AuditQuery

    assert cli(database_url, tmp_path, "db", "upgrade").returncode == 0
    paused = cli(database_url, tmp_path, "workers", "pause", "--reason", "pg upgrade")
    assert paused.returncode == 0 and "paused on every node" in paused.stdout, paused.stderr
    listed = cli(database_url, tmp_path, "workers", "ls")
    assert listed.returncode == 0 and "Claiming is paused" in listed.stderr
    assert "pg upgrade" in listed.stderr
    broker = await open_broker(database_url, Settings(data_dir=tmp_path / "data"))
    try:
        flag = await broker.paused()
        assert flag is not None and flag.detail == {"reason": "pg upgrade"}
        assert flag.set_by is not None and flag.set_by.startswith("cli:")
        resumed = cli(database_url, tmp_path, "workers", "resume")
        assert resumed.returncode == 0 and resumed.stdout.strip() == "Claiming resumed."
        again = cli(database_url, tmp_path, "workers", "resume")
        assert again.stdout.strip() == "Claiming was not paused."
        assert await broker.paused() is None
        audited = await broker.audit_list(AuditQuery(actor=flag.set_by))
        assert [(r.action, r.detail) for r in audited] == [
            ("admin.resume", {}),
            ("admin.pause", {"reason": "pg upgrade"}),
        ]
    finally:
        await broker.close()
