"""Several worker processes on one Postgres: sharing, SIGKILL recovery, cancel, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from falsework.config import Settings
from falsework.engine import Broker, NewTask
from support.engine import make_worker, open_broker, wait_final, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCRIPT = Path(__file__).with_name("proc_worker.py")


class Procs:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, concurrency: int, grace: float = 5.0) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                self.url,
                str(self.data_dir),
                str(concurrency),
                str(grace),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready"), line
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stdout:
                proc.stdout.close()


@pytest.fixture
def procs(postgres_url: str, tmp_path: Path) -> Iterator[Procs]:
    p = Procs(postgres_url, tmp_path / "data")
    try:
        yield p
    finally:
        p.stop_all()


@pytest.fixture
async def pg_broker(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Broker]:
    b = await open_broker(postgres_url, make_settings())
    try:
        yield b
    finally:
        await b.close()


def executions(url: str) -> list[tuple[str, str, int, datetime, datetime | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT task_id, token, pid, started_at, ended_at FROM test_executions ORDER BY id"
        ).fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def all_final(broker: Broker, ids: list[str]) -> bool:
    tasks, _ = await broker.list(status=["completed", "failed", "cancelled"], limit=None)
    return {t.id for t in tasks} >= set(ids)


async def test_two_processes_share_the_work(procs: Procs, pg_broker: Broker) -> None:
    procs.start(5)
    procs.start(5)
    ids = await pg_broker.create_many([NewTask({"steps": [], "sleep": 0.1}) for _ in range(60)])
    await wait_for(lambda: all_final(pg_broker, ids), within=60)
    rows = executions(procs.url)
    assert sorted(r[0] for r in rows) == sorted(ids)  # each ran exactly once
    assert len({r[2] for r in rows}) == 2  # both processes did work
    for tid in ids[:5]:
        assert (await pg_broker.get(tid)).status == "completed"


async def test_sigkill_mid_run_recovers_on_the_other_process(
    procs: Procs, pg_broker: Broker
) -> None:
    victim = procs.start(30)
    # the first attempt outlives the victim; the recovered one is quick
    ids = await pg_broker.create_many(
        [NewTask({"steps": [], "sleep_first": 60, "sleep": 0.2}) for _ in range(20)]
    )
    await wait_for(lambda: len(executions(procs.url)) == 20, within=30)
    survivor = procs.start(30)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    with psycopg.connect(procs.url) as conn:
        killed_at = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    await wait_for(lambda: all_final(pg_broker, ids), within=60)
    rows = executions(procs.url)
    by_task: dict[str, list[Any]] = {}
    for row in rows:
        by_task.setdefault(row[0], []).append(row)
    for tid in ids:
        task = await pg_broker.get(tid)
        assert task.status == "completed" and task.attempt == 2
        runs = by_task[tid]
        assert [r[2] for r in runs] == [victim.pid, survivor.pid]
        first, second = runs
        assert first[4] is None  # killed mid-run
        assert first[1] != second[1]  # a fresh claim token
        # never twice at once: the second run began after the first one died
        assert second[3] > killed_at and second[4] is not None
        completions = [e for e in await pg_broker.events(tid) if e.type == "completion"]
        assert len(completions) == 1
        assert any(e.type == "recovered" for e in await pg_broker.events(tid))


async def test_cancel_across_processes(procs: Procs, pg_broker: Broker) -> None:
    procs.start(2)
    task = await pg_broker.create({"steps": [], "block": True})
    await wait_for(lambda: len(executions(procs.url)) == 1, within=20)
    await pg_broker.cancel(task.id)
    done = await wait_final(pg_broker, task.id, within=20)
    assert done.status == "cancelled"
    assert (await pg_broker.events(task.id))[-1].type == "cancelled"


async def test_sigterm_drains_releases_and_exits_zero(procs: Procs, pg_broker: Broker) -> None:
    proc = procs.start(4, grace=0.5)
    quick = await pg_broker.create({"steps": [], "sleep": 0.2})
    stuck = await pg_broker.create({"steps": [], "block": True})
    await wait_for(lambda: len(executions(procs.url)) == 2, within=20)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 20) == 0
    assert (await pg_broker.get(quick.id)).status == "completed"
    released = await pg_broker.get(stuck.id)
    assert released.status == "open" and released.claimed_by is None
    assert await pg_broker.workers() == []


async def test_listener_reconnects_after_pg_terminate_backend(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    node = await open_broker(postgres_url, settings)
    other = await open_broker(postgres_url, settings)
    woken = asyncio.Event()
    try:
        assert node.listener is not None
        await asyncio.wait_for(node.listener.connected.wait(), 10)
        first_pid = node.listener.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        await wait_for(lambda: node.listener.connects == 2, within=20)  # type: ignore[union-attr]
        assert node.listener.backend_pid != first_pid
        node.hub.watch_tasks(woken.set)
        # only a NOTIFY through the new connection can reach `node` from `other`
        await other.create({"steps": []})
        await asyncio.wait_for(woken.wait(), 10)
        assert node._supervisor.restarts["listener"] == 1
    finally:
        await other.close()
        await node.close()


async def test_worker_survives_its_connections_being_killed(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    from support.engine_executors import steps

    settings = make_settings(concurrency=20)
    broker = await open_broker(postgres_url, settings)
    try:
        ids = await broker.create_many(
            [NewTask({"steps": [{"id": "a", "sleep": 0.6, "log": "x"}]}) for _ in range(20)]
        )
        worker = make_worker(broker, steps, settings)
        run = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.running == 20, within=10)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert killed and killed[0] >= 1
        await wait_for(lambda: all_final(broker, ids), within=30)
        for tid in ids:
            task = await broker.get(tid)
            assert task.status == "completed" and task.attempt == 1
            messages = [e.body["message"] for e in await broker.events(tid)]
            assert len(messages) == 5 and messages[2] == "x"
        await worker.stop()
        await run
    finally:
        await broker.close()


async def test_subscribe_is_pushed_from_another_node(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    from support.engine_executors import steps

    # polling so slow that only NOTIFY can end the subscription in time
    settings = make_settings(poll_interval=60.0, max_poll_interval=60.0)
    api_node = await open_broker(postgres_url, settings)
    worker_node = await open_broker(postgres_url, settings)
    try:
        assert api_node.listener is not None and worker_node.listener is not None
        await asyncio.wait_for(api_node.listener.connected.wait(), 10)
        await asyncio.wait_for(worker_node.listener.connected.wait(), 10)
        worker = make_worker(worker_node, steps, settings)
        run = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.alive)
        task = await api_node.create({"steps": [{"id": "a", "sleep": 0.2, "log": "x"}]})
        seen = []

        async def follow() -> None:
            async for event in api_node.subscribe(task.id):
                seen.append(event.id)

        await asyncio.wait_for(follow(), 10)
        events = await api_node.events(task.id)
        assert seen == [e.id for e in events] and events[-1].type == "completion"
        await worker.stop()
        await run
    finally:
        await worker_node.close()
        await api_node.close()
