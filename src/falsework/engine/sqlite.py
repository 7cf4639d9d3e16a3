"""The SQLite store: aiosqlite, WAL, one writer connection with BEGIN IMMEDIATE."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from falsework.engine import migrate, queries
from falsework.engine.store import Row, Runner, Store, WriteBatch, _json, dumps, sort_claimed


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook issue the BEGIN we choose (IMMEDIATE for the
    # writer), instead of the sqlite3 module's implicit deferred BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class SqliteStore(Store):
    dialect: ClassVar[str] = "sqlite"

    def __init__(self, url: URL, engine: AsyncEngine, write_engine: AsyncEngine) -> None:
        super().__init__(url, engine)
        self.write_engine = write_engine
        self._raw = queries.load(self.dialect)  # sqlite3 takes :name parameters as they are

    @classmethod
    def create(cls, url: URL) -> SqliteStore:
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        reader = create_async_engine(url)
        # One writer connection per process: writers queue in the pool instead of
        # spinning on SQLITE_BUSY; other processes wait on busy_timeout.
        writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=600)
        event.listen(reader.sync_engine, "connect", _on_connect)
        event.listen(writer.sync_engine, "connect", _on_connect)

        @event.listens_for(writer.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return cls(url, reader, writer)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.write_engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        await self.write_engine.dispose()
        await super().close()

    async def migrate(self) -> None:
        async with self.write_engine.begin() as conn:
            await conn.run_sync(migrate.upgrade)

    def ts_param(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    async def patch_state(self, run: Runner, batch: WriteBatch, ids: list[str]) -> None:
        # SQLite has no top-level "||" merge for JSON (json_patch is a deep merge
        # that drops nulls), and writes are serialised anyway: read, merge, write.
        current = {
            r[0]: (_json(r[1]), _json(r[2])) for r in await run("task_read_state", ids=dumps(ids))
        }
        rows = []
        for tid in ids:
            if tid not in current:
                continue
            steps, cps = current[tid]
            for key, value in batch.steps.get(tid, {}).items():
                steps[key] = _json(value)
            for key, value in batch.checkpoints.get(tid, {}).items():
                cps[key] = _json(value)
            rows.append({"id": tid, "steps": steps, "checkpoints": cps})
        await run("task_write_state", rows=dumps(rows))

    # -- the hot statements, on the driver ----------------------------------
    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """The writer's aiosqlite connection inside ``BEGIN IMMEDIATE``.

        Create, claim and flush run their statements on it directly, one thread
        hop each: through SQLAlchemy every statement cost several hops (cursor,
        execute, fetch, close) and more CPU than the statement itself.
        """
        async with self.write_engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.execute_fetchall("BEGIN IMMEDIATE")
            try:
                yield driver
            except BaseException:
                with contextlib.suppress(Exception):
                    await driver.execute_fetchall("ROLLBACK")
                raise
            await driver.execute_fetchall("COMMIT")

    def _runner(self, driver: Any) -> Runner:
        async def run(name: str, **params: Any) -> list[Any]:
            return list(await driver.execute_fetchall(self._raw[name], params))

        return run

    async def insert_tasks(self, rows: list[dict[str, Any]]) -> list[str]:
        for row in rows:
            row["run_after"] = self.ts_param(row["run_after"])
        async with self.driver() as driver:
            found = await self._runner(driver)("task_insert", rows=dumps(rows))
        return [r[0] for r in found]

    async def claim(self, worker_id: str, n: int, per_user_cap: int | None) -> list[Any]:
        name, params = "task_claim", {"worker": worker_id, "n": n}
        if per_user_cap is not None:
            name, params = "task_claim_fair", {**params, "cap": per_user_cap}
        async with self.driver() as driver:
            async with driver.execute(self._raw[name], params) as cursor:
                found = await cursor.fetchall()
                names = [d[0] for d in cursor.description]
        rows = []
        for values in found:
            row = Row(values)
            row._mapping = dict(zip(names, values, strict=True))
            rows.append(row)
        return sort_claimed(rows)

    async def apply(self, batch: WriteBatch) -> set[str]:
        async with self.driver() as driver:
            return await self.apply_with(self._runner(driver), batch)
