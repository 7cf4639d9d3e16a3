"""The Postgres store: asyncpg through SQLAlchemy, NOTIFY in the writing transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from falsework.engine import migrate
from falsework.engine.store import Store, WriteBatch, _json_object, dumps, sort_claimed

# Any constant shared by every Falsework process; only migrations take it.
_MIGRATION_LOCK = 727340000


class PostgresStore(Store):
    dialect: ClassVar[str] = "postgres"
    supports_listen: ClassVar[bool] = True

    @classmethod
    def create(cls, url: URL) -> PostgresStore:
        engine = create_async_engine(
            url,
            pool_size=10,
            max_overflow=20,
            pool_timeout=60,
            connect_args={"server_settings": {"application_name": "falsework"}}
            if url.get_driver_name() == "asyncpg"
            else {"application_name": "falsework"},
        )
        return cls(url, engine)

    def __init__(self, url: URL, engine: AsyncEngine) -> None:
        super().__init__(url, engine)
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def listen_dsn(self) -> str:
        """A plain libpq URL for the dedicated listener connection."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def apply(self, batch: WriteBatch) -> set[str]:
        """Two statements: lock and check the batch's tasks, then write everything."""
        ids = sorted(batch.tokens)
        async with self.write() as conn:
            rows = await self.q(conn, "task_lock_owned", ids=dumps(ids))
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
                await self.q(
                    conn,
                    "flush_write",
                    events="[" + ",".join(events) + "]",
                    updates="[" + ",".join(rows_json) + "]",
                )
        return refused

    async def claim(self, worker_id: str, n: int, per_user_cap: int | None) -> list[Any]:
        if per_user_cap is not None:
            return await super().claim(worker_id, n, per_user_cap)
        async with self.single() as conn:
            rows = list(await self.q(conn, "task_claim", worker=worker_id, n=n))
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
