"""The Postgres store: every query on one asyncpg pool, plus the LISTEN connection.

Single statements run in autocommit (one round trip: a create or a claim is
one statement with its NOTIFY inside); writes of several statements run in a
transaction. SQLAlchemy and Alembic only create and migrate the tables
(``engine/migrate.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from falsework.engine.codec import dumps, dumps_rows, loads, utc
from falsework.engine.feed import Inbox
from falsework.engine.lease import plan_writes, stale_outcome
from falsework.engine.migrate import outdated
from falsework.engine.models import (
    DECODED,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    Claim,
    ClusterFlag,
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
from falsework.engine.notify import Hub, Silence
from falsework.engine.options import StoreOptions
from falsework.engine.queries import load as load_queries
from falsework.errors import DatabaseError, DatabaseUnavailableError, FalseworkError
from falsework.taskio import Outcome, Wording

log = logging.getLogger("falsework.engine")

CHANNEL_TASKS = "falsework_tasks"
CHANNEL_CANCEL = "falsework_cancel"
CHANNEL_EVENTS = "falsework_events"

# Any constant shared by every Falsework process; only migrations take it.
_MIGRATION_LOCK = 727340000
# A listener whose process streams holds a share of each of these 16 advisory
# locks; a worker's flush that can take one of them (``batch_write``'s ``quiet``)
# knows nobody streams and sends no notification (docs/engine.md, "Wake-up").
# Each key is taken without waiting (a flush holds its key to its commit) and those
# not taken are asked for again shortly: the listener never blocks behind a flush.
# sql/postgres.sql's batch_write spells the lock and the key count too (test_feed
# holds them equal).
STREAMING_LOCK, STREAMING_KEYS = 727340003, 16
_STREAMING = (
    "SELECT k FROM unnest(CAST($1 AS integer[])) AS k "
    f"WHERE NOT pg_try_advisory_lock_shared({STREAMING_LOCK}, k)"
)
_NOT_STREAMING = (
    f"SELECT count(pg_advisory_unlock_shared({STREAMING_LOCK}, k)) "
    "FROM unnest(CAST($1 AS integer[])) AS k"
)
# How often a flush plans again because its tasks changed between its plan and
# its write (each time one of them was claimed, finished or recovered meanwhile).
MAX_REPLANS = 20

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# What asyncpg says when a connection is gone or going (pg_terminate_backend, a
# restart, a network drop, a pool closing under a caller).
_LOST_MESSAGE = re.compile(
    r"closed|closing|another operation|cannot switch to state|not initialized|terminat",
    re.IGNORECASE,
)
# asyncpg.Record (asyncpg ships no type information)
Row: TypeAlias = Any


class _OneLine(logging.Filter):
    """asyncpg's pool logs a traceback each time it fails to reopen its idle
    connection; while the database is away that is a traceback a second. One
    line with the reason says the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({_one_line(record.exc_info[1])})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLine())


def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters as asyncpg's ``$n``, and the names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


