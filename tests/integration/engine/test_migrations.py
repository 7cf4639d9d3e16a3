"""The migrated schema is the schema the store expects (engine/schema.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex

from falsework.engine import Broker
from falsework.engine.factory import parse_url
from falsework.engine.migrate import head, latest
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
    # compared by name below, and by column order from the catalog in
    # test_migrated_indexes_keep_their_order_and_shape.
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


def _descending(conn: sa.Connection) -> dict[str, list[bool]]:
    """Each index of the metadata as the database holds it: DESC or not, per key column."""
    names = [ix.name for t in metadata.tables.values() for ix in t.indexes if ix.name]
    if conn.dialect.name == "sqlite":
        # PRAGMA index_xinfo: (seqno, cid, name, desc, coll, key) per column
        return {
            name: [bool(r[3]) for r in conn.exec_driver_sql(f"PRAGMA index_xinfo({name})") if r[5]]
            for name in names
        }
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, CAST(i.indoption AS int2[]) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(:names)"
        ),
        {"names": names},
    )
    # indoption bit 0 is DESC
    return {name: [bool(o & 1) for o in options] for name, options in rows}


def _stored_ddl(conn: sa.Connection) -> dict[str, str]:
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    return {name: sql for name, sql in rows if sql}


async def test_migrated_indexes_keep_their_order_and_shape(database_url: str, store: Store) -> None:
    """compare_metadata cannot see an index's column order: an Alembic batch copy
    of tasks on SQLite once rebuilt ix_tasks_claim as (priority, seq), and every
    claim sorted the whole queue (migration 0011). Checked here from the catalog."""
    wanted = {
        ix.name: [str(e).upper().endswith(" DESC") for e in ix.expressions]
        for t in metadata.tables.values()
        for ix in t.indexes
        if ix.name
    }
    assert wanted["ix_tasks_claim"] == [True, False]
    async with schema_connection(database_url) as conn:
        assert await conn.run_sync(_descending) == wanted
        if conn.dialect.name == "sqlite":
            # SQLite keeps the CREATE INDEX text: the partial WHERE too is metadata's
            stored = await conn.run_sync(_stored_ddl)
            dialect = conn.dialect
            for t in metadata.tables.values():
                for ix in t.indexes:
                    assert stored[str(ix.name)] == str(CreateIndex(ix).compile(dialect=dialect))


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
    # what a store compares its revision with, read without Alembic
    assert latest() == head()


async def test_a_database_behind_the_newest_revision_is_upgraded(
    database_url: str, store: Store
) -> None:
    # the store reads its revision first and skips Alembic only at the newest one
    from alembic import command
    from alembic.script import ScriptDirectory

    from falsework.engine.migrate import alembic_config

    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head()).down_revision
    async with schema_connection(database_url) as conn:
        # a real step back (the newest migration's downgrade), not a stamp: the
        # upgrade then has its objects to make again
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "-1"))
        await conn.commit()
    assert await store.schema_revision() == previous
    await store.migrate()
    assert await store.schema_revision() == head()


async def test_downgrading_0013_drops_orphan_events_and_restores_the_key(
    database_url: str, broker: Broker
) -> None:
    # Without the key an event may outlive its task (nothing the engine does
    # today, but a hand-made delete or a future path can): 0013's downgrade
    # restores the key, so it removes those first instead of failing.
    from alembic import command

    from falsework.engine.migrate import alembic_config

    task = await broker.create({"steps": []})
    assert await broker.store.event_append(task.id, "log", '{"m": "kept"}')
    orphan = str(uuid.uuid4())
    insert = sa.text(
        "INSERT INTO task_events (task_id, type, body, created_at) "
        "VALUES (:task, 'log', '{\"m\": \"orphan\"}', CURRENT_TIMESTAMP)"
    )
    events = sa.text("SELECT task_id FROM task_events ORDER BY id")
    async with schema_connection(database_url) as conn:
        await conn.execute(insert, {"task": orphan})
        await conn.commit()
        assert [r[0] for r in (await conn.execute(events)).all()] == [task.id, orphan]
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0012"))
        await conn.commit()
        assert [r[0] for r in (await conn.execute(events)).all()] == [task.id]
        keys = await conn.run_sync(lambda c: sa.inspect(c).get_foreign_keys("task_events"))
        assert [(k["referred_table"], k["constrained_columns"]) for k in keys] == [
            ("tasks", ["task_id"])
        ]
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
        await conn.commit()
    assert await broker.store.schema_revision() == head()
