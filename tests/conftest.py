"""Fixtures shared by every test module.

``database_url`` is parametrised over a fresh SQLite file and a fresh PostgreSQL
database (created for the test, dropped after), so every engine test runs on both.
Postgres is found through FALSEWORK_TEST_DATABASE_URL; when it is unreachable the
test fails, it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test (plain postgresql:// URL)."""
    name = f"fw_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
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
