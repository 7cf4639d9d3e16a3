"""Retention through the engine: one node's turn at a time, small batches, kept
tasks spared, the SQLite file given back its pages; on both dialects."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from falsework.config import Settings
from falsework.engine import Broker, TaskWorker
from falsework.engine.factory import parse_url
from falsework.engine.models import AuditEntry, AuditQuery
from falsework.engine.options import RetentionOptions
from falsework.engine.retention import Retention
from falsework.runner import as_executor
from falsework.taskio import TaskInput, TaskIO
from falsework.wiring import worker_options
from support.engine import make_worker, open_broker, wait_for

# negative ages: every finished task is already past them (no test waits)
# batch_seconds of a minute: every batch is quick enough, the sizes stay as given
DUE = RetentionOptions(
    completed=-60.0, failed=-60.0, cancelled=-60.0, audit=-60.0, batch=7, batch_seconds=60.0
)


async def chatty(task: TaskInput, io: TaskIO) -> dict[str, Any]:
    for i in range(int(task.spec.get("lines", 3))):
        await io.emit({"message": f"line {i} " + "x" * 200})
    if task.spec.get("fail"):
        raise RuntimeError("asked to fail")
    return {}


async def run_tasks(broker: Broker, settings: Settings, specs: list[dict[str, Any]]) -> list[str]:
    ids = [(await broker.create(spec)).id for spec in specs]
    # A worker without retention of its own: its passes (the first one
    # `retention_interval` after it starts) would race the test's. A burst that
    # outlasts it (a loaded machine) had it delete tasks before they are checked
    # below, or stop inside a pass and leave the turn taken for LEASE_TTL (60 s),
    # longer than test_the_worker_runs_retention waits for another worker's pass.
    options = replace(worker_options(settings), retention=None)
    await TaskWorker(broker, as_executor(chatty), options).run(burst=True)
    for tid in ids:
        assert (await broker.get(tid)).is_final
    return ids


async def test_a_pass_deletes_what_is_due_in_batches_and_spares_kept_tasks(
    broker: Broker, settings: Settings
) -> None:
    ids = await run_tasks(broker, settings, [{"lines": 4}] * 20 + [{"fail": True}] * 3)
    kept = ids[0]
    assert await broker.store.task_keep(kept, True)
    open_task = await broker.create({"steps": []})
    await broker.audit_write([AuditEntry("user:default/a", "task.create", None, "{}")] * 9)
    ran = await Retention(broker.store, DUE, "node-a").run_pass()
    assert ran is not None and not ran.backlog
    assert ran.tasks == {"cancelled": 0, "completed": 19, "failed": 3}
    assert ran.audit == 9 and await broker.audit_list(AuditQuery()) == []
    assert ran.events == 19 * 5 + 3 * 4  # 4 lines + the completion; 3 lines + the failure
    assert ran.batches == 3 + 1 + 1  # 19 completed in batches of 7, then one empty look each
    remaining, total = await broker.list()
    assert total == 2 and {t.id for t in remaining} == {kept, open_task.id}
    assert len(await broker.events(kept)) == 5
    # task_events has no foreign key (migration 0013): the pass deleted them itself
    for tid in ids[1:]:
        assert await broker.store.events_after(tid, 0) == []


async def test_one_node_at_a_time(database_url: str, broker: Broker, settings: Settings) -> None:
    await run_tasks(broker, settings, [{"lines": 1}] * 30)
    other = await open_broker(database_url, settings)
    try:
        a = Retention(broker.store, DUE, "node-a")
        b = Retention(other.store, DUE, "node-b")
        results = await asyncio.gather(a.run_pass(), b.run_pass())
        ran = [r for r in results if r is not None]
        assert len(ran) == 1 and ran[0].tasks["completed"] == 30
        # the turn is kept for `interval` after a pass: the other node waits for it
        winner, loser = (a, b) if results[0] is not None else (b, a)
        assert await loser.run_pass() is None
        assert await winner.run_pass() is not None
    finally:
        await other.close()
    assert (await broker.list())[1] == 0


async def test_a_pass_stops_at_its_budget_and_says_there_is_more(
    broker: Broker, settings: Settings
) -> None:
    await run_tasks(broker, settings, [{"lines": 1}] * 10)
    tight = RetentionOptions(completed=-60.0, batch=2, budget=0.0)
    ran = await Retention(broker.store, tight, "node-a").run_pass()
    assert ran is not None and ran.backlog and ran.tasks["completed"] == 0
    assert (await broker.list())[1] == 10
    full = await Retention(broker.store, RetentionOptions(completed=-60.0), "node-a").run_pass()
    assert full is not None and full.tasks["completed"] == 10


async def test_a_slow_batch_makes_the_next_ones_smaller(broker: Broker, settings: Settings) -> None:
    await run_tasks(broker, settings, [{"lines": 1}] * 32)
    # no batch is ever quick enough for 0 s: after the first (25), batches of 10
    hurried = RetentionOptions(
        completed=-60.0, failed=0, cancelled=0, audit=0, batch=25, batch_seconds=0.0
    )
    retention = Retention(broker.store, hurried, "node-a")
    ran = await retention.run_pass()
    assert ran is not None and ran.tasks["completed"] == 32
    assert ran.batches == 2 and retention.size == 10  # 25, then 7 of 10: done
    # quick batches let it grow back, by doubling, up to `batch`
    relaxed = Retention(broker.store, RetentionOptions(batch=25, batch_seconds=60.0), "node-a")
    relaxed.size = 10
    sizes = []
    for _ in range(3):
        relaxed._adapt(0.001)
        sizes.append(relaxed.size)
    assert sizes == [20, 25, 25]


async def test_ages_of_zero_keep_forever(broker: Broker, settings: Settings) -> None:
    await run_tasks(broker, settings, [{"lines": 1}, {"fail": True}])
    never = RetentionOptions(completed=0, failed=0, cancelled=0, audit=0)
    ran = await Retention(broker.store, never, "node-a").run_pass()
    assert ran is not None and ran.tasks == {} and ran.batches == 0
    assert (await broker.list())[1] == 2


async def test_the_worker_runs_retention(database_url: str, make_settings: Any) -> None:
    settings = make_settings(retention_completed=0.05, retention_interval=0.1)
    broker = await open_broker(database_url, settings)
    try:
        await run_tasks(broker, settings, [{"lines": 2}] * 5)
        worker = make_worker(broker, chatty, settings)
        running = asyncio.create_task(worker.run())

        async def gone() -> bool:
            return (await broker.list())[1] == 0

        await wait_for(gone, within=15.0)
        await worker.stop()
        await running
    finally:
        await broker.close()


async def test_sqlite_gives_the_pages_back(sqlite_url: str, settings: Settings) -> None:
    broker = await open_broker(sqlite_url, settings)
    path = Path(parse_url(sqlite_url).target)
    try:
        await run_tasks(broker, settings, [{"lines": 200}] * 20)
        await broker.close()  # closing checkpoints the WAL into the file
        before = await asyncio.to_thread(os.path.getsize, path)
        broker = await open_broker(sqlite_url, settings)
        ran = await Retention(broker.store, DUE, "node-a").run_pass()
        assert ran is not None and ran.tasks["completed"] == 20 and ran.pages > 0
    finally:
        await broker.close()
    after = await asyncio.to_thread(os.path.getsize, path)
    assert after < before / 2, (before, after)


async def test_an_event_appended_while_its_task_is_deleted_is_not_left_behind(
    postgres_url: str, settings: Settings
) -> None:
    """task_events has no foreign key (migration 0013): an event appended while a
    retention batch holds its task waits for the batch and then finds the task
    gone, instead of leaving an event no task owns (Postgres: statements of
    different connections interleave; SQLite has one writer)."""
    import asyncpg

    from falsework.engine.postgres import positional
    from falsework.engine.queries import load

    broker = await open_broker(postgres_url, settings)
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    conn, watch = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        tid = (await broker.create({"steps": []})).id
        await conn.execute(
            "UPDATE tasks SET status = 'completed', finished_at = now() - interval '1 hour'"
            " WHERE id = $1",
            tid,
        )
        expire, names = positional(load("postgres")["tasks_expire"])
        params = {"status": "completed", "older_than": 60.0, "limit": 10}
        events_gone, _ = positional(load("postgres")["events_delete_of_tasks"])
        waiting = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        async with conn.transaction():
            assert [r[0] for r in await conn.fetch(expire, *(params[n] for n in names))] == [tid]
            append = asyncio.create_task(broker.store.event_append(tid, "log", "{}"))
            await wait_for(lambda: watch.fetchval(waiting))
            await conn.fetch(events_gone, [tid])
        assert await append is False
        assert await conn.fetchval("SELECT count(*) FROM task_events WHERE task_id = $1", tid) == 0
    finally:
        await watch.close()
        await conn.close()
        await broker.close()
