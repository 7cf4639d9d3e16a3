"""The store: the engine's only door to the database.

A narrow interface (River style) with two implementations, ``PostgresStore`` and
``SqliteStore`` (``engine/postgres.py``, ``engine/sqlite.py``). Every statement is
a named query from ``engine/sql/<dialect>.sql`` (Procrastinate style); this module
holds what both dialects share: running those queries, turning rows into records,
and the write batch a worker flushes. Dialect differences are capability flags
(``supports_listen``) and a few overridden methods, never branches on a name.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from falsework.engine import queries
from falsework.engine.models import Event, Task, WorkerInfo
from falsework.errors import InputError

# Task list orders the API may ask for ("desc:created_at"); values are SQL.
ORDER_FIELDS = {
    "created_at": "seq",
    "createdAt": "seq",
    "status": "status",
    "id": "id",
    "created_by": "created_by",
    "createdBy": "created_by",
    "last_heartbeat_at": "heartbeat_at",
    "lastHeartbeatAt": "heartbeat_at",
}

CHANNEL_TASKS = "falsework_tasks"
CHANNEL_CANCEL = "falsework_cancel"
CHANNEL_EVENTS = "falsework_events"


def hide_password(url: str) -> str:
    """The URL as a user may see it in an error line."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def normalise_url(url: str) -> URL:
    """Map a user URL (``sqlite:///x``, ``postgresql://...``) to its async driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InputError(f"Not a database URL: {hide_password(url)}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        # asyncpg measured faster than psycopg 3 on the claim/complete workload
        # (docs/engine.md); an explicit "+psycopg" in the URL still selects it.
        return parsed.set(drivername=f"postgresql+{driver or 'asyncpg'}")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise InputError(f"Unsupported database (use sqlite:/// or postgresql://): {backend}")


def is_connection_error(exc: BaseException) -> bool:
    """True when retrying on a fresh connection may succeed."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        # raw from the driver; SQLAlchemy would have wrapped it as OperationalError
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc, OperationalError | InterfaceError
        )
    return False


def is_unavailable(exc: BaseException) -> bool:
    """True when the database cannot be reached: connecting failed or the connection was lost.

    Higher layers ask this instead of knowing the drivers' or SQLAlchemy's error types.
    """
    # A DBAPIError without a statement was raised while connecting.
    connecting = isinstance(exc, DBAPIError) and not exc.statement
    return connecting or is_connection_error(exc)


_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])
# Runs one named query of the store's dialect and returns its rows.
Runner = Callable[..., Awaitable[list[Any]]]


def retried(fn: _F) -> _F:
    """Retry a read a few times when its pooled connection turns out to be dead.

    After a database restart every idle pooled connection fails once; reads
    are safe to repeat, writes are retried by their callers (flusher, loops).
    """

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(6):
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                if attempt == 5 or not is_connection_error(exc):
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper  # type: ignore[return-value]


# json.dumps with these options would build a JSONEncoder per call; the C encoder
# it ends up in is called directly (same output, same errors, a fresh circular
# reference check per call). The stdlib encoder where the C one is missing.
_DEFAULT = json.JSONEncoder().default
_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE_STR: Callable[[str], str] = json.encoder.encode_basestring
_ENCODE_SLOW = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_ENCODE_NAN = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _encode(value: Any) -> str:
    if _C_ENCODER is None:  # pragma: no cover
        return _ENCODE_SLOW(value)
    if isinstance(value, str):
        return _ENCODE_STR(value)
    encode = _C_ENCODER({}, _DEFAULT, _ENCODE_STR, None, ":", ",", False, False, False)
    return "".join(encode(value, 0))


def dumps(value: Any) -> str:
    """Compact JSON the database accepts: no NaN/Infinity (ValueError here, in the
    writer, rather than a failed flush), and NUL characters, which Postgres jsonb
    refuses, replaced by U+FFFD."""
    text = _encode(value)
    if "\\u0000" in text:
        text = _ENCODE_NAN(_without_nul(value))
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def loads(text: str | bytes) -> Any:
    """``json.loads``, where the common empty object costs no parse (a new dict
    each time, as a parse would give)."""
    if text == "{}":
        return {}
    return json.loads(text)


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return loads(value)
    return value


