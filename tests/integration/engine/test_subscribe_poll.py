"""Subscribers' safety-net poll: slow while the Postgres listener is healthy, fast
while it is away, and a catch-up read when it is lost and when it is back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest

from falsework.config import Settings
from falsework.engine import Broker, Event
from falsework.engine.codec import dumps
from falsework.engine.models import WriteBatch
from support.engine import open_broker, wait_for

# A fast poll would re-read an idle task's events every 50 ms; the slow one
# (the listener is healthy) never fires within a test.
FAST, SLOW = 0.05, 600.0


@contextlib.asynccontextmanager
async def following(broker: Broker, task_id: str) -> AsyncIterator[list[Event]]:
    received: list[Event] = []

    async def follow() -> None:
        async for item in broker.subscribe(task_id):
            received.append(item)

    runner = asyncio.create_task(follow())
    try:
        yield received
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def count_event_reads(broker: Broker) -> list[int]:
    """Counts this broker's reads of task_events (one per subscriber poll; the
    subscribers woken together share one)."""
    reads = [0]
    store = broker.store
    read, read_many = store.events_after, store.events_after_many

    async def counted(task_id: str, after: int, limit: int = 1000) -> list[Event]:
        reads[0] += 1
        return await read(task_id, after, limit)

    async def counted_many(wanted: list[tuple[str, int]], limit: int = 1000) -> list[list[Event]]:
        reads[0] += 1
        return await read_many(wanted, limit)

    store.events_after = counted  # type: ignore[method-assign]
    store.events_after_many = counted_many  # type: ignore[method-assign]
    return reads


async def write_event(broker: Broker, task_id: str, token: str, message: str) -> None:
    """One log event written the way a worker's flush writes it (with its NOTIFY)."""
    batch = WriteBatch(tokens={task_id: token})
    batch.events.append((task_id, token, "log", dumps({"message": message})))
    assert await broker.write(batch) == set()


@pytest.mark.postgres
async def test_idle_subscriber_polls_slowly_and_gets_events_pushed(
    pg_pair: tuple[Broker, Broker],
) -> None:
    node, writer = pg_pair
    assert node.event_poll_interval() == SLOW
    task = await writer.create({"steps": []})
    (claimed,) = await writer.claim("w", 1)
    reads = count_event_reads(node)
    async with following(node, task.id) as received:
        await wait_for(lambda: reads[0] >= 1)  # the first read happened
        # Idle for a second: a fast poll would have read about 20 more times.
        await asyncio.sleep(1.0)
        assert reads[0] <= 3
        # Written by another broker: only its NOTIFY can reach this one in time.
        await write_event(writer, task.id, claimed.claim_token, "pushed")
        await wait_for(lambda: len(received) == 1, within=10)
    assert received[0].body == {"message": "pushed"}


@pytest.mark.postgres
async def test_losing_the_listener_polls_fast_and_catches_up(
    pg_pair: tuple[Broker, Broker], postgres_url: str
) -> None:
    node, writer = pg_pair
    assert node.listener is not None
    task = await writer.create({"steps": []})
    (claimed,) = await writer.claim("w", 1)
    async with following(node, task.id) as received:
        await write_event(writer, task.id, claimed.claim_token, "first")
        await wait_for(lambda: len(received) == 1, within=10)
        # An event with no NOTIFY at all: nothing pushes it, and the slow poll
        # would not read it for ten minutes.
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO task_events (task_id, type, body, created_at) "
                "VALUES (%s, 'log', %s, now())",
                (task.id, json.dumps({"message": "silent"})),
            )
            conn.execute("SELECT pg_terminate_backend(%s)", (node.listener.backend_pid,))
        # Losing the listener wakes every subscriber for a catch-up read.
        await wait_for(lambda: len(received) == 2, within=10)
        assert received[1].body == {"message": "silent"}
        await wait_for(lambda: node.listener.connects == 2, within=20)  # type: ignore[union-attr]
        await asyncio.wait_for(node.listener.connected.wait(), 10)
        assert node.event_poll_interval() == SLOW
        # Pushed again through the new listener connection.
        await write_event(writer, task.id, claimed.claim_token, "after")
        await wait_for(lambda: len(received) == 3, within=10)
    assert [e.body["message"] for e in received] == ["first", "silent", "after"]


@pytest.mark.postgres
async def test_a_listener_that_is_down_means_the_fast_poll(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    node = await open_broker(
        postgres_url, make_settings(poll_interval=FAST, max_poll_interval=SLOW)
    )
    try:
        assert node.listener is not None
        await asyncio.wait_for(node.listener.connected.wait(), 10)
        await node._supervisor.stop("listener")  # the listener is gone for good
        assert not node.listener.connected.is_set()
        assert node.event_poll_interval() == FAST
    finally:
        await node.close()


async def test_sqlite_always_polls_fast(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    # Writers in other processes on the same file cannot signal this one.
    node = await open_broker(sqlite_url, make_settings(poll_interval=FAST, max_poll_interval=SLOW))
    try:
        assert node.listener is None
        assert node.event_poll_interval() == FAST
    finally:
        await node.close()


@pytest.mark.postgres
async def test_subscribers_woken_together_read_in_one_statement(
    pg_pair: tuple[Broker, Broker],
) -> None:
    node, writer = pg_pair
    tasks = [await writer.create({"steps": []}) for _ in range(30)]
    claims = {t.id: t.claim_token for t in await writer.claim("w", 30)}
    reads = count_event_reads(node)
    asked: set[str] = set()
    read_many = node.store.events_after_many

    async def noting(wanted: list[tuple[str, int]], limit: int = 1000) -> list[list[Event]]:
        asked.update(task_id for task_id, _after in wanted)
        return await read_many(wanted, limit)

    node.store.events_after_many = noting  # type: ignore[method-assign]
    followers = [following(node, t.id) for t in tasks]
    streams = [await f.__aenter__() for f in followers]
    try:
        # every subscriber has made its first read (nothing yet) and waits
        await wait_for(lambda: asked == {t.id for t in tasks})
        await asyncio.sleep(0.1)
        before = reads[0]
        # One flush by another node writes an event for each task: one NOTIFY
        # carrying thirty ids wakes thirty subscribers here.
        batch = WriteBatch(tokens=claims)
        for t in tasks:
            batch.events.append((t.id, claims[t.id], "log", dumps({"message": t.id})))
        assert await writer.write(batch) == set()
        await wait_for(lambda: all(len(s) == 1 for s in streams), within=10)
        assert reads[0] - before <= 5  # not thirty reads
        assert [s[0].body["message"] for s in streams] == [t.id for t in tasks]
    finally:
        for f in reversed(followers):
            await f.__aexit__(None, None, None)
