"""Retention at scale (issue 16): a database filled with N task events, the
retention pass run against it, and the engine's hot queries at that size.

The fill is made by the database itself (``generate_series`` on Postgres, a
recursive CTE on SQLite, one statement each): ``--events`` events over tasks of
``EVENTS_PER_TASK`` events, nine in ten of them finished 40 days ago (past the
30-day default for completed tasks), one in ten a day ago (kept). Then, on a
fresh store of the engine:

- the hot queries at that size, median of ``SAMPLES`` calls each: the task list's
  first page with its count (``GET /v2/tasks``), one task's events
  (``GET …/events``, the SSE read), a claim of one open task, the cluster gauges,
  and the cluster histograms' read of the runs ended in the last ``MARKS_SCAN``
  events;
- ``Retention.run_pass()`` with the default ages and batch, timed as a whole and
  per batch (a batch is one transaction: how long it holds its locks), while a
  second loop creates and claims a task every ``PROBE_EVERY`` seconds through
  the same store and times each claim (against the same probe before the pass);
- SQLite: the rest of the freed pages given back as the next passes would
  (``reclaim_pages`` per call, each timed) with the same claim probe beside it;
- the same queries again after the pass (and on Postgres after a ``VACUUM
  ANALYZE``, what autovacuum does soon after), and the database's size.

    python -m bench.retention [--db postgres|sqlite|both] [--events 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench import fw
from bench.common import emit, latency_summary, log, machine, median, run
from falsework.engine.codec import dumps
from falsework.engine.factory import open_store
from falsework.engine.models import Expired, TaskQuery, TaskRow
from falsework.engine.options import RetentionOptions
from falsework.engine.retention import Retention
from falsework.engine.store import Store

EVENTS_PER_TASK = 20
KEPT_SHARE = 10  # one task in this many finished recently: retention keeps it
SAMPLES = 30
PROBE_EVERY = 0.02
MARKS_SCAN = 20_000  # events of 1,000 runs: a 15 s turn at about 1,300 events/s
SPEC = dumps(
    {
        "templateInfo": {"entityRef": "template:default/bench"},
        "steps": [{"id": "log", "action": "debug:log"}],
    }
)
BODY = '{"message": "a line of an action\'s log, about this long, as most are", "stepId": "log"}'

PG_FILL_TASKS = """
INSERT INTO tasks (id, status, spec, created_by, priority, attempt, recovery, step_state,
                   checkpoints, created_at, finished_at)
SELECT gen_random_uuid()::text, 'completed', $1::json, 'user:default/u' || (g % 50), 0, 1,
       'resume', '{}', '{}', f - interval '1 minute', f
FROM (SELECT g, CASE WHEN g % $3 = 0 THEN now() - interval '1 day'
                     ELSE now() - interval '40 days' END + g * interval '1 millisecond' AS f
      FROM generate_series(1, $2) AS g) AS s
"""
PG_FILL_EVENTS = """
INSERT INTO task_events (task_id, type, body, created_at)
SELECT t.id, CASE WHEN i = $2 THEN 'completion' ELSE 'log' END, $1::json, t.finished_at
FROM tasks t CROSS JOIN generate_series(1, $2) AS i
ORDER BY t.seq, i
"""
SQLITE_FILL_TASKS = """
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :tasks)
INSERT INTO tasks (id, seq, status, spec, created_by, priority, attempt, recovery, step_state,
                   checkpoints, keep, created_at, finished_at)
SELECT lower(hex(randomblob(16))), n, 'completed', :spec, 'user:default/u' || (n % 50), 0, 1,
       'resume', '{}', '{}', 0,
       strftime('%Y-%m-%d %H:%M:%f', 'now', CASE WHEN n % :share = 0 THEN '-1 days'
                                                 ELSE '-40 days' END, '-60 seconds'),
       strftime('%Y-%m-%d %H:%M:%f', 'now', CASE WHEN n % :share = 0 THEN '-1 days'
                                                 ELSE '-40 days' END)
FROM g
"""
SQLITE_FILL_EVENTS = """
WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < :per)
INSERT INTO task_events (task_id, type, body, created_at)
SELECT t.id, CASE WHEN k = :per THEN 'completion' ELSE 'log' END, :body, t.finished_at
FROM tasks t CROSS JOIN i
ORDER BY t.seq, k
"""


async def fill(url: str, tasks: int) -> None:
    """``tasks`` finished tasks with EVENTS_PER_TASK events each, by the database."""
    if url.startswith("postgres"):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(PG_FILL_TASKS, SPEC, tasks, KEPT_SHARE)
            await conn.execute(PG_FILL_EVENTS, BODY, EVENTS_PER_TASK)
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
        return
    path = url.split("sqlite:///", 1)[1]

    def work() -> None:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN")
            conn.execute(SQLITE_FILL_TASKS, {"tasks": tasks, "spec": SPEC, "share": KEPT_SHARE})
            conn.execute(SQLITE_FILL_EVENTS, {"per": EVENTS_PER_TASK, "body": BODY})
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    await asyncio.to_thread(work)


async def size_mb(url: str) -> float:
    if url.startswith("postgres"):
        rows = await fw.sql(url, "SELECT pg_database_size(current_database())")
        return round(float(rows[0][0]) / 2**20, 1)
    path = Path(url.split("sqlite:///", 1)[1])

    def total() -> int:
        files = (path, Path(f"{path}-wal"))
        return sum(os.path.getsize(p) for p in files if os.path.exists(p))

    return round(await asyncio.to_thread(total) / 2**20, 1)


def new_row() -> TaskRow:
    return TaskRow(str(uuid.uuid4()), SPEC, None, "user:default/probe", 0, None, "resume", None)


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000.0


async def queries(store: Store, some_task: str) -> dict[str, float]:
    """Median ms of the hot queries at the database's current size."""
    out: dict[str, list[float]] = {"list": [], "events": [], "claim": [], "gauges": []}
    out["marks"] = []
    last = (await store.metrics_marks(None, 0.0, 1)).until
    for _ in range(3):  # what one cluster-metrics turn reads after MARKS_SCAN events
        out["marks"].append(
            await timed(lambda: store.metrics_marks(max(0, last - MARKS_SCAN), -60.0, MARKS_SCAN))
        )
    for _ in range(SAMPLES):
        out["list"].append(await timed(lambda: store.task_list(TaskQuery(limit=25))))
        out["events"].append(await timed(lambda: store.events_after(some_task, 0)))
        await store.tasks_insert([new_row()], open_cap=None)
        out["claim"].append(await timed(lambda: store.task_claim("bench", 1, per_user_cap=None)))
        out["gauges"].append(await timed(lambda: store.metrics_gauges(15.0)))
    return {k: round(median(v), 3) for k, v in out.items()}


