"""Outage-aware recovery: a janitor trusts old heartbeats only after it has seen
the database for a full stale window itself; dead workers leave the list."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from falsework.config import Settings
from falsework.engine import Broker, ClaimedTask, TaskChannel
from falsework.engine.fence import clock
from falsework.engine.janitor import Janitor
from falsework.taskio import TaskIO
from support.engine import make_worker, open_broker, wait_final


async def test_a_janitor_recovers_only_after_a_full_window_of_seeing_the_database(
    broker: Broker,
) -> None:
    task = await broker.create({"steps": []})
    await broker.claim("dead-worker", 1)
    stale = 0.6
    await asyncio.sleep(stale + 0.1)  # the task's heartbeat is stale already ...
    janitor = Janitor(broker, interval=0.05, stale_timeout=stale, secret_retention=86_400)
    first = clock()
    recovered: list[tuple[str, str]] = []
    while not recovered:
        recovered = await janitor.sweep()
        if not recovered:
            assert not janitor.trusted
        await asyncio.sleep(0.05)
    # ... but nothing was recovered before the janitor had watched for `stale`
    assert clock() - first >= stale
    assert recovered == [(task.id, "recovered")]


async def test_a_janitor_started_beside_a_dead_worker_recovers_when_its_window_is_full(
    broker: Broker,
) -> None:
    """Its first look is at once and its last waits no interval: with sweeps a
    minute apart, the task is recovered as soon as the janitor has watched for a
    stale window (not a minute, nor a window and an interval, later)."""
    task = await broker.create({"steps": []})
    await broker.claim("dead-worker", 1)
    stale = 0.6
    await asyncio.sleep(stale + 0.1)
    janitor = Janitor(broker, interval=60, stale_timeout=stale, secret_retention=86_400)
    running = asyncio.create_task(janitor.run())
    try:
        async with asyncio.timeout(20):
            while True:
                if (await broker.get(task.id)).status == "open":
                    break
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert janitor.trusted


async def test_a_gap_in_the_janitors_view_starts_its_window_again(broker: Broker) -> None:
    janitor = Janitor(broker, interval=0.01, stale_timeout=0.3, secret_retention=86_400)
    await janitor.sweep()
    await asyncio.sleep(0.35)
    await janitor.sweep()
    assert janitor.trusted  # a 0.35 s gap is within 2 intervals + 1 s (a statement's bound)
    janitor2 = Janitor(broker, interval=0.01, stale_timeout=0.3, secret_retention=86_400)
    await janitor2.sweep()
    janitor2._last_seen -= 5  # as if this process had stalled for 5 s
    await janitor2.sweep()
    assert not janitor2.trusted


async def test_dead_workers_show_no_running_tasks_and_are_forgotten(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    watcher = await open_broker(database_url, make_settings())
    try:
        ids = [t.id for t in [await watcher.create({"steps": []}) for _ in range(3)]]
        await watcher.register_worker("w-dead", "host", 1, 10)
        claimed = await watcher.claim("w-dead", 3)
        await watcher.heartbeat("w-dead", [c.id for c in claimed], None)
        assert sorted(c.id for c in claimed) == sorted(ids)
        (alive,) = await watcher.workers()
        assert alive.running == 3
        # seen from a node whose stale window has passed for that worker
        strict = dataclasses.replace(watcher.options, worker_stale_after=-1.0)
        watcher.options = strict
        (dead,) = await watcher.workers()
        assert (dead.id, dead.running) == ("w-dead", 0)
        janitor = Janitor(watcher, interval=1, stale_timeout=15, secret_retention=86_400)
        assert janitor.forget_after == 300.0
        assert await watcher.prune_workers(-1.0) == 1
        assert await watcher.workers() == []
    finally:
        await watcher.close()


async def test_a_run_whose_writes_the_database_refuses_stops_at_once(
    broker: Broker, settings: Settings
) -> None:
    """The run is stopped while it waits (not at its next write, which never
    comes) and fails with the database's reason."""

    async def refused_then_waits(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        assert isinstance(io, TaskChannel)
        # a step state the database refuses (the channel itself only writes JSON)
        io._batcher.step(task.id, task.claim_token, "a", "{this is not json")
        await asyncio.sleep(60)
        return {}

    task = await broker.create({"steps": []})
    worker = make_worker(broker, refused_then_waits, settings)
    run = asyncio.create_task(worker.run())
    try:
        done = await wait_final(broker, task.id, within=10)
    finally:
        await worker.stop()
        await run
    assert done.status == "failed"
    error = (await broker.events(task.id))[-1].body["error"]
    assert error["name"] == "TaskWriteError" and "refused" in error["message"]
