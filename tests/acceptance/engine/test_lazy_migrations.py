"""A process opening a database already at the newest revision never imports
SQLAlchemy or Alembic (about 40 MiB of a worker's memory; engine/migrate.py):
it reads the revision with the store's own driver. One that must upgrade does."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import fresh_database

PROBE = """
import asyncio, json, sys
from falsework.engine.factory import open_store

async def main():
    store = await open_store(sys.argv[1])
    try:
        await store.migrate()
        revision = await store.schema_revision()
    finally:
        await store.close()
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "alembic"})
    print(json.dumps({"revision": revision, "heavy": heavy}))

asyncio.run(main())
"""


def _open(url: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(params=["sqlite", "postgres"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each dialect never migrated (the shared fixtures' are copies
    of migrated templates)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'falsework.db'}"
    else:
        with fresh_database("fw_lazy") as url:
            yield url


def test_a_migrated_database_opens_without_sqlalchemy(new_database: str) -> None:
    from falsework.engine.migrate import head

    first = _open(new_database)  # a new database, migrated here
    second = _open(new_database)
    assert first["revision"] == second["revision"] == head()
    assert first["heavy"] == ["alembic", "sqlalchemy"]
    assert second["heavy"] == []
