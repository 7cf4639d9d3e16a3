"""The engine's commands as subprocesses: db upgrade, worker --burst, workers ls/set-limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from falsework.config import Settings
from falsework.engine import Broker


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
    assert up.returncode == 0 and "revision 0001" in up.stdout, up.stderr
    again = cli(database_url, tmp_path, "db", "upgrade")
    assert again.returncode == 0
    settings = Settings(data_dir=tmp_path / "data")
    broker = await Broker.open(database_url, settings)
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
        await broker.store.worker_register("w-test", "box", 42, 7)
        ls = cli(database_url, tmp_path, "workers", "ls")
        assert ls.returncode == 0 and "w-test" in ls.stdout and "box" in ls.stdout
        set_limit = cli(database_url, tmp_path, "workers", "set-limit", "w-test", "3")
        assert set_limit.returncode == 0 and "limit 3" in set_limit.stdout
        assert [w.limit for w in await broker.workers()] == [3]
        missing = cli(database_url, tmp_path, "workers", "set-limit", "nobody", "3")
        assert missing.returncode == 1 and "No worker" in missing.stderr
    finally:
        await broker.close()