def is_lost(exc: BaseException) -> bool:
    """True when the connection (or the server) is gone: retrying on a fresh
    connection may succeed."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError  # class 08, and a client that cannot connect
        | asyncpg.exceptions.OperatorInterventionError  # shutdowns, statement timeouts
        | asyncpg.exceptions.InsufficientResourcesError  # too many connections
        # the server ended a session left idle inside a transaction
        | asyncpg.exceptions.IdleInTransactionSessionTimeoutError
        # a host that became a standby (failover): another host takes the writes
        | asyncpg.exceptions.ReadOnlySQLTransactionError
        # the driver's own state broke under it (pg_terminate_backend mid-call:
        # "cannot switch to state …; another operation is in progress"), or no
        # host of a multi-host URL accepts writes yet: the connection is unusable
        | asyncpg.exceptions.InternalClientError
        # refused while connecting: the database is gone, or the login no longer works
        | asyncpg.exceptions.InvalidCatalogNameError
        | asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    ):
        return True
    if isinstance(exc, asyncpg.exceptions.DataError):
        return False  # an argument the driver could not encode
    if isinstance(exc, asyncpg.InterfaceError):
        return bool(_LOST_MESSAGE.search(str(exc)))
    return False


def _driver_error(exc: Exception) -> bool:
    return isinstance(
        exc,
        asyncpg.PostgresError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.InternalClientError
        | OSError
        | TimeoutError,
    )


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


class _Executor:
    """Runs the named queries of ``sql/postgres.sql`` on the pool, and wraps the
    driver's errors in ours (the one boundary where asyncpg's exceptions exist)."""

    def __init__(self, pool: asyncpg.Pool, shown: str) -> None:
        self._pool = pool
        self._shown = shown
        self._sql = {name: positional(q) for name, q in load_queries("postgres").items()}

    def wrap(self, exc: Exception) -> Exception:
        if isinstance(exc, FalseworkError) or not _driver_error(exc):
            return exc
        if is_lost(exc):
            return DatabaseUnavailableError(f"Lost the database at {self._shown}: {_one_line(exc)}")
        return DatabaseError(f"The database refused a statement: {_one_line(exc)}")

    def args(self, name: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
        sql, names = self._sql[name]
        return sql, [params[n] for n in names]

    async def fetch(self, name: str, **params: Any) -> list[Row]:
        """One statement in autocommit."""
        sql, args = self.args(name, params)
        try:
            async with self._pool.acquire() as conn:
                try:
                    rows: list[Row] = await conn.fetch(sql, *args)
                except Exception as exc:
                    if _driver_error(exc) and is_lost(exc):
                        # a timed-out or broken connection is not pooled again
                        conn.terminate()
                    raise
        except Exception as exc:
            raise self.wrap(exc) from exc
        return rows

    async def read(self, name: str, **params: Any) -> list[Row]:
        """A read, retried a few times on a lost connection: after a restart every
        idle pooled connection fails once, and a read is safe to repeat (writes
        are retried by their callers: the flusher, the loops)."""
        for attempt in range(6):
            try:
                return await self.fetch(name, **params)
            except DatabaseUnavailableError:
                if attempt == 5:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Tx]:
        try:
            async with self._pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        yield _Tx(conn, self)
                except Exception as exc:
                    if _driver_error(exc):
                        # Never hand a connection that failed mid-transaction
                        # back to the pool: whoever retries gets a fresh one.
                        conn.terminate()
                    raise
        except Exception as exc:
            raise self.wrap(exc) from exc


class _Tx:
    def __init__(self, conn: asyncpg.Connection, executor: _Executor) -> None:
        self._conn = conn
        self._executor = executor

    async def fetch(self, name: str, **params: Any) -> list[Row]:
        sql, args = self._executor.args(name, params)
        try:
            rows: list[Row] = await self._conn.fetch(sql, *args)
        except Exception as exc:
            raise self._executor.wrap(exc) from exc
        return rows


async def _codecs(conn: asyncpg.Connection) -> None:
    """json/jsonb columns decoded by ``codec.loads``."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=str, decoder=loads, schema="pg_catalog", format="text"
        )


