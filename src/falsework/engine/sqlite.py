"""The SQLite store: aiosqlite, WAL, one writer connection with BEGIN IMMEDIATE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from falsework.engine import migrate
from falsework.engine.store import Store, WriteBatch, _json, dumps


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

    async def patch_state(self, conn: AsyncConnection, batch: WriteBatch, ids: list[str]) -> None:
        # SQLite has no top-level "||" merge for JSON (json_patch is a deep merge
        # that drops nulls), and writes are serialised anyway: read, merge, write.
        current = {
            r[0]: (_json(r[1]), _json(r[2]))
            for r in await self.q(conn, "task_read_state", ids=dumps(ids))
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
        await self.q(conn, "task_write_state", rows=dumps(rows))
