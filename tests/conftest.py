"""Fixtures shared by every test module.

``database_url`` is parametrised over a fresh SQLite file and a fresh PostgreSQL
database (a copy of a migrated template made once per session, dropped after
the test), so every engine test runs on both.
Postgres is found through FALSEWORK_TEST_DATABASE_URL; when it is unreachable the
test fails, it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

PG_URL = os.environ.get(
    "FALSEWORK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/falsework_test"
)


def _admin_url() -> str:
    parts = urlsplit(PG_URL)
    return urlunsplit(parts._replace(path="/postgres"))


def _with_db(name: str) -> str:
    parts = urlsplit(PG_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _migrate(url: str) -> None:
    """Create the engine's tables in ``url`` (on a thread of its own: no test's
    event loop is disturbed)."""
    import asyncio

    from falsework.engine.factory import open_store

    async def main() -> None:
        store = await open_store(url)
        try:
            await store.migrate()
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per test session; each test's database is a copy."""
    name = f"fw_tpl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _migrate(_with_db(name))
        yield name
    finally:
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A new PostgreSQL database for this test, already migrated: a copy of the
    session's template (CREATE DATABASE … TEMPLATE), not a migration per test."""
    name = f"fw_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    try:
        yield _with_db(name)
    finally:
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite database file for this test."""
    return f"sqlite:///{tmp_path / 'falsework.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each dialect: every engine test runs on both."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))
