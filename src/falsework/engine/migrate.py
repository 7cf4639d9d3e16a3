"""Runs the Alembic migrations in ``engine/migrations`` (SQLAlchemy is used for
the schema and its migrations only; every query runs on the stores' drivers)."""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("falsework.engine").joinpath("migrations"))
    )
    cfg.attributes["connection"] = connection
    return cfg


def upgrade_connection(connection: Connection) -> None:
    """Bring the schema to the newest revision (inside the caller's transaction)."""
    command.upgrade(alembic_config(connection), "head")


def head() -> str:
    """The newest revision of ``engine/migrations`` (what ``upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None  # the migrations are one linear chain
    return found


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, *, lock: str | None = None) -> None:
    """Upgrade the database of ``engine`` in one transaction, first running
    ``lock`` (a statement that serialises processes migrating at once)."""
    async with engine.connect() as conn:
        if lock is not None:
            await conn.execute(sa.text(lock))
        await conn.run_sync(upgrade_connection)
        await conn.commit()
