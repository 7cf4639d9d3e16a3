"""The SQLite store: aiosqlite, WAL, one writer connection, a few readers.

Every write is a ``BEGIN IMMEDIATE`` transaction on the one writer connection
of this process (writers queue on a lock instead of spinning on SQLITE_BUSY;
other processes wait on ``busy_timeout``). The hot ones (a create's insert, a
claim, a worker's flush) run whole in one call (``_Executor.atomic``): a small one
on the event loop's own thread when the write lock is free at once (no hand-off at
all), else in the writer's thread, one hand-off there and back per transaction,
not one per statement.
Reads go to reader connections, which WAL lets run beside the writer. SQLAlchemy
and Alembic only create and migrate the tables (``engine/migrate.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from falsework.engine.codec import dumps, dumps_rows, format_ts, loads, parse_ts
from falsework.engine.lease import plan_writes, stale_outcome
from falsework.engine.migrate import outdated
from falsework.engine.models import (
    AuditEntry,
    AuditQuery,
    AuditRecord,
    Claim,
    ClusterFlag,
    Decode,
    Event,
    Expired,
    FinishedTask,
    Gauges,
    Heartbeat,
    Inserted,
    Lease,
    Mark,
    Marks,
    QueueOverview,
    Retried,
    ScaffoldRecord,
    Snapshot,
    StaleOutcome,
    Task,
    TaskQuery,
    TaskRow,
    TroubledTask,
    WorkerInfo,
    WriteBatch,
    record_of,
)
from falsework.engine.notify import Hub, Listener
from falsework.engine.options import StoreOptions
from falsework.engine.queries import load as load_queries
from falsework.errors import DatabaseError, DatabaseUnavailableError, FalseworkError
from falsework.taskio import Outcome, Wording

Row = sqlite3.Row
T = TypeVar("T")
log = logging.getLogger("falsework.engine")

# A hot write runs on the event loop's thread (``_Executor.atomic``'s ``inline``)
# when it touches at most this many tasks (and four times as many events) and
# sends at most INLINE_BYTES of text (a create's specs, a flush's events and step
# state: a caller's values may be megabytes): a few milliseconds at most, against a
# hand-off's 0.2-1.4 ms under load.
INLINE_ROWS = 64
INLINE_BYTES = 1024 * 1024

# What sqlite3 says when the file cannot be used right now (another process holds
# the lock past busy_timeout, the disk is gone or full, the file is missing):
# retrying later may succeed. Any other error (malformed JSON, a constraint) is the
# statement's fault.
_UNAVAILABLE = re.compile(
    r"locked|busy|unable to open|disk i/o|disk is full|readonly|no active connection"
    r"|connection closed|closed database",
    re.IGNORECASE,
)


BUSY_TIMEOUT_MS = 30_000  # how long a write waits for another process's lock
# The writer's commits between two checkpoints of the WAL into the database file.
# The writer's own automatic checkpoint is off: it would run inside a commit, and
# with a commit on the event loop's thread (``atomic``'s inline path), its fsyncs
# would hold the loop. This one runs in the writer's thread, at its turn.
CHECKPOINT_EVERY = 256


def is_lost(exc: BaseException) -> bool:
    # (ProgrammingError: the writer's own connection, used inline, closed meanwhile)
    if isinstance(exc, sqlite3.OperationalError | sqlite3.ProgrammingError | ValueError | OSError):
        return bool(_UNAVAILABLE.search(str(exc))) or isinstance(exc, OSError)
    return False


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


class WriterTurns:
    """Whose write transaction runs next on SQLite's one writer: in the order asked,
    except that an *urgent* one (a create's insert, which someone waits on for an
    answer) goes ahead of the others (the worker's claims and flushes, the janitor's
    passes), at most one such pass in a row while others wait, so neither kind waits
    for long. An ``asyncio.Lock`` in all but the order; a caller cancelled while it
    waits leaves the line, one cancelled as its turn came hands the turn on."""

    def __init__(self) -> None:
        self._busy = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._other: deque[asyncio.Future[None]] = deque()
        self._passed = False  # the last turn went to an urgent one ahead of others

    @asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._busy:  # nobody holds it, so nobody waits for it either
            self._busy = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._urgent if urgent else self._other
        line.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the turn came with the cancel: pass it on
            else:
                with contextlib.suppress(ValueError):
                    line.remove(waiter)
            raise

    def _release(self) -> None:
        while True:
            if self._urgent and not (self._passed and self._other):
                self._passed = bool(self._other)
                waiter = self._urgent.popleft()
            elif self._other:
                self._passed = False
                waiter = self._other.popleft()
            else:
                self._busy = False
                return
            if not waiter.done():
                waiter.set_result(None)  # the turn is handed over: still busy
                return


class _Executor:
    """Runs the named queries of ``sql/sqlite.sql``: writes on the writer inside
    ``BEGIN IMMEDIATE``, reads on the readers; wraps the driver's errors in ours
    (the one boundary where sqlite3's exceptions exist)."""

    def __init__(self, path: str, shown: str, writer: aiosqlite.Connection, readers: int) -> None:
        self._path = path
        self._shown = shown
        self._writer = writer
        self._turns = WriterTurns()
        self._sql = load_queries("sqlite")
        self._idle: list[aiosqlite.Connection] = []
        self._open: list[aiosqlite.Connection] = []
        self._readers = asyncio.Semaphore(readers)
        self._closed = False
        self._commits = 0  # since the last checkpoint
        self._checkpointing: asyncio.Task[None] | None = None
        # Calls handed to the writer's thread that have not ended there (one of a
        # cancelled caller goes on to its end): an inline transaction runs only
        # when there are none, so the connection is never used by two threads.
        self._handed = 0
        self._handed_lock = threading.Lock()
        handing = writer._execute

        async def handed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            def call() -> Any:
                try:
                    return fn(*args, **kwargs)
                finally:
                    with self._handed_lock:
                        self._handed -= 1

            with self._handed_lock:
                self._handed += 1
            return await handing(call)  # type: ignore[no-untyped-call]

        writer._execute = handed  # type: ignore[method-assign]

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseUnavailableError(f"The store of {self._shown} is closed")

    def wrap(self, exc: Exception) -> Exception:
        if isinstance(exc, FalseworkError):
            return exc
        if is_lost(exc):
            return DatabaseUnavailableError(
                f"Cannot use the database at {self._shown}: {_one_line(exc)}"
            )
        if isinstance(exc, sqlite3.Error):
            return DatabaseError(f"The database refused a statement: {_one_line(exc)}")
        return exc

    async def read(self, name: str, **params: Any) -> list[Row]:
        self._check_open()
        async with self._readers:
            conn = self._idle.pop() if self._idle else await self._reader()
            try:
                rows = await conn.execute_fetchall(self._sql[name], params)
            except Exception as exc:
                raise self.wrap(exc) from exc
            finally:
                self._idle.append(conn)
        return list(rows)  # type: ignore[arg-type]

    async def _reader(self) -> aiosqlite.Connection:
        try:
            conn = await connect(self._path, reader=True)
        except Exception as exc:
            raise self.wrap(exc) from exc
        self._open.append(conn)
        return conn

    async def write(self, name: str, **params: Any) -> list[Row]:
        return await self.atomic(lambda tx: tx.fetch(name, **params))

    async def atomic(
        self, body: Callable[[_SyncTx], T], *, urgent: bool = False, inline: bool = False
    ) -> T:
        """``body``'s statements in one ``BEGIN IMMEDIATE`` ... ``COMMIT``, the whole
        of it run as one call. Each hand-off to the writer's thread and back cost the
        event loop ~16 us of CPU and the transaction its latency; a statement at a
        time, with BEGIN and COMMIT, a create's insert took four, a flush up to eight
        (issue 17, target 3). ``body`` only runs statements and computes (it must not
        touch the event loop). A caller cancelled before the body's end gets its
        transaction rolled back, as in ``transaction``; one cancelled later finds it
        committed (so does a caller of ``transaction`` cancelled while its COMMIT
        runs). ``urgent``: someone waits on it for an answer (``WriterTurns``).

        ``inline``: the caller bounds the body's work (a few rows; ``INLINE_ROWS``).
        When the write lock is free at once, the body then runs on the event loop's
        own thread, with no hand-off at all: under load a hand-off there and back
        took 0.2-1.4 ms, several times such a body. When another process holds the
        lock, it waits for it in the writer's thread like any other write, so the
        loop never waits on a lock; so it does while the writer's thread still has
        work handed to it (a cancelled caller's body runs on to its rollback)."""
        self._check_open()
        abandoned = threading.Event()

        def run(conn: sqlite3.Connection, begun: bool) -> T:
            if not begun:
                conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(_SyncTx(conn, self._sql))
                if abandoned.is_set():
                    raise _Abandoned  # not CancelledError: a Future refuses that one
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
                raise
            return result

        ran_inline = False
        async with self._turns.turn(urgent=urgent):
            conn: sqlite3.Connection = self._writer._conn  # aiosqlite's connection
            try:
                if inline and not self._handed and _begin_at_once(conn):
                    ran_inline = True
                    result = run(conn, True)
                else:
                    result = await self._writer._execute(run, conn, False)  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                abandoned.set()
                raise
            except Exception as exc:
                raise self.wrap(exc) from exc
        self._committed()
        if ran_inline:
            # It never waited: let the loop's other tasks run before the caller goes
            # on, as after a hand-off (a loop of inline claims would hold it).
            await asyncio.sleep(0)
        return result

    def _committed(self) -> None:
        """Counts the writer's commits; every ``CHECKPOINT_EVERY`` one, the WAL is
        checkpointed in the writer's thread at its turn."""
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self._checkpointing is None:
            self._commits = 0
            self._checkpointing = asyncio.get_running_loop().create_task(
                self._checkpoint(), name="falsework-sqlite-checkpoint"
            )

    async def _checkpoint(self) -> None:
        try:
            async with self._turns.turn():
                if not self._closed:
                    # PASSIVE: copies what no reader still needs, waits for nobody
                    await self._writer.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # the next one tries again
            log.warning("SQLite WAL checkpoint failed: %s", _one_line(exc))
        finally:
            self._checkpointing = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Tx]:
        self._check_open()
        async with self._turns.turn():
            try:
                await self._writer.execute("BEGIN IMMEDIATE")
                yield _Tx(self._writer, self)
                await self._writer.execute("COMMIT")
                self._committed()
            except BaseException as exc:
                # also after a cancel: the statements queued before it still run,
                # so the transaction is closed before the next writer begins
                with contextlib.suppress(Exception):
                    await self._writer.execute("ROLLBACK")
                if isinstance(exc, Exception):
                    raise self.wrap(exc) from exc
                raise

    async def close(self) -> None:
        self._closed = True
        if self._checkpointing is not None:
            self._checkpointing.cancel()
            with contextlib.suppress(BaseException):
                await self._checkpointing
        for conn in [*self._open, self._writer]:
            with contextlib.suppress(Exception):
                await conn.close()


