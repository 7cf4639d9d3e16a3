"""The migrated schema is the schema the store expects (engine/schema.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from falsework.engine.factory import parse_url
from falsework.engine.migrate import head
from falsework.engine.schema import metadata
from falsework.engine.store import Store


@asynccontextmanager
async def schema_connection(database_url: str) -> AsyncIterator[AsyncConnection]:
    """SQLAlchemy on the database, to compare its schema (the stores use none)."""
    parsed = parse_url(database_url)
    if parsed.dialect == "postgres":
        url = "postgresql+asyncpg://" + parsed.target.split("://", 1)[1]
    else:
        url = f"sqlite+aiosqlite:///{parsed.target}"
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


def _plain(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
    # Alembic can only approximate expression indexes (priority DESC); those are
    # compared by name and columns below instead.
    return not (type_ == "index" and name == "ix_tasks_claim")


def _diff(conn: sa.Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _plain})
    return list(compare_metadata(ctx, metadata))


def _indexes(conn: sa.Connection) -> dict[str, set[str]]:
    insp = sa.inspect(conn)
    return {
        table: {ix["name"] for ix in insp.get_indexes(table) if ix["name"]}
        for table in metadata.tables
    }


async def test_migrated_schema_matches_metadata(database_url: str, store: Store) -> None:
    async with schema_connection(database_url) as conn:
        diff = await conn.run_sync(_diff)
        indexes = await conn.run_sync(_indexes)
    assert diff == []
    expected = {
        table.name: {ix.name for ix in table.indexes if ix.name} for table in metadata.sorted_tables
    }
    for table, names in expected.items():
        assert names <= indexes[table], (table, names, indexes[table])


async def test_migrate_twice_is_a_no_op(database_url: str, store: Store) -> None:
    await store.migrate()
    async with schema_connection(database_url) as conn:
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    assert version == [(head(),)]
    assert await store.schema_revision() == head()


def test_the_migrations_are_one_chain_in_number_order() -> None:
    from alembic.script import ScriptDirectory

    from falsework.engine.migrate import alembic_config

    revisions = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())
    numbers = [r.revision for r in reversed(revisions)]
    assert numbers == sorted(numbers) and numbers[0] == "0001"
    assert head() == numbers[-1]