class TimedStore:
    """The store, with each retention batch timed (one transaction each)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.batches_ms: list[float] = []

    async def tasks_expire(self, status: str, older_than: float, limit: int) -> Expired:
        started = time.perf_counter()
        found = await self._store.tasks_expire(status, older_than, limit)
        self.batches_ms.append((time.perf_counter() - started) * 1000.0)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def probe(store: Store, stop: asyncio.Event, samples: list[float]) -> None:
    """Create a task and time its claim, every PROBE_EVERY seconds, until ``stop``."""
    while not stop.is_set():
        await store.tasks_insert([new_row()], open_cap=None)
        samples.append(await timed(lambda: store.task_claim("probe", 1, per_user_cap=None)))
        await asyncio.sleep(PROBE_EVERY)


async def one(db: str, events: int) -> None:
    tasks = events // EVENTS_PER_TASK
    async with fw.database(db, "fw_ret") as url:
        store = await open_store(url)
        try:
            await store.migrate()
            log(f"{db}: filling {events:,} events over {tasks:,} tasks")
            started = time.perf_counter()
            await fill(url, tasks)
            fill_s = time.perf_counter() - started
            log(f"{db}: filled in {fill_s:.1f} s")
            before_mb = await size_mb(url)
            (page, _total) = await store.task_list(TaskQuery(limit=1))
            some = page[0].id
            before = await queries(store, some)
            baseline: list[float] = []
            stop = asyncio.Event()
            probing = asyncio.create_task(probe(store, stop, baseline))
            await asyncio.sleep(2.0)
            stop.set()
            await probing
            during: list[float] = []
            stop = asyncio.Event()
            timed_store = TimedStore(store)
            options = RetentionOptions(audit=0, budget=3600.0)
            retention = Retention(timed_store, options, "bench")  # type: ignore[arg-type]
            probing = asyncio.create_task(probe(store, stop, during))
            started = time.perf_counter()
            done = await retention.run_pass()
            pass_s = time.perf_counter() - started
            stop.set()
            await probing
            assert done is not None
            reclaim_ms: list[float] = []
            during_reclaim: list[float] = []
            stop = asyncio.Event()
            probing = asyncio.create_task(probe(store, stop, during_reclaim))
            while True:
                began = time.perf_counter()
                pages = await store.space_reclaim(options.reclaim_pages)
                reclaim_ms.append((time.perf_counter() - began) * 1000.0)
                if pages == 0:
                    break
            stop.set()
            await probing
            after_mb = await size_mb(url)
            left = await fw.sql(url, "SELECT count(*) FROM task_events")
            after = await queries(store, some)  # a recent task: kept
            vacuumed: dict[str, float] | None = None
            if db == "postgres":  # what autovacuum does within minutes of such a pass
                await fw.sql(url, "VACUUM ANALYZE")
                vacuumed = await queries(store, some)
        finally:
            await store.close()
    deleted = sum(done.tasks.values())
    emit(
        "retention",
        "falsework",
        "retention_pass_s",
        round(pass_s, 2),
        db=db,
        events=events,
        tasks=tasks,
        fill_s=round(fill_s, 1),
        tasks_deleted=deleted,
        events_deleted=done.events,
        events_left=int(left[0][0]),
        events_per_s=round(done.events / pass_s),
        batches=done.batches,
        batch=options.batch,
        batch_seconds=options.batch_seconds,
        batch_ms=latency_summary(timed_store.batches_ms),
        pages_reclaimed_in_pass=done.pages,
        reclaim_calls=len(reclaim_ms),
        reclaim_s=round(sum(reclaim_ms) / 1000.0, 2),
        reclaim_call_ms=latency_summary(reclaim_ms),
        claim_ms_during_reclaim=latency_summary(during_reclaim),
        size_mb_before=before_mb,
        size_mb_after=after_mb,
        claim_ms_before=latency_summary(baseline),
        claim_ms_during=latency_summary(during),
        machine=machine(),
    )
    emit("retention", "falsework", "queries_ms", None, db=db, events=events, at=before)
    emit("retention", "falsework", "queries_ms_after", None, db=db, events=events, at=after)
    if vacuumed is not None:
        emit(
            "retention", "falsework", "queries_ms_vacuumed", None, db=db, events=events, at=vacuumed
        )


async def measure(args: argparse.Namespace) -> None:
    dbs = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    events = 50_000 if args.quick else args.events
    for db in dbs:
        await one(db, events)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Retention at scale (issue 16)")
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
