"""The Postgres store: asyncpg through SQLAlchemy, NOTIFY in the writing transaction."""

from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from falsework.engine import migrate
from falsework.engine.store import Store

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

    @property
    def listen_dsn(self) -> str:
        """A plain libpq URL for the dedicated listener connection."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

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
