"""The SQLite store's hot writes (a create's insert, a claim, a worker's flush) run
whole in the writer's thread, one hand-off each (``_Executor.atomic``), and keep
what a transaction promises: all of it or nothing, rolled back when its caller is
cancelled before its end, the writer free for the next one."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from falsework.engine import sqlite as sqlite_module
from falsework.engine.codec import dumps
from falsework.engine.factory import open_store
from falsework.engine.models import Finish, TaskRow, WriteBatch
from falsework.engine.sqlite import INLINE_BYTES, INLINE_ROWS, SqliteStore
from falsework.errors import DatabaseError


def _row() -> TaskRow:
    return TaskRow(str(uuid.uuid4()), dumps({"steps": []}), None, "user:a", 0, None, "resume", None)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'fw.db'}")
    await store.migrate()
    assert isinstance(store, SqliteStore)
    try:
        yield store
    finally:
        await store.close()


def _count_handoffs(store: SqliteStore) -> list[int]:
    writer = store._db._writer
    calls = [0]
    inner = writer._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await inner(fn, *args, **kwargs)

    writer._execute = counted  # type: ignore[method-assign]
    return calls


def _finishing(claimed: list[Any]) -> WriteBatch:
    batch = WriteBatch(tokens={c.id: c.claim_token for c in claimed})
    for c in claimed:
        batch.events.append((c.id, c.claim_token, "log", dumps({"message": "hi"})))
        batch.steps[c.id] = {"s": dumps({"status": "completed"})}
        batch.finishes.append(Finish(c.id, c.claim_token, "completed", "completion", "{}", False))
    return batch


@pytest.mark.parametrize("size", [3, INLINE_ROWS + 1])
async def test_the_hot_writes_run_whole_inline_when_small_else_in_one_handoff(
    sqlite: SqliteStore, size: int
) -> None:
    # small: on the event loop's thread, no hand-off; larger: one hand-off each (a
    # claim of more than INLINE_ROWS: its first INLINE_ROWS inline, the rest handed)
    handoffs = 0 if size <= INLINE_ROWS else 1
    calls = _count_handoffs(sqlite)
    rows = [_row() for _ in range(size)]
    assert [r.outcome for r in await sqlite.tasks_insert(rows, open_cap=None)] == ["new"] * size
    assert calls[0] == handoffs
    claimed = await sqlite.task_claim("w", size, per_user_cap=None)
    assert len(claimed) == size
    assert calls[0] == 2 * handoffs
    assert await sqlite.batch_apply(_finishing(claimed)) == set()
    assert calls[0] == 3 * handoffs
    for c in claimed:
        task = await sqlite.task_get(c.id)
        assert task is not None and task.status == "completed"
        assert task.step_state == {"s": {"status": "completed"}}
        (event, final) = await sqlite.events_after(c.id, 0, 10)
        assert (event.type, event.body) == ("log", {"message": "hi"})
        assert final.type == "completion"


async def test_a_few_large_writes_take_their_handoff(sqlite: SqliteStore) -> None:
    # a caller's values may be megabytes: a create or a flush of few rows but over
    # INLINE_BYTES of text is not run on the event loop's thread
    big = dumps({"steps": [], "values": {"blob": "x" * INLINE_BYTES}})
    calls = _count_handoffs(sqlite)
    row = TaskRow(str(uuid.uuid4()), big, None, "user:a", 0, None, "resume", None)
    assert [r.outcome for r in await sqlite.tasks_insert([row], open_cap=None)] == ["new"]
    assert calls[0] == 1
    (claimed,) = await sqlite.task_claim("w", 1, per_user_cap=None)
    assert calls[0] == 1  # a claim of one task: inline
    batch = _finishing([claimed])
    batch.events.append((claimed.id, claimed.claim_token, "log", dumps({"m": "y" * INLINE_BYTES})))
    assert await sqlite.batch_apply(batch) == set()
    assert calls[0] == 2
    task = await sqlite.task_get(claimed.id)
    assert task is not None and task.status == "completed"
    assert len(await sqlite.events_after(claimed.id, 0, 10)) == 3


async def test_a_fair_claim_takes_its_handoff(sqlite: SqliteStore) -> None:
    # it ranks every open task, so its cost grows with a flood: not on the loop
    await sqlite.tasks_insert([_row() for _ in range(5)], open_cap=None)
    calls = _count_handoffs(sqlite)
    claimed = await sqlite.task_claim("w", 5, per_user_cap=2)
    assert len(claimed) == 2  # all five are user:a's
    assert calls[0] == 1


async def test_a_claim_past_the_inline_rows_takes_the_queues_best_in_order(
    sqlite: SqliteStore,
) -> None:
    rows = [
        TaskRow(
            str(uuid.uuid4()), dumps({"steps": []}), None, "user:a", i % 3, None, "resume", None
        )
        for i in range(INLINE_ROWS + 40)
    ]
    await sqlite.tasks_insert(rows[:INLINE_ROWS], open_cap=None)
    await sqlite.tasks_insert(rows[INLINE_ROWS:], open_cap=None)
    queue = sorted(range(len(rows)), key=lambda i: (-rows[i].priority, i))  # priority, then age
    want = INLINE_ROWS + 20
    claimed = await sqlite.task_claim("w", want, per_user_cap=None)
    assert [c.id for c in claimed] == [rows[i].id for i in queue[:want]]
    rest = await sqlite.task_claim("w", want, per_user_cap=None)
    assert [c.id for c in rest] == [rows[i].id for i in queue[want:]]


async def test_a_small_write_waits_for_another_process_lock_off_the_event_loop(
    sqlite: SqliteStore, tmp_path: Path
) -> None:
    """Another process holds the write lock: a small create does not wait for it on
    the event loop's thread (which would stall every request), but in the writer's
    thread, and goes in once the lock is free."""
    calls = _count_handoffs(sqlite)
    other = sqlite3.connect(tmp_path / "fw.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    row = _row()
    try:
        create = asyncio.create_task(sqlite.tasks_insert([row], open_cap=None))
        ticks = 0
        for _ in range(20):  # the loop goes on meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not create.done()
    finally:
        other.execute("COMMIT")
        other.close()
    async with asyncio.timeout(10):
        assert [r.outcome for r in await create] == ["new"]
    assert calls[0] == 1
    assert await sqlite.task_get(row.id) is not None


async def test_the_writer_checkpoints_the_wal_itself(
    sqlite: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's automatic checkpoint is off (it would run inside a commit, on
    the event loop's thread for an inline one); every CHECKPOINT_EVERY commits
    the writer checkpoints in its own thread, so the WAL is reused, not grown."""
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 20)
    wal = tmp_path / "fw.db-wal"
    sizes = []
    for n in range(200):
        await sqlite.tasks_insert([_row()], open_cap=None)
        await asyncio.sleep(0)  # as the server's loop does between requests
        if n in (39, 199):
            sizes.append(wal.stat().st_size)
    # 200 commits without a checkpoint write five times the frames of 40
    assert sizes[1] <= 2 * sizes[0], sizes
    autocheckpoint = await sqlite._db._writer.execute_fetchall("PRAGMA wal_autocheckpoint")
    assert [tuple(r) for r in autocheckpoint] == [(0,)]


