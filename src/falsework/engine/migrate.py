"""Runs the Alembic migrations in ``engine/migrations`` (SQLAlchemy is used for
the schema and its migrations only; every query runs on the stores' drivers).

SQLAlchemy and Alembic cost a process about 40 MiB of memory once imported, so
they are imported only when a database needs upgrading: a store first reads its
revision with its own driver and compares it with ``latest()``, read from the
migration files themselves (docs/engine.md, "Memory")."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING

from falsework.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

# a migration file's ``revision = "0011"`` and ``down_revision = "0010"`` (or None)
_LINKS = re.compile(r'^(revision|down_revision)\s*=\s*(?:"([^"]+)"|None)\s*$', re.MULTILINE)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("falsework.engine").joinpath("migrations"))
    )
    cfg.attributes["connection"] = connection
    return cfg


def upgrade_connection(connection: Connection) -> None:
    """Bring the schema to the newest revision (inside the caller's transaction)."""
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def head() -> str:
    """The newest revision of ``engine/migrations`` (what ``upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None  # the migrations are one linear chain
    return found


@functools.cache
def latest() -> str:
    """``head()`` read from the migration files' ``revision`` / ``down_revision``
    lines, without importing Alembic: the one revision no other revises."""
    revisions: set[str] = set()
    revised: set[str] = set()
    folder = resources.files("falsework.engine").joinpath("migrations", "versions")
    for entry in folder.iterdir():
        if not entry.name.endswith(".py") or entry.name.startswith("__"):
            continue
        links = dict(_LINKS.findall(entry.read_text(encoding="utf-8")))
        revisions.add(links["revision"])
        if links.get("down_revision"):
            revised.add(links["down_revision"])
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"engine/migrations has {len(heads)} heads, not one: {sorted(heads)}")
    return heads.pop()


async def outdated(revision: Callable[[], Awaitable[str]]) -> bool:
    """Whether a database needs ``upgrade``, given a store's ``schema_revision``
    (which fails on a database never migrated: no revision table, or no row)."""
    try:
        return await revision() != latest()
    except (DatabaseError, IndexError):
        return True


def current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, *, lock: str | None = None) -> None:
    """Upgrade the database of ``engine`` in one transaction, first running
    ``lock`` (a statement that serialises processes migrating at once)."""
    import sqlalchemy as sa

    async with engine.connect() as conn:
        if lock is not None:
            await conn.execute(sa.text(lock))
        await conn.run_sync(upgrade_connection)
        await conn.commit()
