"""Bad input and faults: unreachable database, supervised side tasks, bad URLs."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from falsework.config import Settings
from falsework.engine import Broker
from falsework.engine.store import hide_password, normalise_url
from falsework.engine.supervisor import Supervisor
from falsework.errors import DatabaseUnavailableError, InputError


async def test_unreachable_database_is_one_clear_line(settings: Settings) -> None:
    url = "postgresql://fw:hunter2@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseUnavailableError) as info:
        await Broker.open(url, settings)
    message = info.value.message
    assert "\n" not in message and "hunter2" not in message
    assert "postgresql://fw:***@127.0.0.1:1/nowhere" in message


def test_cli_reports_an_unreachable_database_without_a_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FALSEWORK_DATABASE_URL": "postgresql://fw:hunter2@127.0.0.1:1/nowhere",
        "FALSEWORK_DATA_DIR": str(tmp_path),
    }
    for args in (["worker", "--burst"], ["db", "upgrade"], ["workers", "ls"]):
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("falsework")), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert proc.returncode == 1, proc
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "***" in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr


def test_urls_are_normalised_to_async_drivers() -> None:
    assert str(normalise_url("sqlite:///x.db")) == "sqlite+aiosqlite:///x.db"
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(InputError):
        normalise_url("mysql://u@h/db")
    with pytest.raises(InputError):
        normalise_url("not a url")
    assert hide_password("postgresql://u:p@h/db") == "postgresql://u:***@h/db"


async def test_supervisor_restarts_a_dying_side_task(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    steady = asyncio.Event()

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("a bug")
        steady.set()
        await asyncio.Event().wait()

    sup = Supervisor(min_backoff=0.01, max_backoff=0.05)
    with caplog.at_level(logging.ERROR, logger="falsework.engine"):
        sup.start("flaky", flaky)
        await asyncio.wait_for(steady.wait(), 5)
    assert sup.restarts["flaky"] == 2 and sup.alive("flaky")
    assert caplog.text.count("side task flaky died") == 2
    await sup.stop()
    assert not sup.alive("flaky")


async def test_secret_key_is_generated_once_and_reused(database_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    one = await Broker.open(database_url, settings)
    task = await one.create({"steps": []}, secrets={"a": "b"})
    await one.close()
    key = (tmp_path / "d" / "secret.key").read_bytes()
    assert oct((tmp_path / "d" / "secret.key").stat().st_mode & 0o777) == "0o600"
    two = await Broker.open(database_url, settings)
    try:
        assert (tmp_path / "d" / "secret.key").read_bytes() == key
        (claimed,) = await two.claim("w", 1)
        assert claimed.id == task.id and claimed.secrets == {"a": "b"}
    finally:
        await two.close()