def _ts(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


@dataclass
class Finish:
    """The final write of a run: status and its closing event, in one transaction."""

    task_id: str
    token: str
    status: str
    event_type: str
    event_body: str  # JSON text
    keep_secrets: bool


@dataclass
class WriteBatch:
    """Worker writes gathered across tasks and flushed together, fenced by token.

    ``events`` keep their order; step state and checkpoints are merged per task
    (later writes win); finishes and releases come last.
    """

    events: list[tuple[str, str, str, str]] = field(default_factory=list)
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, str]] = field(default_factory=dict)
    finishes: list[Finish] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.events or self.steps or self.checkpoints or self.finishes or self.releases)

    def event_task_ids(self) -> set[str]:
        return {e[0] for e in self.events} | {f.task_id for f in self.finishes}

    def split(self) -> dict[str, WriteBatch]:
        """One batch per task, each task's writes in their order."""
        parts = {tid: WriteBatch(tokens={tid: token}) for tid, token in self.tokens.items()}
        for event in self.events:
            parts[event[0]].events.append(event)
        for tid, steps in self.steps.items():
            parts[tid].steps[tid] = steps
        for tid, cps in self.checkpoints.items():
            parts[tid].checkpoints[tid] = cps
        for finish in self.finishes:
            parts[finish.task_id].finishes.append(finish)
        for tid in self.releases:
            parts[tid].releases.append(tid)
        return parts


def _json_object(items: dict[str, str]) -> str:
    """``{key: <already-serialised JSON>}`` without parsing the values again."""
    return "{" + ",".join(f"{dumps(k)}:{v}" for k, v in items.items()) + "}"


def event_of(r: Any) -> Event:
    """An ``events_list`` row as an Event."""
    return Event(
        id=int(r[0]),
        task_id=r[1],
        type=r[2],
        body=_json(r[3]),
        created_at=_ts(r[4]) or datetime.now(UTC),
        is_task_recoverable=r[5] != "none",
    )


class Row(tuple[Any, ...]):
    """A result row by position and, through ``_mapping``, by name (as SQLAlchemy's
    rows), for rows read straight from the driver."""

    _mapping: dict[str, Any]

    @classmethod
    def of(cls, record: Any) -> Row:
        row = cls(record.values())
        row._mapping = dict(record.items())
        return row


@dataclass
class StaleTask:
    id: str
    recovery: str
    cancel_requested: bool


