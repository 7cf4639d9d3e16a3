"""The Postgres store: SQLAlchemy for the schema and cold paths, an asyncpg pool for
the hot ones (create, claim, flush, event reads); NOTIFY in the writing transaction."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from falsework.engine import migrate, queries
from falsework.engine.models import Event
from falsework.engine.store import (
    Row,
    Runner,
    Store,
    WriteBatch,
    _json_object,
    dumps,
    event_of,
    loads,
    retried,
    sort_claimed,
)

# Any constant shared by every Falsework process; only migrations take it.
_MIGRATION_LOCK = 727340000

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# asyncpg's errors that mean the connection is gone (pg_terminate_backend, a
# restart, a network drop): retried by the callers like SQLAlchemy's.
_LOST = (
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
)


def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters as asyncpg's ``$n``, and the names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


async def _json_codecs(conn: asyncpg.Connection) -> None:
    """json/jsonb decoded as SQLAlchemy's asyncpg dialect does, so rows read on
    either path look the same."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=str, decoder=loads, schema="pg_catalog", format="text"
        )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset (UNLISTEN, RESET ALL, ...: one more
    round trip per statement). The hot statements change no session state; the
    pool still rolls back a transaction left open."""


class PostgresStore(Store):
    dialect: ClassVar[str] = "postgres"
    supports_listen: ClassVar[bool] = True

    @classmethod
    def create(cls, url: URL) -> PostgresStore:
        engine = create_async_engine(
            url,
            pool_size=5,
            max_overflow=15,
            pool_timeout=60,
            json_deserializer=loads,
            connect_args={"server_settings": {"application_name": "falsework"}}
            if url.get_driver_name() == "asyncpg"
            else {"application_name": "falsework"},
        )
        return cls(url, engine)

    def __init__(self, url: URL, engine: AsyncEngine) -> None:
        super().__init__(url, engine)
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._raw = {name: positional(q) for name, q in queries.load(self.dialect).items()}
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @property
    def direct(self) -> bool:
        """Whether the hot statements run on the asyncpg connection directly."""
        return self.url.get_driver_name() == "asyncpg"

    @asynccontextmanager
    async def runner(self, *, transaction: bool) -> AsyncIterator[Runner]:
        """``run(query name, **params) -> rows`` on a pooled connection.

        With asyncpg (the default driver) the hot statements of the worker and the
        API (create, claim, flush) run on the driver's connection directly:
        SQLAlchemy's per-statement machinery cost more CPU than the round trip
        itself. A lost connection is dropped from the pool and raised as
        ``ConnectionError``, which callers retry. Other drivers (psycopg) go
        through SQLAlchemy.
        """
        if not self.direct:
            async with self.write() if transaction else self.single() as sa_conn:

                async def through_sqlalchemy(name: str, **params: Any) -> list[Any]:
                    return list(await self.q(sa_conn, name, **params))

                yield through_sqlalchemy
            return
        pool = self._pool or await self._open_pool()
        try:
            async with pool.acquire() as driver:

                async def on_driver(name: str, **params: Any) -> list[Any]:
                    sql, names = self._raw[name]
                    return [Row.of(r) for r in await driver.fetch(sql, *(params[n] for n in names))]

                if transaction:
                    async with driver.transaction():
                        yield on_driver
                else:
                    yield on_driver
        except _LOST as exc:
            # asyncpg's pool replaces a closed connection at its next acquire
            raise ConnectionError(f"the database connection was lost: {exc}") from exc

    async def _open_pool(self) -> asyncpg.Pool:
        """The hot statements' own asyncpg pool (its acquire costs a tenth of
        SQLAlchemy's checkout, which showed in the enqueue→start latency)."""
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.listen_dsn,
                    min_size=1,
                    max_size=10,
                    init=_json_codecs,
                    reset=_keep_session,
                    server_settings={"application_name": "falsework"},
                )
            return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        await super().close()

    async def read_rows(self, name: str, **params: Any) -> list[Any]:
        if not self.direct:
            return await super().read_rows(name, **params)
        async with self.runner(transaction=False) as run:
            return await run(name, **params)

    @retried
    async def events_many(
        self, wanted: list[tuple[str, int]], limit: int = 1000
    ) -> list[list[Event]]:
        # one statement for every pair (a LATERAL join), where SQLite reads per pair
        out: list[list[Event]] = [[] for _ in wanted]
        for r in await self.read_rows("events_many", wanted=dumps(wanted), limit=limit):
            out[int(r[0]) - 1].append(event_of(r[1:]))
        return out

    async def insert_tasks(self, rows: list[dict[str, Any]]) -> list[str]:
        for row in rows:
            row["run_after"] = self.ts_param(row["run_after"])
        async with self.runner(transaction=False) as run:
            return [r[0] for r in await run("task_insert", rows=dumps(rows))]

    @property
    def listen_dsn(self) -> str:
        """A plain libpq URL for the dedicated listener connection."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def apply(self, batch: WriteBatch) -> set[str]:
        """Two statements: lock and check the batch's tasks, then write everything."""
        ids = sorted(batch.tokens)
        async with self.runner(transaction=True) as run:
            rows = await run("task_lock_owned", ids=dumps(ids))
            current = {r[0]: (r[1], r[2]) for r in rows}
            refused = {
                tid for tid, tok in batch.tokens.items() if current.get(tid) != (tok, "processing")
            }
            events = [
                f'{{"task_id":"{tid}","type":"{typ}","body":{body}}}'
                for tid, _tok, typ, body in batch.events
                if tid not in refused
            ]
            events += [
                f'{{"task_id":"{f.task_id}","type":"{f.event_type}","body":{f.event_body}}}'
                for f in batch.finishes
                if f.task_id not in refused
            ]
            updates: dict[str, list[str]] = {}
            for tid, steps in batch.steps.items():
                updates.setdefault(tid, []).append(f'"steps":{_json_object(steps)}')
            for tid, cps in batch.checkpoints.items():
                updates.setdefault(tid, []).append(f'"checkpoints":{_json_object(cps)}')
            for f in batch.finishes:
                updates.setdefault(f.task_id, []).append(f'"status":"{f.status}"')
            for tid in batch.releases:
                updates.setdefault(tid, []).append('"status":"open"')
            rows_json = [
                f'{{"id":"{tid}",{",".join(parts)}}}'
                for tid, parts in updates.items()
                if tid not in refused
            ]
            if events or rows_json:
                await run(
                    "flush_write",
                    events="[" + ",".join(events) + "]",
                    updates="[" + ",".join(rows_json) + "]",
                )
        return refused

    async def claim(self, worker_id: str, n: int, per_user_cap: int | None) -> list[Any]:
        if per_user_cap is not None:
            return await super().claim(worker_id, n, per_user_cap)
        async with self.runner(transaction=False) as run:
            rows = await run("task_claim", worker=worker_id, n=n)
        return sort_claimed(rows)

    @asynccontextmanager
    async def single(self) -> AsyncIterator[AsyncConnection]:
        # One statement is atomic on its own: no BEGIN/COMMIT round trips.
        async with self.autocommit.connect() as conn:
            yield conn

    async def notify(self, conn: AsyncConnection, channel: str, payload: str) -> None:
        await self.q(conn, "task_notify", channel=channel, payload=payload)

    async def before_fair_claim(self, conn: AsyncConnection) -> None:
        await self.q(conn, "claim_lock")

    async def migrate(self) -> None:
        # Several processes may start at once: one migrates, the others wait and
        # then find nothing to do.
        async with self.engine.connect() as conn:
            await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await conn.run_sync(migrate.upgrade)
            await conn.commit()