def _text_size(batch: WriteBatch) -> int:
    """The characters of JSON a flush writes: its events, step state and checkpoints."""
    size = sum(len(event[3]) for event in batch.events)
    for values in (*batch.steps.values(), *batch.checkpoints.values()):
        size += sum(len(value) for value in values.values())
    return size


def _begin_at_once(conn: sqlite3.Connection) -> bool:
    """``BEGIN IMMEDIATE`` without waiting for the write lock: False when another
    process holds it (nothing begun then)."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return False
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return True


class _Abandoned(Exception):
    """The caller of an ``atomic`` body went away before its end: roll it back."""


class _SyncTx:
    """The statements of an ``_Executor.atomic`` body, run in the writer's thread
    (errors are wrapped by ``atomic``)."""

    __slots__ = ("_conn", "_sql")

    def __init__(self, conn: sqlite3.Connection, sql: dict[str, str]) -> None:
        self._conn = conn
        self._sql = sql

    def fetch(self, name: str, **params: Any) -> list[Row]:
        return self._conn.execute(self._sql[name], params).fetchall()


class _Tx:
    def __init__(self, conn: aiosqlite.Connection, executor: _Executor) -> None:
        self._conn = conn
        self._executor = executor

    async def fetch(self, name: str, **params: Any) -> list[Row]:
        try:
            rows = await self._conn.execute_fetchall(self._executor._sql[name], params)
        except Exception as exc:
            raise self._executor.wrap(exc) from exc
        return list(rows)  # type: ignore[arg-type]

    async def fetch_count(self, name: str, **params: Any) -> int:
        """Run a write and return how many rows it changed (no RETURNING rows read)."""
        try:
            async with self._conn.execute(self._executor._sql[name], params) as cursor:
                return int(cursor.rowcount)
        except Exception as exc:
            raise self._executor.wrap(exc) from exc


async def connect(path: str, *, reader: bool = False) -> aiosqlite.Connection:
    # isolation_level None: no implicit BEGIN from the sqlite3 module; the
    # executor issues BEGIN IMMEDIATE for every write.
    # The writer may run a transaction on the event loop's thread (``atomic``);
    # WriterTurns lets one transaction at a time use it, in whichever thread.
    conn = await aiosqlite.connect(path, isolation_level=None, check_same_thread=reader)
    conn.row_factory = sqlite3.Row
    if reader:
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA query_only=1")
    else:
        # Before WAL, which writes the header: a new file is made with incremental
        # vacuum, so retention can give freed pages back (an old file keeps its mode).
        await conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA wal_autocheckpoint=0")  # see CHECKPOINT_EVERY
        # The writer's statements keep their temporary data in memory: a claim's
        # returned rows and a flush's sorted events, bounded by the batch caps (a
        # fair claim's ranking, ~60 bytes per open task). On disk, SQLite made and
        # deleted a file in the temporary folder for about one statement in 25
        # under load (docs/benchmarks.md, "SQLite's temporary files"). The reader
        # keeps the default: a listing sorted by an unindexed column at a large
        # offset may sort many rows, and spills those to disk.
        await conn.execute("PRAGMA temp_store=MEMORY")
    return conn


# SQLite hands back timestamps and JSON as text
_DECODE = Decode(ts=parse_ts, json=loads)


def _opt_ts(value: str | None) -> Any:
    return parse_ts(value) if value is not None else None


def _task(r: Row) -> Task:
    return Task(
        id=r["id"],
        spec=loads(r["spec"]),
        status=r["status"],
        created_by=r["created_by"],
        created_at=parse_ts(r["created_at"]),
        last_heartbeat_at=_opt_ts(r["heartbeat_at"]),
        attempt=r["attempt"],
        priority=r["priority"],
        run_after=_opt_ts(r["run_after"]),
        recovery=r["recovery"],
        claimed_by=r["claimed_by"],
        cancel_requested=bool(r["cancel_requested"]),
        finished_at=_opt_ts(r["finished_at"]),
        step_state=loads(r["step_state"]),
    )


def _event(r: Row) -> Event:
    return Event(
        id=r["id"],
        task_id=r["task_id"],
        type=r["type"],
        body=loads(r["body"]),
        created_at=parse_ts(r["created_at"]),
        is_task_recoverable=r["recovery"] != "none",
    )


def _claim(r: Row) -> Claim:
    return Claim(
        id=r["id"],
        spec=loads(r["spec"]),
        sealed_secrets=r["secrets"],
        created_by=r["created_by"],
        attempt=r["attempt"],
        claim_token=r["claim_token"],
        step_state=loads(r["step_state"]),
        checkpoints=loads(r["checkpoints"]),
        priority=r["priority"],
        recovery=r["recovery"],
        created_at=parse_ts(r["created_at"]),
    )


def _task_rows(rows: Sequence[TaskRow]) -> str:
    return dumps_rows(
        [
            [
                r.id,
                r.spec,
                r.sealed_secrets,
                r.created_by,
                r.priority,
                format_ts(r.run_after) if r.run_after else None,
                r.recovery,
                r.idempotency_key,
            ]
            for r in rows
        ]
    )


class SqliteStore:
    """The store contract (``engine/store.py``) on SQLite."""

    # one writer connection: a second flush would only queue behind the first
    parallel_writes = 1

    def __init__(
        self, db: _Executor, path: str, shown: str, options: StoreOptions | None = None
    ) -> None:
        self._db = db
        self._announce = (options or StoreOptions()).announce_finishes
        self._path = path
        self.key = str(Path(path).resolve())
        self._shown = shown

    @classmethod
    async def connect(cls, path: str, shown: str, options: StoreOptions) -> SqliteStore:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            writer = await connect(path)
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseUnavailableError(
                f"Cannot reach the database at {shown}: {_one_line(exc)}"
            ) from exc
        return cls(_Executor(path, shown, writer, options.readers), path, shown, options)

    def listener(self, hub: Hub) -> Listener | None:
        return None  # writers in other processes cannot signal this one: it polls

    async def migrate(self) -> None:
        if not await outdated(self.schema_revision):
            return  # at the newest revision: SQLAlchemy and Alembic stay unimported
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        from falsework.engine.migrate import upgrade as migrate_schema

        engine = create_async_engine(f"sqlite+aiosqlite:///{self._path}", poolclass=NullPool)
        try:
            await migrate_schema(engine)
        except Exception as exc:
            raise self._db.wrap(exc) from exc
        finally:
            await engine.dispose()

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.read("ping")

    async def schema_revision(self) -> str:
        return str((await self._db.read("schema_revision"))[0][0])

    # -- tasks ---------------------------------------------------------------------
    async def tasks_insert(
        self, rows: Sequence[TaskRow], *, open_cap: int | None
    ) -> list[Inserted]:
        # the rows, the lookup of taken keys and the acts: one transaction, one commit
        encoded = _task_rows(rows)

        def insert(tx: _SyncTx) -> list[Inserted]:
            found = tx.fetch("tasks_insert", rows=encoded, cap=open_cap)
            inserted = {r["id"] for r in found}
            keys = [r.idempotency_key for r in rows if r.id not in inserted and r.idempotency_key]
            existing: dict[str, str] = {}
            if keys:
                existing = {r[0]: r[1] for r in tx.fetch("task_ids_by_keys", keys=dumps(keys))}
            out = []
            for r in rows:
                if r.id in inserted:
                    out.append(Inserted("new", r.id))
                elif (found_id := existing.get(r.idempotency_key or "")) is not None:
                    out.append(Inserted("existing", found_id))
                else:
                    out.append(Inserted("refused", None))
            acts = [
                [r.act.actor, r.act.action, done.id, r.act.detail]
                for r, done in zip(rows, out, strict=True)
                if r.act is not None and done.id is not None
            ]
            if acts:
                tx.fetch("audit_insert", rows=dumps(acts))
            return out

        small = len(rows) <= INLINE_ROWS and len(encoded) <= INLINE_BYTES
        return await self._db.atomic(insert, urgent=True, inline=small)  # an answer waits

    async def task_get(self, task_id: str) -> Task | None:
        rows = await self._db.read("task_get", id=task_id)
        return _task(rows[0]) if rows else None

    async def task_status(self, task_id: str) -> str | None:
        rows = await self._db.read("task_status", id=task_id)
        return str(rows[0][0]) if rows else None

    async def tasks_status(self, task_ids: Sequence[str]) -> dict[str, str]:
        rows = await self._db.read("tasks_status", ids=dumps(list(task_ids)))
        return {str(r[0]): str(r[1]) for r in rows}

    async def task_secrets(self, task_id: str) -> str | None:
        rows = await self._db.read("task_secrets", id=task_id)
        return rows[0][0] if rows else None

    async def task_list(self, query: TaskQuery) -> tuple[list[Task], int]:
        statuses = dumps(list(query.statuses)) if query.statuses else None
        rows = await self._db.read(
            query.order.query,
            created_by=query.created_by,
            statuses=statuses,
            limit=query.limit,
            offset=query.offset,
        )
        total = await self._db.read("task_count", created_by=query.created_by, statuses=statuses)
        return [_task(r) for r in rows], int(total[0][0])

    async def tasks_count_claimable(self) -> int:
        return int((await self._db.read("tasks_count_claimable"))[0][0])

    async def task_cancel(self, task_id: str, outcome: Outcome) -> str | None:
        async with self._db.transaction() as tx:
            rows = await tx.fetch("task_lock", id=task_id)
            status: str | None = rows[0]["status"] if rows else None
            if status == "open":
                await tx.fetch("task_cancel_open", id=task_id, announce=self._announce)
                event = [task_id, outcome.event_type, dumps(outcome.body)]
                await tx.fetch("events_insert", rows=dumps([event]))
            elif status == "processing":
                await tx.fetch("task_request_cancel", id=task_id)
        return status

    async def task_retry(self, task_id: str, *, open_cap: int | None) -> Retried:
        async with self._db.transaction() as tx:
            rows = await tx.fetch("task_lock", id=task_id)
            if not rows:
                return Retried(None)
            status = rows[0]["status"]
            if status not in ("failed", "cancelled"):
                return Retried(status)
            if open_cap is None:
                await tx.fetch("task_retry", id=task_id)
            elif not await tx.fetch("task_retry_capped", id=task_id, cap=open_cap):
                return Retried(status, refused=True)
        return Retried(status)

    async def task_claim(self, worker_id: str, n: int, *, per_user_cap: int | None) -> list[Claim]:
        def claim(count: int) -> Callable[[_SyncTx], list[Row]]:
            def body(tx: _SyncTx) -> list[Row]:
                if per_user_cap is None:
                    return tx.fetch("task_claim", worker=worker_id, n=count)
                return tx.fetch("task_claim_fair", worker=worker_id, n=count, cap=per_user_cap)

            return body

        if per_user_cap is not None:
            # A fair claim ranks every open task: its cost grows with the queue (a
            # flood by one user included), so never on the event loop's thread.
            rows = await self._db.atomic(claim(n))
        else:
            # A worker asks for all its free slots (up to 500) and mostly finds a few
            # tasks: the first INLINE_ROWS are claimed inline (``atomic``), the rest,
            # when the queue had that many, in a second transaction in the writer's
            # thread.
            first = min(n, INLINE_ROWS)
            rows = await self._db.atomic(claim(first), inline=True)
            if len(rows) == first < n:
                rows += await self._db.atomic(claim(n - first))
        # RETURNING gives no order: hand tasks out in queue order
        rows.sort(key=lambda r: (-r["priority"], r["seq"]))
        return [_claim(r) for r in rows]

    async def batch_apply(self, batch: WriteBatch) -> set[str]:
        def apply(tx: _SyncTx) -> set[str]:
            if not tx.fetch("flush_insert", flush=batch.flush_id):
                # written before (its outcome was lost on the way back): a no-op
                done = tx.fetch("flush_done", flush=batch.flush_id)
                return set(loads(done[0][0] or "[]")) if done else set()
            rows = tx.fetch("tasks_lock_owned", ids=dumps(sorted(batch.tokens)))
            plan = plan_writes(batch, {r["id"]: (r["claim_token"], r["status"]) for r in rows})
            if plan.refused:
                refused = dumps(sorted(plan.refused))
                tx.fetch("flush_refused", flush=batch.flush_id, refused=refused)
            if plan.events:
                tx.fetch("events_insert", rows=dumps_rows([list(e) for e in plan.events]))
            ids = plan.state_task_ids
            if ids:
                # read, merge, write: SQLite has no top-level JSON merge (json_patch
                # drops nulls), and this transaction is the only writer anyway
                state = {
                    r["id"]: (loads(r["step_state"]), loads(r["checkpoints"]))
                    for r in tx.fetch("tasks_read_state", ids=dumps(ids))
                }
                try:
                    for tid, key, value in plan.steps:
                        state[tid][0][key] = loads(value)
                    for tid, key, value in plan.checkpoints:
                        state[tid][1][key] = loads(value)
                except ValueError as exc:  # as Postgres's cast to jsonb refuses it
                    raise DatabaseError(f"The database refused a statement: {exc}") from exc
                merged = [[tid, steps, cps] for tid, (steps, cps) in state.items()]
                tx.fetch("tasks_write_state", rows=dumps(merged))
            ends = [list(f) for f in plan.finishes] + [[tid, "open", True] for tid in plan.releases]
            if ends:
                tx.fetch("tasks_end", rows=dumps_rows(ends), announce=self._announce)
            return set(plan.refused)

        small = (
            len(batch.tokens) <= INLINE_ROWS
            and len(batch.events) <= 4 * INLINE_ROWS
            and _text_size(batch) <= INLINE_BYTES
        )
        return await self._db.atomic(apply, inline=small)

    async def tasks_recover_stale(
        self, older_than: float, wording: Wording
    ) -> list[tuple[str, StaleOutcome]]:
        async with self._db.transaction() as tx:
            stale = await tx.fetch("tasks_select_stale", older_than=float(older_than))
            if not stale:
                return []
            outcome = [
                (r["id"], stale_outcome(r["recovery"], bool(r["cancel_requested"]))) for r in stale
            ]
            reopen = [tid for tid, o in outcome if o == "recovered"]
            if reopen:
                await tx.fetch("tasks_reopen", ids=dumps(reopen))
            finals = {"failed": wording.abandoned(), "cancelled": wording.cancelled()}
            ends = [[tid, finals[o].status, True] for tid, o in outcome if o != "recovered"]
            if ends:
                await tx.fetch("tasks_end", rows=dumps(ends), announce=self._announce)
            bodies = {o: [final.event_type, dumps(final.body)] for o, final in finals.items()}
            bodies["recovered"] = ["recovered", dumps(wording.recovered())]
            events = [[tid, *bodies[o]] for tid, o in outcome]
            await tx.fetch("events_insert", rows=dumps(events))
        return outcome

    async def tasks_erase_secrets(self, older_than: float) -> int:
        return len(await self._db.write("tasks_erase_secrets", older_than=float(older_than)))

    async def tasks_expire(self, status: str, older_than: float, limit: int) -> Expired:
        async with self._db.transaction() as tx:
            found = await tx.fetch(
                "tasks_select_expired", status=status, older_than=float(older_than), limit=limit
            )
            if not found:
                return Expired(0, 0)
            ids = dumps([r["id"] for r in found])
            events = await tx.fetch_count("events_delete_of_tasks", ids=ids)
            tasks = await tx.fetch_count("tasks_delete", ids=ids)
        return Expired(tasks, events)

    async def task_keep(self, task_id: str, keep: bool) -> bool:
        return bool(await self._db.write("task_keep", id=task_id, keep=keep))

    async def space_reclaim(self, pages: int) -> int:
        if int((await self._db.read("space_auto_vacuum"))[0][0]) != 2:
            return 0  # a file made before incremental vacuum: see `falsework db vacuum`
        freed = 0
        while freed < pages:
            before = int((await self._db.read("space_free_pages"))[0][0])
            if before == 0:
                break
            await self._db.write("space_vacuum_step")
            after = int((await self._db.read("space_free_pages"))[0][0])
            if after >= before:
                break
            freed += before - after
        return freed

    # -- events --------------------------------------------------------------------
    async def events_after(self, task_id: str, after: int, limit: int = 1000) -> list[Event]:
        rows = await self._db.read("events_after", task_id=task_id, after=after, limit=limit)
        return [_event(r) for r in rows]

    async def events_after_many(
        self, wanted: Sequence[tuple[str, int]], limit: int = 1000
    ) -> list[list[Event]]:
        out: list[list[Event]] = [[] for _ in wanted]
        if not wanted:
            return out
        rows = await self._db.read(
            "events_after_many", wanted=dumps([list(w) for w in wanted]), limit=limit
        )
        for r in rows:
            out[r["ord"] - 1].append(_event(r))
        return out

    # -- workers -------------------------------------------------------------------
    async def worker_register(self, worker_id: str, host: str, pid: int, limit: int) -> None:
        await self._db.write("worker_insert", id=worker_id, host=host, pid=pid, limit=limit)

    async def worker_heartbeat(
        self,
        worker_id: str,
        task_ids: Sequence[str],
        new_limit: int | None,
        *,
        running: int | None = None,
    ) -> Heartbeat:
        async with self._db.transaction() as tx:
            owned: dict[str, Lease] = {}
            if task_ids:
                rows = await tx.fetch(
                    "task_heartbeat", worker=worker_id, ids=dumps(sorted(task_ids))
                )
                owned = {r[0]: Lease(r[1], bool(r[2])) for r in rows}
            me = await tx.fetch(
                "worker_heartbeat",
                id=worker_id,
                running=len(task_ids) if running is None else running,
                new_limit=new_limit,
            )
        return Heartbeat(owned, me[0][0] if me else None)

    async def worker_list(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                id=r["id"],
                host=r["host"],
                pid=r["pid"],
                limit=r["concurrency_limit"],
                running=r["running"],
                started_at=parse_ts(r["started_at"]),
                heartbeat_at=parse_ts(r["heartbeat_at"]),
                heartbeat_age=float(r["age"]),
            )
            for r in await self._db.read("worker_list")
        ]

    async def worker_set_limit(self, worker_id: str, limit: int) -> bool:
        return bool(await self._db.write("worker_set_limit", id=worker_id, limit=limit))

    async def worker_delete(self, worker_id: str) -> None:
        await self._db.write("worker_delete", id=worker_id)

    async def workers_prune(self, older_than: float) -> int:
        return len(await self._db.write("workers_prune", older_than=float(older_than)))

    # -- one node at a time ---------------------------------------------------------
    async def lease_take(self, name: str, holder: str, ttl: float) -> bool:
        rows = await self._db.write("lease_take", lease=name, holder=holder, ttl=float(ttl))
        return bool(rows)

    # -- cluster metrics -----------------------------------------------------------
    async def metrics_gauges(self, alive_within: float) -> Gauges:
        counts = await self._db.read("metrics_task_counts")
        (oldest,) = await self._db.read("metrics_oldest_open")
        (workers,) = await self._db.read("metrics_workers", alive_within=float(alive_within))
        return Gauges.of([tuple(r) for r in counts], oldest[0], workers[0], workers[1])

    async def metrics_marks(self, after: int | None, lag: float, limit: int) -> Marks:
        if after is None:
            return Marks(int((await self._db.read("metrics_last_event"))[0][0]), [])
        found = await self._db.read("metrics_scan_end", after=after, lag=float(lag), limit=limit)
        until = int(found[0][0])
        if until <= after:
            return Marks(after, [])
        rows = await self._db.read("metrics_marks", after=after, until=until)
        return Marks(until, [_mark(r) for r in rows])

    async def metrics_snapshot_get(self, name: str) -> Snapshot | None:
        rows = await self._db.read("metrics_snapshot_get", snapshot=name)
        if not rows:
            return None
        r = rows[0]
        return Snapshot(int(r["last_event_id"]), loads(r["body"]), max(0.0, float(r["age"])))

    async def metrics_snapshot_put(
        self, name: str, expected: int | None, last_event_id: int, body: str
    ) -> bool:
        rows = await self._db.write(
            "metrics_snapshot_put",
            snapshot=name,
            expected=expected,
            last_event_id=last_event_id,
            body=body,
        )
        return bool(rows)

    async def flushes_prune(self, older_than: float) -> int:
        return len(await self._db.write("flushes_prune", older_than=float(older_than)))

    # -- the audit trail -----------------------------------------------------------
    async def audit_insert(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            rows = [[e.actor, e.action, e.target, e.detail] for e in entries]
            await self._db.write("audit_insert", rows=dumps(rows))

    async def scaffold_upsert(self, record: ScaffoldRecord) -> None:
        await self._db.write(
            "scaffold_upsert",
            repository=record.repository,
            template_ref=record.template_ref,
            version=record.version,
            record=dumps(record.record),
            task_id=record.task_id,
            created_by=record.created_by,
        )

    async def scaffold_list(
        self, template_ref: str | None, limit: int, offset: int = 0
    ) -> list[ScaffoldRecord]:
        rows = await self._db.read(
            "scaffold_list", template_ref=template_ref, limit=limit, offset=offset
        )
        return [record_of(ScaffoldRecord, r, _DECODE) for r in rows]

    async def scaffold_get(self, repository: str) -> ScaffoldRecord | None:
        rows = await self._db.read("scaffold_get", repository=repository)
        return record_of(ScaffoldRecord, rows[0], _DECODE) if rows else None

    async def audit_list(self, query: AuditQuery) -> list[AuditRecord]:
        rows = await self._db.read(
            "audit_list",
            actor=query.actor,
            action=query.action,
            since=format_ts(query.since) if query.since is not None else None,
            before=query.before,
            limit=query.limit,
        )
        return [record_of(AuditRecord, r, _DECODE) for r in rows]

    # -- the webhooks' outbox ------------------------------------------------------
    async def tasks_unhooked(self, limit: int) -> list[FinishedTask]:
        rows = await self._db.read("tasks_unhooked", limit=limit)
        return [
            FinishedTask(_task(r), loads(r["final_body"]) if r["final_body"] else None)
            for r in rows
        ]

    async def tasks_mark_hooked(self, marks: Sequence[tuple[str, datetime]]) -> None:
        if marks:
            rows = [[tid, format_ts(at)] for tid, at in marks]
            await self._db.write("tasks_mark_hooked", rows=dumps(rows))

    async def event_append(self, task_id: str, type: str, body: str) -> bool:
        return bool(await self._db.write("event_append", task_id=task_id, type=type, body=body))

    # -- cluster switches and the admin's view -------------------------------------
    async def flag_set(self, name: str, detail: str, set_by: str | None) -> None:
        await self._db.write("flag_set", flag=name, detail=detail, set_by=set_by)

    async def flag_clear(self, name: str) -> bool:
        return bool(await self._db.write("flag_clear", flag=name))

    async def flags_list(self) -> list[ClusterFlag]:
        rows = await self._db.read("flags_list")
        return [record_of(ClusterFlag, r, _DECODE) for r in rows]

    async def queue_overview(self, stale_after: float) -> QueueOverview:
        (r,) = await self._db.read("queue_overview", stale_after=float(stale_after))
        return QueueOverview.of(r)

    async def tasks_troubled(self, stale_after: float, limit: int) -> list[TroubledTask]:
        rows = await self._db.read("tasks_troubled", stale_after=float(stale_after), limit=limit)
        return [record_of(TroubledTask, r, _DECODE) for r in rows]

    async def audit_expire(self, older_than: float, limit: int) -> int:
        rows = await self._db.write("audit_expire", older_than=float(older_than), limit=limit)
        return len(rows)


def _mark(r: Row) -> Mark:
    started = r["started_at"]
    seconds = None
    if started is not None:
        seconds = (parse_ts(r["ended_at"]) - parse_ts(started)).total_seconds()
    return Mark(r["id"], r["kind"], r["status"], r["label"], seconds)


# -- backups (engine/backup.py) --------------------------------------------------------
def copy_database(source: Path, target: Path) -> None:
    """Copy the database at ``source`` to ``target`` with SQLite's online backup API
    (a consistent snapshot while others write), through a file beside ``target``
    renamed into place, so ``target`` is never half written."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        with (
            contextlib.closing(sqlite3.connect(f"file:{source}?mode=rw", uri=True)) as src,
            contextlib.closing(sqlite3.connect(partial)) as dst,
        ):
            src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            src.backup(dst, pages=1024)  # steps of 1024 pages: writers get their turns
        partial.replace(target)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise DatabaseError(_one_line(exc)) from exc


def compact_database(path: Path) -> tuple[int, int, bool]:
    """Rewrite the file with incremental auto-vacuum on (``VACUUM``): its free pages
    go back to the file system, and from then on retention gives back what it frees.
    Returns the size before and after, and whether the mode was off before. VACUUM
    holds the write lock while it runs: other processes wait (``busy_timeout``)."""
    if not path.is_file():
        raise DatabaseError(f"No SQLite database at {path}")
    before = path.stat().st_size
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
        ) as conn:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            was_off = conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise DatabaseError(_one_line(exc)) from exc
    return before, path.stat().st_size, was_off


def is_falsework_database(path: Path) -> bool:
    """Whether ``path`` is a SQLite database holding the engine's tables."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True)) as conn:
            found = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('tasks', 'alembic_version')"
            ).fetchone()
    except sqlite3.Error:
        return False
    return found is not None and found[0] == 2