@pytest.mark.parametrize("inline", [False, True])
async def test_a_body_that_fails_writes_nothing(sqlite: SqliteStore, inline: bool) -> None:
    # in the writer's thread or on the event loop's: rolled back either way
    first = _row()

    def fails(tx: Any) -> None:
        tx.fetch("tasks_insert", rows=_rows_json([first]), cap=None)
        tx.fetch("tasks_insert", rows="not json", cap=None)

    with pytest.raises(DatabaseError):
        await sqlite._db.atomic(fails, inline=inline)
    assert await sqlite.task_get(first.id) is None
    # the writer goes on: the next transaction commits
    second = _row()
    assert [r.outcome for r in await sqlite.tasks_insert([second], open_cap=None)] == ["new"]


async def test_a_caller_cancelled_before_the_end_gets_its_writes_rolled_back(
    sqlite: SqliteStore,
) -> None:
    inside = threading.Event()
    go_on = threading.Event()
    first = _row()

    def slow(tx: Any) -> None:
        tx.fetch("tasks_insert", rows=_rows_json([first]), cap=None)
        inside.set()
        go_on.wait(10)

    writing = asyncio.ensure_future(sqlite._db.atomic(slow))
    assert await asyncio.to_thread(inside.wait, 10)
    writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writing
    go_on.set()
    # the next writer runs after the abandoned body, which did not commit
    second = _row()
    assert [r.outcome for r in await sqlite.tasks_insert([second], open_cap=None)] == ["new"]
    assert await sqlite.task_get(first.id) is None
    assert await sqlite.task_get(second.id) is not None


