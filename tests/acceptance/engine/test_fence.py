"""Self-fencing (engine/fence.py): a worker that cannot be sure its lease holds
starts no step and stops its runs, before anyone may recover its tasks."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from falsework.config import Settings
from falsework.engine import Broker
from falsework.engine.fence import Fence, clock
from falsework.errors import InputError
from falsework.wiring import worker_options
from support.chaos import TcpProxy
from support.engine import make_worker, open_broker, wait_final, wait_for
from support.engine_executors import steps


def test_the_options_keep_the_stale_timeout_beyond_lease_and_margin(
    make_settings: Callable[..., Settings],
) -> None:
    options = worker_options(make_settings(stale_timeout=15.0, heartbeat_interval=2.0))
    assert (options.lease, options.lease_margin) == (10.0, 2.0)
    assert options.fence_after == 8.0
    for bad in (
        {"stale_timeout": 15.0, "lease": 14.0, "lease_margin": 2.0},  # 15 < 16
        {"stale_timeout": 15.0, "lease": 3.0, "lease_margin": 2.0, "heartbeat_interval": 2.0},
        {"stale_timeout": 15.0, "lease": 5.0, "lease_margin": 5.0},
    ):
        with pytest.raises(InputError):
            worker_options(make_settings(**bad))


async def test_a_stall_closes_the_gate_until_a_later_heartbeat() -> None:
    fence = Fence(fence_after=60.0, stall=0.05)
    far = fence.deadline(clock())
    assert fence.open(far) and not fence.tick()
    sent_before = clock()
    time.sleep(0.1)  # noqa: ASYNC251 - a real stall of this loop
    assert fence.tick() and fence.suspect and not fence.open(far)
    fence.confirmed(sent_before)  # a heartbeat sent before the stall proves nothing
    assert not fence.open(far)
    waiting = asyncio.create_task(fence.wait_open(lambda: far))
    await asyncio.sleep(0)
    assert not waiting.done()
    fence.confirmed(clock())
    await asyncio.wait_for(waiting, 1)
    assert fence.open(far) and not fence.open(fence.deadline(clock() - 61))


def _records(path: Path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    return [(a, b, int(c)) for a, b, c in (line.split() for line in path.read_text().splitlines())]


async def test_a_run_past_its_lease_stops_before_its_next_step(
    broker: Broker, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The loop stalls longer than lease - margin inside step a: step b never
    starts in that attempt; the run leaves a superseded marker, the task goes
    back to the queue at once (it was still ours) and the next attempt finishes."""
    settings = make_settings()
    record = tmp_path / "starts"
    fence_after = worker_options(settings).fence_after
    task = await broker.create(
        {
            "steps": [
                {"id": "a", "record": str(record), "stall": fence_after + 0.3},
                {"id": "b", "record": str(record)},
            ]
        }
    )
    worker = make_worker(broker, steps, settings)
    run = asyncio.create_task(worker.run())
    try:
        done = await wait_final(broker, task.id, within=20)
    finally:
        await worker.stop()
        await run
    assert done.status == "completed" and done.attempt == 2
    # a completed in the first attempt (its state was still ours to save); b
    # started once, in the second
    assert _records(record) == [(task.id, "a", 1), (task.id, "b", 2)]
    events = await broker.events(task.id)
    markers = [e for e in events if "superseded" in e.body]
    assert len(markers) == 1
    assert markers[0].body["superseded"] == {
        "workerId": worker.worker_id,
        "attempt": 1,
        "reason": "fenced",
    }
    assert events[-1].type == "completion"
    # nothing was recovered by a janitor: the run stopped and handed the task back
    assert not [e for e in events if e.type == "recovered"]


@contextmanager
def database_held(url: str, seconds: float) -> Iterator[None]:
    """Every statement of the worker waits ``seconds`` (then goes through): a
    SQLite file locked by another process, or a Postgres link frozen."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        ready = threading.Event()

        def hold() -> None:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            ready.set()
            time.sleep(seconds)
            conn.execute("COMMIT")
            conn.close()

        thread = threading.Thread(target=hold)
        thread.start()
        ready.wait(5)
        try:
            yield
        finally:
            thread.join()
    else:
        yield


async def test_a_claim_answered_after_its_lease_ran_out_starts_nothing(
    database_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    fence_after = worker_options(settings).fence_after
    record = tmp_path / "starts"
    proxy: TcpProxy | None = None
    url = database_url
    if url.startswith("postgresql"):
        parts = urlsplit(url)
        proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    node = await open_broker(url, settings.model_copy(update={"db_statement_timeout": 5.0}))
    api = await open_broker(database_url, settings)
    worker = make_worker(node, steps, settings)
    run = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: worker.alive)
        await asyncio.sleep(0.3)  # the worker is idle, polling
        held = fence_after + 0.5
        spec = {"steps": [{"id": "a", "record": str(record)}]}
        if proxy is not None:
            # frozen first, then the task made through the API's own link: however
            # slow the machine, the claim that finds it is sent during the hold
            proxy.freeze()
            task = await api.create(spec, run_after=datetime.now(UTC) + timedelta(seconds=0.3))
            await asyncio.sleep(held)
            proxy.thaw()
        else:
            # due just after the hold begins: the claim that finds it is sent during it
            task = await api.create(spec, run_after=datetime.now(UTC) + timedelta(seconds=0.3))
            with database_held(database_url, held):
                await asyncio.sleep(held)
        done = await wait_final(api, task.id, within=20)
    finally:
        await worker.stop()
        await run
        await node.close()
        await api.close()
        if proxy is not None:
            proxy.close()
    assert done.status == "completed"
    # the late claim was handed back unstarted; only a later claim ran the step
    starts = _records(record)
    assert len(starts) == 1 and starts[0][2] == done.attempt
    assert done.attempt >= 2