class Store:
    """The shared implementation; subclasses set the dialect and its transactions."""

    dialect: ClassVar[str]
    supports_listen: ClassVar[bool] = False

    def __init__(self, url: URL, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        self._sql = {name: sa.text(q) for name, q in queries.load(self.dialect).items()}
        self._list_sql: dict[str, sa.TextClause] = {}

    # -- plumbing ---------------------------------------------------------
    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def single(self) -> AsyncIterator[AsyncConnection]:
        """For one writing statement: its cheapest safe mode (Postgres: autocommit)."""
        async with self.write() as conn:
            yield conn

    async def q(self, conn: AsyncConnection, name: str, **params: Any) -> Any:
        return await conn.execute(self._sql[name], params)

    async def notify(self, conn: AsyncConnection, channel: str, payload: str) -> None:
        """Send a wake-up with the transaction (only where ``supports_listen``)."""

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def migrate(self) -> None:
        raise NotImplementedError

    @retried
    async def schema_revision(self) -> str:
        async with self.read() as conn:
            value = (
                await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ).scalar()
        return str(value)

    def ts_param(self, value: datetime | None) -> str | None:
        """A timestamp as this dialect's queries take it inside a JSON row."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()

    # -- rows to records --------------------------------------------------
    @staticmethod
    def task_from_row(row: Any) -> Task:
        m = row._mapping
        return Task(
            id=m["id"],
            spec=_json(m["spec"]),
            status=m["status"],
            created_by=m["created_by"],
            created_at=_ts(m["created_at"]) or datetime.now(UTC),
            last_heartbeat_at=_ts(m["heartbeat_at"]),
            attempt=int(m["attempt"]),
            priority=int(m["priority"]),
            run_after=_ts(m["run_after"]),
            recovery=m["recovery"],
            claimed_by=m["claimed_by"],
            cancel_requested=bool(m["cancel_requested"]),
            finished_at=_ts(m["finished_at"]),
            step_state=_json(m["step_state"]),
        )

    # -- tasks ------------------------------------------------------------
    async def insert_tasks(self, rows: list[dict[str, Any]]) -> list[str]:
        """Insert open tasks; rows whose idempotency key exists are skipped."""
        for row in rows:
            row["run_after"] = self.ts_param(row["run_after"])
        async with self.single() as conn:
            # (Postgres NOTIFYs inside the statement; SQLite wakes in-process.)
            result = await self.q(conn, "task_insert", rows=dumps(rows))
            return [r[0] for r in result]

    @retried
    async def create_task(self, row: dict[str, Any]) -> Task | None:
        """Insert one open task and return it; None when its idempotency key exists."""
        row["run_after"] = self.ts_param(row["run_after"])
        async with self.single() as conn:
            found = (await self.q(conn, "task_create", rows=dumps([row]))).first()
        return self.task_from_row(found) if found else None

    @retried
    async def task_id_by_key(self, key: str) -> str | None:
        async with self.read() as conn:
            value: str | None = (await self.q(conn, "task_get_by_key", key=key)).scalar()
            return value

    @retried
    async def get_task(self, task_id: str) -> Task | None:
        async with self.read() as conn:
            row = (await self.q(conn, "task_get", id=task_id)).first()
        return self.task_from_row(row) if row else None

    @retried
    async def task_status(self, task_id: str) -> str | None:
        rows = await self.read_rows("task_status", id=task_id)
        return str(rows[0][0]) if rows else None

    async def read_rows(self, name: str, **params: Any) -> list[Any]:
        """The rows of one read-only named query. Postgres runs it on its asyncpg
        pool: the reads behind live streams are as hot as create and claim."""
        async with self.read() as conn:
            return list(await self.q(conn, name, **params))

    def _list_query(self, order: str) -> sa.TextClause:
        direction, _, name = order.partition(":")
        if not name:
            direction, name = "desc", direction
        column = ORDER_FIELDS.get(name)
        if column is None or direction.lower() not in ("asc", "desc"):
            raise InputError(f"Cannot order tasks by {order!r} (use e.g. desc:created_at)")
        key = f"{column} {direction.upper()}"
        if key not in self._list_sql:
            sql = queries.load(self.dialect)["task_list"].replace("__ORDER__", f"{key}, seq")
            self._list_sql[key] = sa.text(sql)
        return self._list_sql[key]

    @retried
    async def list_tasks(
        self,
        *,
        created_by: str | None,
        statuses: Sequence[str] | None,
        limit: int | None,
        offset: int,
        order: str,
    ) -> tuple[list[Task], int]:
        stmt = self._list_query(order)
        status_param = dumps(list(statuses)) if statuses else None
        async with self.read() as conn:
            rows = await conn.execute(
                stmt,
                {
                    "created_by": created_by,
                    "statuses": status_param,
                    "limit": limit,
                    "offset": offset,
                },
            )
            tasks = [self.task_from_row(r) for r in rows]
            total = (
                await self.q(conn, "task_count", created_by=created_by, statuses=status_param)
            ).scalar_one()
        return tasks, int(total)

    @retried
    async def count_active(self, created_by: str) -> int:
        async with self.read() as conn:
            return int(
                (await self.q(conn, "task_count_active", created_by=created_by)).scalar_one()
            )

    @retried
    async def count_claimable(self) -> int:
        async with self.read() as conn:
            return int((await self.q(conn, "task_count_claimable")).scalar_one())

    async def cancel(self, task_id: str, event_body: str) -> str | None:
        """Cancel: returns the status seen before (None when the task is unknown)."""
        async with self.write() as conn:
            status: str | None = (await self.q(conn, "task_lock", id=task_id)).scalar()
            if status == "open":
                await self.q(conn, "task_cancel_open", id=task_id)
                rows = dumps([{"task_id": task_id, "type": "cancelled", "body": "__B__"}])
                rows = rows.replace('"__B__"', event_body)
                await self.q(conn, "events_insert", rows=rows)
                await self.notify(conn, CHANNEL_EVENTS, task_id)
            elif status == "processing":
                await self.q(conn, "task_request_cancel", id=task_id)
                await self.notify(conn, CHANNEL_CANCEL, task_id)
        return status

    async def retry(self, task_id: str) -> str | None:
        """Re-open a failed/cancelled task; returns the status seen before."""
        async with self.write() as conn:
            status: str | None = (await self.q(conn, "task_lock", id=task_id)).scalar()
            if status in ("failed", "cancelled"):
                await self.q(conn, "task_retry", id=task_id)
                await self.notify(conn, CHANNEL_TASKS, "")
        return status

    async def claim(self, worker_id: str, n: int, per_user_cap: int | None) -> list[Any]:
        """Claim up to ``n`` open tasks, FIFO within priority, in one statement."""
        async with self.write() as conn:
            if per_user_cap is None:
                result = await self.q(conn, "task_claim", worker=worker_id, n=n)
            else:
                await self.before_fair_claim(conn)
                result = await self.q(
                    conn, "task_claim_fair", worker=worker_id, n=n, cap=per_user_cap
                )
            rows = list(result)
        return sort_claimed(rows)

    async def before_fair_claim(self, conn: AsyncConnection) -> None:
        """Serialise fair claims where several claimers could race (Postgres)."""

    async def heartbeat(
        self, worker_id: str, task_ids: list[str], new_limit: int | None
    ) -> tuple[dict[str, tuple[str, bool]], int | None]:
        """Refresh every running task of this worker in one statement.

        Returns ``{task_id: (claim_token, cancel_requested)}`` of the tasks still
        ours, and the worker's limit as stored (None when its row is gone).
        """
        async with self.write() as conn:
            owned: dict[str, tuple[str, bool]] = {}
            if task_ids:
                rows = await self.q(
                    conn, "task_heartbeat", worker=worker_id, ids=dumps(sorted(task_ids))
                )
                owned = {r[0]: (r[1], bool(r[2])) for r in rows}
            limit = (
                await self.q(
                    conn,
                    "worker_heartbeat",
                    id=worker_id,
                    running=len(task_ids),
                    new_limit=new_limit,
                )
            ).scalar()
        return owned, limit

    async def apply(self, batch: WriteBatch) -> set[str]:
        """Apply a worker's batch in one transaction; returns the refused task ids.

        A write is refused when the task's claim token is not the one the writer
        holds or the task is no longer processing: another worker owns it now.
        """
        async with self.write() as conn:

            async def run(name: str, **params: Any) -> list[Any]:
                return list(await self.q(conn, name, **params))

            return await self.apply_with(run, batch)

    async def apply_with(self, run: Runner, batch: WriteBatch) -> set[str]:
        """``apply`` inside a transaction, through ``run(query name, **params) -> rows``."""
        ids = sorted(batch.tokens)
        rows = await run("task_lock_owned", ids=dumps(ids))
        current = {r[0]: (r[1], r[2]) for r in rows}
        refused = {
            tid for tid, token in batch.tokens.items() if current.get(tid) != (token, "processing")
        }
        events = [e for e in batch.events if e[0] not in refused]
        finishes = [f for f in batch.finishes if f.task_id not in refused]
        rows_json = [
            f'{{"task_id":"{tid}","type":"{typ}","body":{body}}}' for tid, _tok, typ, body in events
        ]
        rows_json += [
            f'{{"task_id":"{f.task_id}","type":"{f.event_type}","body":{f.event_body}}}'
            for f in finishes
        ]
        if rows_json:
            await run("events_insert", rows="[" + ",".join(rows_json) + "]")
        state_ids = (set(batch.steps) | set(batch.checkpoints)) - refused
        if state_ids:
            await self.patch_state(run, batch, sorted(state_ids))
        if finishes:
            await run(
                "task_finish",
                rows=dumps(
                    [
                        {"id": f.task_id, "status": f.status, "keep_secrets": f.keep_secrets}
                        for f in finishes
                    ]
                ),
            )
        releases = [tid for tid in batch.releases if tid not in refused]
        if releases:
            await run("task_release", ids=dumps(releases))
            if self.supports_listen:
                await run("task_notify", channel=CHANNEL_TASKS, payload="")
        if self.supports_listen:
            touched = sorted({e[0] for e in events} | {f.task_id for f in finishes})
            for chunk in _chunks(touched, 200):
                await run("task_notify", channel=CHANNEL_EVENTS, payload=",".join(chunk))
        return refused

    async def patch_state(self, run: Runner, batch: WriteBatch, ids: list[str]) -> None:
        rows = []
        for tid in ids:
            steps = _json_object(batch.steps.get(tid, {}))
            cps = _json_object(batch.checkpoints.get(tid, {}))
            rows.append(f'{{"id":"{tid}","steps":{steps},"checkpoints":{cps}}}')
        await run("task_patch_state", rows="[" + ",".join(rows) + "]")

    # -- janitor ----------------------------------------------------------
    async def recover_stale(
        self, stale_timeout: float, bodies: dict[str, str]
    ) -> list[tuple[str, str]]:
        """Re-open (or fail, or cancel) tasks whose heartbeat is too old.

        ``bodies`` maps an outcome (``recovered``, ``failed``, ``cancelled``) to the
        JSON body of the event written for it. Returns ``[(task_id, outcome)]``.
        """
        async with self.write() as conn:
            stale = [
                StaleTask(r[0], r[1], bool(r[2]))
                for r in await self.q(conn, "task_select_stale", stale=stale_timeout)
            ]
            if not stale:
                return []
            outcome: list[tuple[str, str]] = []
            for t in stale:
                if t.cancel_requested:
                    outcome.append((t.id, "cancelled"))
                elif t.recovery == "none":
                    outcome.append((t.id, "failed"))
                else:
                    outcome.append((t.id, "recovered"))
            reopen = [tid for tid, o in outcome if o == "recovered"]
            if reopen:
                await self.q(conn, "task_reopen", ids=dumps(reopen))
            finals = [(tid, o) for tid, o in outcome if o != "recovered"]
            if finals:
                await self.q(
                    conn,
                    "task_finish",
                    rows=dumps(
                        [{"id": tid, "status": o, "keep_secrets": True} for tid, o in finals]
                    ),
                )
            events = [
                f'{{"task_id":"{tid}","type":"{"completion" if o == "failed" else o}",'
                f'"body":{bodies[o]}}}'
                for tid, o in outcome
            ]
            await self.q(conn, "events_insert", rows="[" + ",".join(events) + "]")
            if reopen:
                await self.notify(conn, CHANNEL_TASKS, "")
            for chunk in _chunks([tid for tid, _ in outcome], 200):
                await self.notify(conn, CHANNEL_EVENTS, ",".join(chunk))
        return outcome

    async def erase_secrets(self, retention: float) -> int:
        async with self.write() as conn:
            result = await self.q(conn, "task_erase_secrets", retention=retention)
        return int(result.rowcount or 0)

    @retried
    async def raw_secrets(self, task_id: str) -> str | None:
        """The stored (encrypted) secrets column; for the claiming worker only."""
        async with self.read() as conn:
            value: str | None = (await self.q(conn, "task_secrets", id=task_id)).scalar()
            return value

    # -- events -----------------------------------------------------------
    @retried
    async def events(self, task_id: str, after: int, limit: int = 1000) -> list[Event]:
        rows = await self.read_rows("events_list", task_id=task_id, after=after, limit=limit)
        return [event_of(r) for r in rows]

    async def events_many(
        self, wanted: list[tuple[str, int]], limit: int = 1000
    ) -> list[list[Event]]:
        """For each ``(task_id, after)``: up to ``limit`` of its events after
        ``after``, in id order. Here one read per pair; Postgres reads them all in
        one statement."""
        return [await self.events(task_id, after, limit) for task_id, after in wanted]

    # -- workers ----------------------------------------------------------
    async def worker_register(self, worker_id: str, host: str, pid: int, limit: int) -> None:
        async with self.write() as conn:
            await self.q(conn, "worker_insert", id=worker_id, host=host, pid=pid, limit=limit)

    @retried
    async def worker_list(self) -> list[WorkerInfo]:
        async with self.read() as conn:
            rows = await self.q(conn, "worker_list")
            return [
                WorkerInfo(
                    id=r[0],
                    host=r[1],
                    pid=int(r[2]),
                    limit=int(r[3]),
                    running=int(r[4]),
                    started_at=_ts(r[5]) or datetime.now(UTC),
                    heartbeat_at=_ts(r[6]) or datetime.now(UTC),
                    heartbeat_age=float(r[7]),
                )
                for r in rows
            ]

    async def worker_set_limit(self, worker_id: str, limit: int) -> bool:
        async with self.write() as conn:
            result = await self.q(conn, "worker_set_limit", id=worker_id, limit=limit)
        return bool(result.rowcount)

    async def worker_delete(self, worker_id: str) -> None:
        async with self.write() as conn:
            await self.q(conn, "worker_delete", id=worker_id)

    async def worker_prune(self, age: float) -> None:
        async with self.write() as conn:
            await self.q(conn, "worker_prune", age=age)


def sort_claimed(rows: list[Any]) -> list[Any]:
    """RETURNING gives no order; hand tasks out in queue order."""
    rows.sort(key=lambda r: (-int(r._mapping["priority"]), int(r._mapping["seq"])))
    return rows


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def open_store(url: str) -> Store:
    """The store for ``url`` (not yet migrated or checked)."""
    normal = normalise_url(url)
    if normal.get_backend_name() == "sqlite":
        from falsework.engine.sqlite import SqliteStore

        return SqliteStore.create(normal)
    from falsework.engine.postgres import PostgresStore

    return PostgresStore.create(normal)