def _rows_json(rows: list[TaskRow]) -> str:
    from falsework.engine.sqlite import _task_rows

    return _task_rows(rows)


async def test_a_create_waiting_for_the_writer_goes_ahead_of_a_waiting_claim(
    sqlite: SqliteStore, tmp_path: Path
) -> None:
    """Another connection holds the database's write lock, so the writer's first
    transaction (a claim) blocks in its thread; a second claim, then a create's
    insert, queue for the writer. The insert goes first (``WriterTurns``): the
    second claim finds the created task, where in the order asked it found none."""
    other = sqlite3.connect(tmp_path / "fw.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.create_task(sqlite.task_claim("w1", 5, per_user_cap=None))
        await asyncio.sleep(0.2)  # its BEGIN IMMEDIATE waits on the lock (busy_timeout)
        second = asyncio.create_task(sqlite.task_claim("w2", 5, per_user_cap=None))
        await asyncio.sleep(0.05)
        row = _row()
        create = asyncio.create_task(sqlite.tasks_insert([row], open_cap=None))
        await asyncio.sleep(0.05)
        assert not (first.done() or second.done() or create.done())
    finally:
        other.execute("COMMIT")
        other.close()
    async with asyncio.timeout(10):
        assert await first == []
        assert [r.outcome for r in await create] == ["new"]
        assert [c.id for c in await second] == [row.id]


def _temp_files_seen(stop: threading.Event, seen: set[str]) -> None:
    # SQLite's temporary files are made, unlinked and kept open while a statement
    # runs: they show among the process's descriptors as ".../etilqs_* (deleted)"
    while not stop.is_set():
        for fd in Path("/proc/self/fd").iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if "etilqs_" in target:
                seen.add(target)


async def test_the_writer_keeps_a_large_claims_temporary_data_in_memory(
    sqlite: SqliteStore,
) -> None:
    # 200 tasks of ~40 KB specs: the claim's returned rows are ~8 MB, which SQLite
    # by default spills to a temporary file (made and deleted on every claim)
    big = dumps({"steps": [], "blob": "x" * 40_000})
    rows = [
        TaskRow(str(uuid.uuid4()), big, None, "user:a", 0, None, "resume", None) for _ in range(200)
    ]
    await sqlite.tasks_insert(rows, open_cap=None)
    stop, seen = threading.Event(), set[str]()
    watcher = threading.Thread(target=_temp_files_seen, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        claimed = await sqlite.task_claim("w", 200, per_user_cap=None)
    finally:
        stop.set()
        watcher.join()
    assert len(claimed) == 200
    assert seen == set()


async def test_a_reader_keeps_the_default_temporary_store(sqlite: SqliteStore) -> None:
    # a listing sorted by an unindexed column at a large offset may sort many rows:
    # a reader spills them to disk (the default), not into the server's memory
    assert await sqlite.task_status(str(uuid.uuid4())) is None  # a reader is open now
    (reader,) = sqlite._db._open
    writer_store = await sqlite._db._writer.execute_fetchall("PRAGMA temp_store")
    reader_store = await reader.execute_fetchall("PRAGMA temp_store")
    assert [tuple(r) for r in writer_store] == [(2,)]  # MEMORY
    assert [tuple(r) for r in reader_store] == [(0,)]  # DEFAULT: files past the cache
