"""Connections killed under a running worker (Postgres: ``pg_terminate_backend`` on
its pooled connections): no task fails, none runs twice, no event is lost or
written twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg
import pytest

from falsework.config import Settings
from falsework.engine import Broker, ClaimedTask, NewTask, StoreOptions
from falsework.engine.factory import open_store
from falsework.engine.notify import Hub
from falsework.engine.postgres import CHANNEL_TASKS, PgListener, bound_socket, session_settings
from falsework.errors import DatabaseUnavailableError
from falsework.taskio import TaskIO
from support.chaos import TcpProxy
from support.engine import make_worker, open_broker, wait_for

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


async def _each_completed_once(broker: Broker, ids: list[str]) -> None:
    """Every task completed in its first attempt, each of its events written once."""
    await wait_for(lambda: _all_final(broker, ids), within=60)
    for tid in ids:
        task = await broker.get(tid)
        assert (task.status, task.attempt) == ("completed", 1), tid
        messages = [e.body.get("message") for e in await broker.events(tid)]
        assert messages[:-1] == [f"line {i}" for i in range(EVENTS)], messages


async def test_repeated_pg_terminate_backend_fails_no_task(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    # The suite's 2 s stale timeout gives a lease of 1.3 s: on a loaded machine (load
    # 12, coverage on) the twelve rounds of kills kept every heartbeat out for longer,
    # the worker fenced itself ("no heartbeat confirmed … their runs stop") and a task
    # ran twice. What is tested is that killed connections cost no task and no run,
    # not how fast the heartbeats come back: a lease of serve's order (the default
    # stale timeout is 15 s) leaves the load out of it.
    settings = make_settings(concurrency=30, stale_timeout=10.0)
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
        await _each_completed_once(broker, ids)
        await worker.stop()
        await run
    finally:
        await broker.close()


def _through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))


async def test_a_session_frozen_inside_a_transaction_releases_its_locks(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    """A client frozen mid-transaction (a dead link: nothing moves, nothing is
    closed) holds its row locks only until idle_in_transaction_session_timeout
    ends its session; then a janitor elsewhere recovers the task."""
    options = StoreOptions(statement_timeout=1.0, keepalive=1)
    parts = urlsplit(postgres_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    broker = await open_broker(postgres_url, make_settings())
    try:
        task = await broker.create({"steps": []})
        (claimed,) = await broker.claim("frozen-worker", 1)
        conn = await asyncpg.connect(
            _through(proxy, postgres_url), server_settings=session_settings(options, "t")
        )
        bound_socket(conn, options)
        await conn.execute("BEGIN")
        await conn.execute("SELECT id FROM tasks WHERE id = $1 FOR UPDATE", claimed.id)
        proxy.freeze()
        loop = asyncio.get_running_loop()
        frozen_at = loop.time()
        # while the lock is held the janitor skips the task (SKIP LOCKED) ...
        assert await broker.recover_stale(-60) == []
        # ... and within the timeout (+ slack for a busy machine) it is free
        while not (found := await broker.recover_stale(-60)):
            assert loop.time() - frozen_at < options.statement_timeout + 3
            await asyncio.sleep(0.05)
        assert found == [(task.id, "recovered")]
        conn.terminate()
    finally:
        proxy.close()
        await broker.close()


async def test_a_statement_into_a_dead_link_fails_within_the_command_timeout(
    postgres_url: str,
) -> None:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    options = StoreOptions(statement_timeout=0.5, keepalive=1)
    store = await open_store(_through(proxy, postgres_url), options)
    try:
        await store.ping()
        proxy.freeze()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(DatabaseUnavailableError):
            await store.ping()
        assert loop.time() - started < options.command_timeout + 2
        proxy.thaw()
        proxy.cut()
        await store.task_status("x")  # a fresh connection serves the next call
    finally:
        await store.close()
        proxy.close()


async def test_a_listener_behind_a_frozen_link_gives_up_after_a_silence(
    postgres_url: str,
) -> None:
    """Notifications show the link works, so the listener asks nothing; once the
    link freezes (nothing passes, nothing is closed, so no error and no TCP reset)
    it hears nothing, asks after a keepalive, gets no answer and gives up (the
    broker's supervisor connects it again)."""
    parts = urlsplit(postgres_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    listener = PgListener(_through(proxy, postgres_url), Hub(), keepalive=1.0)
    running = asyncio.create_task(listener.run())
    sender = await asyncpg.connect(postgres_url)
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        for _ in range(40):  # two keepalives
            await sender.execute(f"NOTIFY {CHANNEL_TASKS}")
            await asyncio.sleep(0.05)
        assert listener.pings == 0
        proxy.freeze()
        with pytest.raises(DatabaseUnavailableError):
            await asyncio.wait_for(running, 10)
        assert listener.pings == 0 and not listener.connected.is_set()
    finally:
        running.cancel()
        await sender.close()
        proxy.close()


async def test_a_flush_retried_after_an_ambiguous_commit_writes_nothing_twice(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    """The link dies right after a flush reached the server (a flush is one
    autocommit statement: its message is the one carrying the events' text): the
    worker cannot know whether its flush landed and tries again; the flush's id
    makes the second try a no-op."""
    parts = urlsplit(postgres_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    settings = make_settings(concurrency=10)
    api = await open_broker(postgres_url, settings)
    node = await open_broker(_through(proxy, postgres_url), settings)
    try:
        ids = await api.create_many([NewTask({"steps": []}) for _ in range(10)])
        worker = make_worker(node, chatty, settings)
        run = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.running == 10, within=10)
        proxy.cut_after_message(b'"line ', times=6)
        await _each_completed_once(api, ids)
        assert proxy.cuts_after_message >= 3
        await worker.stop()
        await run
    finally:
        await node.close()
        await api.close()
        proxy.close()
