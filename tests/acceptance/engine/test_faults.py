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
from falsework.engine.factory import hide_password, parse_url
from falsework.engine.supervisor import Supervisor
from falsework.errors import DatabaseUnavailableError, InputError
from support.engine import open_broker


async def test_unreachable_database_is_one_clear_line(settings: Settings) -> None:
    url = "postgresql://fw:hunter2@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseUnavailableError) as info:
        await open_broker(url, settings)
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


def test_urls_name_a_dialect_and_its_one_driver() -> None:
    assert parse_url("sqlite:///x.db").target == parse_url("sqlite+aiosqlite:///x.db").target
    assert parse_url("sqlite:///x.db").target == "x.db"
    assert parse_url("sqlite:////abs/x.db").target == "/abs/x.db"
    pg = parse_url("postgres://u:secret@h/db?sslmode=disable")
    assert (pg.dialect, pg.target) == ("postgres", "postgresql://u:secret@h/db?sslmode=disable")
    assert pg.shown == "postgres://u:***@h/db?sslmode=disable"
    assert parse_url("postgresql+asyncpg://u@h/db").target == "postgresql://u@h/db"
    # the untested psycopg runtime path is gone: such a URL is refused, clearly
    with pytest.raises(InputError, match="asyncpg"):
        parse_url("postgresql+psycopg://u@h/db")
    for bad in ("mysql://u@h/db", "not a url", "sqlite:///:memory:"):
        with pytest.raises(InputError):
            parse_url(bad)
    assert hide_password("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
    assert hide_password("postgresql://u:p@h1:5432,h2:5433/db") == (
        "postgresql://u:***@h1:5432,h2:5433/db"
    )


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
    one = await open_broker(database_url, settings)
    task = await one.create({"steps": []}, secrets={"a": "b"})
    await one.close()
    key = (tmp_path / "d" / "secret.key").read_bytes()
    assert oct((tmp_path / "d" / "secret.key").stat().st_mode & 0o777) == "0o600"
    two = await open_broker(database_url, settings)
    try:
        assert (tmp_path / "d" / "secret.key").read_bytes() == key
        (claimed,) = await two.claim("w", 1)
        assert claimed.id == task.id and claimed.secrets == {"a": "b"}
    finally:
        await two.close()
