"""Connections killed under a running worker (Postgres: ``pg_terminate_backend`` on
its pooled connections): no task fails, none runs twice, no event is lost or
written twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from conftest import make_worker, open_broker, wait_for
from falsework.config import Settings
from falsework.engine import Broker, ClaimedTask, NewTask
from falsework.taskio import TaskIO

pytestmark = [pytest.mark.postgres]

EVENTS = 40


async def chatty(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
    """Many small writes, some waiting for their flush (checkpoints)."""
    for i in range(EVENTS):
        await io.emit({"message": f"line {i}"})
        if i % 10 == 9:
            await io.checkpoint_set(f"cp{i}", i)
        await asyncio.sleep(0.01)
    return {"attempt": task.attempt}


def _terminate_all(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


async def _all_final(broker: Broker, ids: list[str]) -> bool:
    tasks, _ = await broker.list(status=["completed", "failed", "cancelled"], limit=None)
    return {t.id for t in tasks} >= set(ids)


async def test_repeated_pg_terminate_backend_fails_no_task(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(concurrency=30)
    broker = await open_broker(postgres_url, settings)
    try:
        ids = await broker.create_many([NewTask({"steps": []}) for _ in range(30)])
        worker = make_worker(broker, chatty, settings)
        run = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.running == 30, within=10)
        killed = 0
        for _ in range(12):
            killed += await asyncio.to_thread(_terminate_all, postgres_url)
            await asyncio.sleep(0.05)
        assert killed >= 12
        await wait_for(lambda: _all_final(broker, ids), within=60)
        for tid in ids:
            task = await broker.get(tid)
            assert (task.status, task.attempt) == ("completed", 1), tid
            messages = [e.body.get("message") for e in await broker.events(tid)]
            assert messages[:-1] == [f"line {i}" for i in range(EVENTS)], messages
        await worker.stop()
        await run
    finally:
        await broker.close()