def session_settings(options: StoreOptions, application: str) -> dict[str, str]:
    """What every session sets on the server: no statement, and no transaction
    left idle by a client that vanished, holds its locks longer than the
    statement timeout; the server probes an idle client's link every few seconds
    and drops one that stops acknowledging.

    Bitmap scans are off. The engine's tables are queues whose make-up changes
    faster than autovacuum's statistics: with statistics that know nothing of a
    backlog (a new database, a burst autovacuum has not looked at yet) the
    planner took, for a claim (``ORDER BY priority DESC, seq LIMIT n`` over the
    partial index of open tasks), a bitmap scan of every open task and a sort,
    where walking the index in order stops after ``n``: a claim of 100 read all
    10,000 tasks of a fresh backlog (7.1 against 2.1 ms), and its cost grew
    with the backlog. The task list's filters never took a bitmap scan (they
    test their parameters for NULL, which no index condition can use)."""
    ms = str(int(options.statement_timeout * 1000))
    keepalive = options.keepalive
    return {
        "application_name": application,
        "statement_timeout": ms,
        "idle_in_transaction_session_timeout": ms,
        "tcp_keepalives_idle": str(keepalive),
        "tcp_keepalives_interval": str(max(1, keepalive // 2)),
        "tcp_keepalives_count": "3",
        "enable_bitmapscan": "off",
        "tcp_user_timeout": str(3 * keepalive * 1000),
    }


async def apply_session(conn: asyncpg.Connection, options: StoreOptions) -> None:
    """Set ``session_settings`` (but the application name) on a new connection, in
    one round trip. They are SET, not sent as startup parameters: a pooler in
    front of Postgres (PgBouncer) refuses startup parameters it does not know,
    and would refuse every connection; only ``application_name`` goes at startup."""
    wanted = session_settings(options, "")
    del wanted["application_name"]
    # our own integers, never input: quoted as SET takes them
    await conn.execute("; ".join(f"SET {name} = '{value}'" for name, value in wanted.items()))


def bound_socket(conn: asyncpg.Connection, options: StoreOptions) -> None:
    """The client's end of the same: keepalive probes, and TCP_USER_TIMEOUT so a
    statement sent into a dead link fails within seconds instead of the kernel's
    15 minutes of retransmissions. asyncpg offers no socket options: its
    transport's socket is reached through ``get_extra_info`` (Linux options; a
    platform without them keeps the kernel's defaults)."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket has no link to lose
    keepalive = options.keepalive
    wanted = [
        (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
        (socket.IPPROTO_TCP, "TCP_KEEPIDLE", keepalive),
        (socket.IPPROTO_TCP, "TCP_KEEPINTVL", max(1, keepalive // 2)),
        (socket.IPPROTO_TCP, "TCP_KEEPCNT", 3),
        (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", 3 * keepalive * 1000),
    ]
    for level, name, value in wanted:
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, value)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset (UNLISTEN, RESET ALL, ...: one more
    round trip per statement). No statement changes session state; the pool
    still rolls back a transaction left open."""


def _task(r: Row) -> Task:
    return Task(
        id=r["id"],
        spec=r["spec"],
        status=r["status"],
        created_by=r["created_by"],
        created_at=r["created_at"],
        last_heartbeat_at=r["heartbeat_at"],
        attempt=r["attempt"],
        priority=r["priority"],
        run_after=r["run_after"],
        recovery=r["recovery"],
        claimed_by=r["claimed_by"],
        cancel_requested=r["cancel_requested"],
        finished_at=r["finished_at"],
        step_state=r["step_state"],
    )


def _event(r: Row) -> Event:
    return Event(
        id=r["id"],
        task_id=r["task_id"],
        type=r["type"],
        body=r["body"],
        created_at=r["created_at"],
        is_task_recoverable=r["recovery"] != "none",
    )


def _claim(r: Row) -> Claim:
    return Claim(
        id=r["id"],
        spec=r["spec"],
        sealed_secrets=r["secrets"],
        created_by=r["created_by"],
        attempt=r["attempt"],
        claim_token=r["claim_token"],
        step_state=r["step_state"],
        checkpoints=r["checkpoints"],
        priority=r["priority"],
        recovery=r["recovery"],
        created_at=r["created_at"],
    )


def _json_rows(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as one JSON array of arrays, the query reading them back with
    ``json_array_elements`` (``x ->> 0``, ``x ->> 1``, ...): one text parameter
    whatever the number of rows, where asyncpg encodes a ``text[]`` element by
    element through Python's abstract-type checks. Each cell is text, an
    integer, a boolean or None (``codec.dumps_rows``)."""
    return dumps_rows(rows if isinstance(rows, list) else list(rows))


def _task_rows(rows: Sequence[TaskRow]) -> str:
    """``tasks_insert``'s rows (see the query)."""
    return _json_rows(
        [
            r.id,
            r.spec,
            r.sealed_secrets,
            r.created_by,
            r.priority,
            utc(r.run_after).isoformat() if r.run_after else None,
            r.recovery,
            r.idempotency_key,
            *((r.act.actor, r.act.action, r.act.detail) if r.act else (None, None, None)),
        ]
        for r in rows
    )


def _events(rows: Sequence[tuple[str, str, str]]) -> dict[str, list[str]]:
    return {
        "event_tasks": [r[0] for r in rows],
        "event_types": [r[1] for r in rows],
        "event_bodies": [r[2] for r in rows],
    }


def _ends(rows: Sequence[tuple[str, str, bool]]) -> dict[str, list[Any]]:
    return {
        "end_tasks": [r[0] for r in rows],
        "end_statuses": [r[1] for r in rows],
        "end_keep": [r[2] for r in rows],
    }


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class PostgresStore:
    """The store contract (``engine/store.py``) on PostgreSQL."""

    # A worker's flushes of disjoint tasks run side by side on two connections:
    # one flush is a statement that keeps a backend busy, and one backend at a
    # time held the worker to the speed of one core (docs/engine.md, "The
    # write-behind buffer").
    parallel_writes = 2

    def __init__(
        self, pool: asyncpg.Pool, dsn: str, shown: str, options: StoreOptions | None = None
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._options = options or StoreOptions()
        self._announce = self._options.announce_finishes
        self._db = _Executor(pool, shown)
        self.key = shown

    @classmethod
    async def connect(cls, dsn: str, shown: str, options: StoreOptions) -> PostgresStore:
        async def init(conn: asyncpg.Connection) -> None:
            bound_socket(conn, options)
            await apply_session(conn, options)
            await _codecs(conn)

        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=options.pool_size,
                init=init,
                reset=_keep_session,
                server_settings={"application_name": "falsework"},
                timeout=options.connect_timeout,
                command_timeout=options.command_timeout,
            )
        except Exception as exc:
            if not _driver_error(exc) and not isinstance(exc, ValueError):
                raise
            raise DatabaseUnavailableError(
                f"Cannot reach the database at {shown}: {_one_line(exc)}"
            ) from exc
        return cls(pool, dsn, shown, options)

    def listener(self, hub: Hub) -> PgListener:
        return PgListener(self._dsn, hub, options=self._options)

    async def migrate(self) -> None:
        if not await outdated(self.schema_revision):
            return  # at the newest revision: SQLAlchemy and Alembic stay unimported
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        from falsework.engine.migrate import upgrade as migrate_schema

        # Several processes may start at once: one migrates (under the lock), the
        # others wait and then find nothing to do.
        dsn = self._dsn
        engine = create_async_engine(
            "postgresql+asyncpg://",
            async_creator=lambda: asyncpg.connect(dsn),
            poolclass=NullPool,
        )
        try:
            await migrate_schema(engine, lock=f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        except Exception as exc:
            raise self._db.wrap(exc) from exc
        finally:
            await engine.dispose()

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self) -> None:
        await self._db.fetch("ping")

    async def schema_revision(self) -> str:
        return str((await self._db.read("schema_revision"))[0][0])

    # -- tasks ---------------------------------------------------------------------
    async def tasks_insert(
        self, rows: Sequence[TaskRow], *, open_cap: int | None
    ) -> list[Inserted]:
        params = _task_rows(rows)
        if open_cap is None:
            found = await self._db.fetch("tasks_insert_uncapped", rows=params)
        else:
            creators = sorted({r.created_by for r in rows if r.created_by is not None})
            async with self._db.transaction() as tx:
                if creators:
                    await tx.fetch("creators_lock", creators=creators)
                found = await tx.fetch("tasks_insert", rows=params, cap=open_cap)
        inserted = {r["id"] for r in found}
        keys = [r.idempotency_key for r in rows if r.id not in inserted and r.idempotency_key]
        existing: dict[str, str] = {}
        if keys:
            existing = {r[0]: r[1] for r in await self._db.read("task_ids_by_keys", keys=keys)}
        results = [_inserted(r, inserted, existing) for r in rows]
        # the acts of the new tasks went in with them; those of creates whose key
        # was taken name the keyed task (a rare second statement)
        late = [
            dataclasses.replace(r.act, target=done.id)
            for r, done in zip(rows, results, strict=True)
            if r.act is not None and done.outcome == "existing"
        ]
        if late:
            await self.audit_insert(late)
        return results

    async def task_get(self, task_id: str) -> Task | None:
        rows = await self._db.read("task_get", id=task_id)
        return _task(rows[0]) if rows else None

    async def task_status(self, task_id: str) -> str | None:
        rows = await self._db.read("task_status", id=task_id)
        return str(rows[0][0]) if rows else None

    async def tasks_status(self, task_ids: Sequence[str]) -> dict[str, str]:
        rows = await self._db.read("tasks_status", ids=list(task_ids))
        return {str(r[0]): str(r[1]) for r in rows}

    async def task_secrets(self, task_id: str) -> str | None:
        rows = await self._db.read("task_secrets", id=task_id)
        return rows[0][0] if rows else None

    async def task_list(self, query: TaskQuery) -> tuple[list[Task], int]:
        statuses = list(query.statuses) if query.statuses else None
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
                event = (task_id, outcome.event_type, dumps(outcome.body))
                await tx.fetch("events_insert", **_events([event]))
                await tx.fetch("task_notify", channel=CHANNEL_EVENTS, payload=task_id)
            elif status == "processing":
                await tx.fetch("task_request_cancel", id=task_id)
                await tx.fetch("task_notify", channel=CHANNEL_CANCEL, payload=task_id)
        return status

    async def task_retry(self, task_id: str, *, open_cap: int | None) -> Retried:
        async with self._db.transaction() as tx:
            rows = await tx.fetch("task_lock", id=task_id)
            if not rows:
                return Retried(None)
            status, creator = rows[0]["status"], rows[0]["created_by"]
            if status not in ("failed", "cancelled"):
                return Retried(status)
            if open_cap is not None and creator is not None:
                await tx.fetch("creators_lock", creators=[creator])
                if not await tx.fetch("task_retry_capped", id=task_id, cap=open_cap):
                    return Retried(status, refused=True)
            else:
                await tx.fetch("task_retry", id=task_id)
            await tx.fetch("task_notify", channel=CHANNEL_TASKS, payload="")
        return Retried(status)

    async def task_claim(self, worker_id: str, n: int, *, per_user_cap: int | None) -> list[Claim]:
        if per_user_cap is None:
            rows = await self._db.fetch("task_claim", worker=worker_id, n=n)
        else:
            async with self._db.transaction() as tx:
                await tx.fetch("claim_lock")
                rows = await tx.fetch("task_claim_fair", worker=worker_id, n=n, cap=per_user_cap)
        # RETURNING gives no order: hand tasks out in queue order
        rows.sort(key=lambda r: (-r["priority"], r["seq"]))
        return [_claim(r) for r in rows]

    async def batch_apply(self, batch: WriteBatch) -> set[str]:
        # One autocommit statement, one round trip (docs/engine.md, "The
        # write-behind buffer"): the plan is made for what the tasks are expected
        # to hold (at first: each still ours, processing under its token), and the
        # statement writes it only if, with the tasks locked, that is what they
        # hold; otherwise it writes nothing and returns what they hold, and the
        # plan is made again for that. Whatever is written is therefore
        # plan_writes(batch, the locked state), as in a transaction that reads then
        # writes, with no transaction open across a round trip.
        ids = sorted(batch.tokens)
        current: dict[str, tuple[str | None, str]] = {
            tid: (token, "processing") for tid, token in batch.tokens.items()
        }
        for _ in range(MAX_REPLANS):
            plan = plan_writes(batch, current)
            ends = plan.finishes + [(tid, "open", True) for tid in plan.releases]
            rows = await self._db.fetch(
                "batch_write",
                flush=batch.flush_id,
                expected=_json_rows((tid, *current.get(tid, (None, None))) for tid in ids),
                refused=dumps(sorted(plan.refused)),
                events=_json_rows(plan.events),
                steps=_json_rows(plan.steps),
                checkpoints=_json_rows(plan.checkpoints),
                ends=_json_rows(ends),
                announce=self._announce,
            )
            if rows[-1]["written"]:
                return set(plan.refused)
            held = {r["id"]: (r["claim_token"], r["status"]) for r in rows[:-1]}
            if held == current:
                # the plan held but the flush's id was there: an earlier try of
                # this flush committed (its reply was lost); it answers the same
                done = await self._db.read("flush_done", flush=batch.flush_id)
                return set(loads(done[0][0] or "[]")) if done else set()
            current = held
        raise DatabaseError(
            f"The tasks of flush {batch.flush_id} changed under it {MAX_REPLANS} times in a row"
        )

    async def tasks_recover_stale(
        self, older_than: float, wording: Wording
    ) -> list[tuple[str, StaleOutcome]]:
        async with self._db.transaction() as tx:
            stale = await tx.fetch("tasks_select_stale", older_than=float(older_than))
            if not stale:
                return []
            outcome = [
                (r["id"], stale_outcome(r["recovery"], r["cancel_requested"])) for r in stale
            ]
            reopen = [tid for tid, o in outcome if o == "recovered"]
            if reopen:
                await tx.fetch("tasks_reopen", ids=reopen)
            finals = {"failed": wording.abandoned(), "cancelled": wording.cancelled()}
            ends = [(tid, finals[o].status, True) for tid, o in outcome if o != "recovered"]
            if ends:
                await tx.fetch("tasks_end", **_ends(ends), announce=self._announce)
            await tx.fetch("events_insert", **_events(_stale_events(outcome, finals, wording)))
            if reopen:
                await tx.fetch("task_notify", channel=CHANNEL_TASKS, payload="")
            for chunk in _chunks([tid for tid, _ in outcome], 200):
                await tx.fetch("task_notify", channel=CHANNEL_EVENTS, payload=",".join(chunk))
        return outcome

    async def tasks_erase_secrets(self, older_than: float) -> int:
        return len(await self._db.fetch("tasks_erase_secrets", older_than=float(older_than)))

    async def tasks_expire(self, status: str, older_than: float, limit: int) -> Expired:
        async with self._db.transaction() as tx:
            gone = await tx.fetch(
                "tasks_expire", status=status, older_than=float(older_than), limit=limit
            )
            if not gone:
                return Expired(0, 0)
            (events,) = await tx.fetch("events_delete_of_tasks", ids=[r[0] for r in gone])
        return Expired(len(gone), int(events[0]))

    async def task_keep(self, task_id: str, keep: bool) -> bool:
        return bool(await self._db.fetch("task_keep", id=task_id, keep=keep))

    async def space_reclaim(self, pages: int) -> int:
        return 0  # autovacuum gives the space of deleted rows back to new ones

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
            "events_after_many",
            task_ids=[w[0] for w in wanted],
            afters=[w[1] for w in wanted],
            limit=limit,
        )
        for r in rows:
            out[r["ord"] - 1].append(_event(r))
        return out

    # -- workers -------------------------------------------------------------------
    async def worker_register(self, worker_id: str, host: str, pid: int, limit: int) -> None:
        await self._db.fetch("worker_insert", id=worker_id, host=host, pid=pid, limit=limit)

    async def worker_heartbeat(
        self,
        worker_id: str,
        task_ids: Sequence[str],
        new_limit: int | None,
        *,
        running: int | None = None,
    ) -> Heartbeat:
        rows = await self._db.fetch(
            "heartbeat",
            worker=worker_id,
            ids=sorted(task_ids),
            running=len(task_ids) if running is None else running,
            new_limit=new_limit,
        )
        owned = {r[0]: Lease(r[1], r[2]) for r in rows if r[0] is not None}
        limits = [r[3] for r in rows if r[0] is None]
        return Heartbeat(owned, limits[0] if limits else None)

    async def worker_list(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                id=r["id"],
                host=r["host"],
                pid=r["pid"],
                limit=r["concurrency_limit"],
                running=r["running"],
                started_at=r["started_at"],
                heartbeat_at=r["heartbeat_at"],
                heartbeat_age=float(r["age"]),
            )
            for r in await self._db.read("worker_list")
        ]

    async def worker_set_limit(self, worker_id: str, limit: int) -> bool:
        return bool(await self._db.fetch("worker_set_limit", id=worker_id, limit=limit))

    async def worker_delete(self, worker_id: str) -> None:
        await self._db.fetch("worker_delete", id=worker_id)

    async def workers_prune(self, older_than: float) -> int:
        return len(await self._db.fetch("workers_prune", older_than=float(older_than)))

    # -- one node at a time ---------------------------------------------------------
    async def lease_take(self, name: str, holder: str, ttl: float) -> bool:
        rows = await self._db.fetch("lease_take", lease=name, holder=holder, ttl=float(ttl))
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
        until = int(
            (await self._db.read("metrics_scan_end", after=after, lag=float(lag), limit=limit))[0][
                0
            ]
        )
        if until <= after:
            return Marks(after, [])
        rows = await self._db.read("metrics_marks", after=after, until=until)
        return Marks(until, [_mark(r) for r in rows])

    async def metrics_snapshot_get(self, name: str) -> Snapshot | None:
        rows = await self._db.read("metrics_snapshot_get", snapshot=name)
        if not rows:
            return None
        r = rows[0]
        return Snapshot(int(r["last_event_id"]), r["body"], max(0.0, float(r["age"])))

    async def metrics_snapshot_put(
        self, name: str, expected: int | None, last_event_id: int, body: str
    ) -> bool:
        rows = await self._db.fetch(
            "metrics_snapshot_put",
            snapshot=name,
            expected=expected,
            last_event_id=last_event_id,
            body=body,
        )
        return bool(rows)

    async def flushes_prune(self, older_than: float) -> int:
        return int((await self._db.fetch("flushes_prune", older_than=float(older_than)))[0][0])

    # -- the audit trail -----------------------------------------------------------
    async def audit_insert(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            await self._db.fetch(
                "audit_insert",
                rows=_json_rows((e.actor, e.action, e.target, e.detail) for e in entries),
            )

    async def scaffold_upsert(self, record: ScaffoldRecord) -> None:
        await self._db.fetch(
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
        return [record_of(ScaffoldRecord, r, DECODED) for r in rows]

    async def scaffold_get(self, repository: str) -> ScaffoldRecord | None:
        rows = await self._db.read("scaffold_get", repository=repository)
        return record_of(ScaffoldRecord, rows[0], DECODED) if rows else None

    async def audit_list(self, query: AuditQuery) -> list[AuditRecord]:
        rows = await self._db.read(
            "audit_list",
            actor=query.actor,
            action=query.action,
            since=utc(query.since) if query.since is not None else None,
            before=query.before,
            limit=query.limit,
        )
        return [record_of(AuditRecord, r, DECODED) for r in rows]

    # -- the webhooks' outbox ------------------------------------------------------
    async def tasks_unhooked(self, limit: int) -> list[FinishedTask]:
        rows = await self._db.read("tasks_unhooked", limit=limit)
        return [FinishedTask(_task(r), r["final_body"]) for r in rows]

    async def tasks_mark_hooked(self, marks: Sequence[tuple[str, datetime]]) -> None:
        if marks:
            await self._db.fetch(
                "tasks_mark_hooked",
                ids=[tid for tid, _ in marks],
                finished=[utc(at) for _, at in marks],
            )

    async def event_append(self, task_id: str, type: str, body: str) -> bool:
        return bool(await self._db.fetch("event_append", task_id=task_id, type=type, body=body))

    # -- cluster switches and the admin's view -------------------------------------
    async def flag_set(self, name: str, detail: str, set_by: str | None) -> None:
        await self._db.fetch("flag_set", flag=name, detail=detail, set_by=set_by)

    async def flag_clear(self, name: str) -> bool:
        return bool(await self._db.fetch("flag_clear", flag=name))

    async def flags_list(self) -> list[ClusterFlag]:
        rows = await self._db.read("flags_list")
        return [record_of(ClusterFlag, r, DECODED) for r in rows]

    async def queue_overview(self, stale_after: float) -> QueueOverview:
        (r,) = await self._db.read("queue_overview", stale_after=float(stale_after))
        return QueueOverview.of(r)

    async def tasks_troubled(self, stale_after: float, limit: int) -> list[TroubledTask]:
        rows = await self._db.read("tasks_troubled", stale_after=float(stale_after), limit=limit)
        return [record_of(TroubledTask, r, DECODED) for r in rows]

    async def audit_expire(self, older_than: float, limit: int) -> int:
        rows = await self._db.fetch("audit_expire", older_than=float(older_than), limit=limit)
        return int(rows[0][0])


def _mark(r: Row) -> Mark:
    started, ended = r["started_at"], r["ended_at"]
    seconds = (ended - started).total_seconds() if started is not None else None
    return Mark(r["id"], r["kind"], r["status"], r["label"], seconds)


def _inserted(row: TaskRow, inserted: set[str], existing: dict[str, str]) -> Inserted:
    if row.id in inserted:
        return Inserted("new", row.id)
    found = existing.get(row.idempotency_key or "")
    return Inserted("existing", found) if found else Inserted("refused", None)


def _stale_events(
    outcome: list[tuple[str, StaleOutcome]], finals: dict[str, Outcome], wording: Wording
) -> list[tuple[str, str, str]]:
    recovered = dumps(wording.recovered())
    bodies: dict[str, tuple[str, str]] = {
        o: (final.event_type, dumps(final.body)) for o, final in finals.items()
    }
    bodies["recovered"] = ("recovered", recovered)
    return [(tid, *bodies[o]) for tid, o in outcome]


class PgListener:
    """A dedicated asyncpg connection LISTENing on the engine's channels.

    ``run`` returns (or raises) when the connection is lost; the supervisor starts
    it again with backoff, and on connect it wakes every waiter.
    """

    CHANNELS = (CHANNEL_TASKS, CHANNEL_CANCEL, CHANNEL_EVENTS)
    # how long the listener keeps saying "this process streams" after its last
    # stream ended (so a page that reconnects does not flap it)
    LINGER = 30.0

    def __init__(
        self,
        dsn: str,
        hub: Hub,
        *,
        keepalive: float = 2.0,
        options: StoreOptions | None = None,
    ) -> None:
        self._dsn = dsn
        self._hub = hub
        self._inbox = Inbox(hub)
        self._keepalive = keepalive
        self._options = options or StoreOptions()
        self.connected = asyncio.Event()
        self.backend_pid: int | None = None
        self.connects = 0
        self._silence = Silence(keepalive)
        self.pings = 0  # questions asked after a silence (Silence)
        # set while this connection holds the streaming presence (_STREAMING)
        self.streaming = asyncio.Event()

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self._silence.heard()
        if channel == CHANNEL_TASKS:
            self._hub.new_tasks()
        elif channel == CHANNEL_CANCEL:
            self._hub.cancel(payload)
        elif channel == CHANNEL_EVENTS:
            self._inbox.put(payload)

    async def run(self) -> None:
        try:
            await self._listen()
        except Exception as exc:
            if not _driver_error(exc):
                raise
            raise DatabaseUnavailableError(
                f"The listener lost the database: {_one_line(exc)}"
            ) from exc

    async def _announce_streaming(self, conn: Any) -> None:
        """Hold a share of every streaming key (each flush after this carries
        events whole); a key a flush holds right now is asked for again shortly."""
        keys = list(range(STREAMING_KEYS))
        pause = 0.005
        while True:
            # a try never waits: no answer within a keepalive is a link gone
            rows = await asyncio.wait_for(conn.fetch(_STREAMING, keys), timeout=self._keepalive)
            keys = [row[0] for row in rows]
            if not keys:
                break
            # a flush holds its key for milliseconds; anything holding one longer
            # (another session's lock) is asked at most ten times a second
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
        self.streaming.set()
        # A flush that found a key free before this sent no notification (a
        # quiet flush, batch_write); it committed before the key was ours, so a
        # read from now on sees it: every stream and waiter here reads once.
        self._hub.any_events()

    async def _listen(self) -> None:
        options = self._options
        conn = await asyncpg.connect(
            self._dsn,
            timeout=options.connect_timeout,
            server_settings={"application_name": "falsework-listener"},
        )
        bound_socket(conn, options)
        lost = asyncio.Event()
        nudge = asyncio.Event()  # lost, or someone here started waiting for events

        def on_lost(_conn: Any) -> None:
            lost.set()
            nudge.set()

        self._hub.on_watch(nudge.set)
        try:
            await apply_session(conn, options)
            conn.add_termination_listener(on_lost)
            for channel in self.CHANNELS:
                await conn.add_listener(channel, self._dispatch)
            self.backend_pid = conn.get_server_pid()
            self.connects += 1
            self.connected.set()
            if self.connects > 1:
                log.info("listener reconnected")
            self._hub.wake_all()
            silence = self._silence
            silence.heard()
            quiet_since: float | None = None
            while not lost.is_set():
                left = silence.left()
                if self._hub.watching():
                    quiet_since = None
                    if not self.streaming.is_set():
                        await self._announce_streaming(conn)
                        silence.heard()
                        continue
                elif self.streaming.is_set():
                    now = time.monotonic()
                    quiet_since = now if quiet_since is None else quiet_since
                    if now - quiet_since >= self.LINGER:
                        await asyncio.wait_for(  # an unlock never waits
                            conn.execute(_NOT_STREAMING, list(range(STREAMING_KEYS))),
                            timeout=self._keepalive,
                        )
                        self.streaming.clear()
                        silence.heard()
                        continue
                    left = min(left, quiet_since + self.LINGER - now)
                if left > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(nudge.wait(), timeout=left)
                    nudge.clear()
                    continue
                # A silent network drop never fires the termination listener:
                # nothing heard for a keepalive, so ask (engine/notify.py, Silence).
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout=self._keepalive)
                self.pings += 1
                silence.heard()
            raise ConnectionError("listener connection lost")
        finally:
            self._hub.off_watch(nudge.set)
            self.connected.clear()
            self.streaming.clear()
            if not conn.is_closed():
                conn.terminate()
            # Waiters sleeping on the slow poll of a healthy listener re-read now
            # and poll fast until it is back (see Broker.event_poll_interval).
            self._hub.wake_all()
