"""The tests' one way to the local PostgreSQL: a fresh database per use, made
empty or as a copy of a template (``CREATE DATABASE … TEMPLATE``), and dropped
after it, connections and all.

The server is found through FALSEWORK_TEST_DATABASE_URL; when it is unreachable the
test fails, it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg

PG_URL = os.environ.get(
    "FALSEWORK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/falsework_test"
)


def url_of(name: str) -> str:
    """The URL of database ``name`` on the tests' server."""
    return urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))


def admin_url() -> str:
    """The server's maintenance database, to create and drop others from."""
    return url_of("postgres")


def create_database(prefix: str, *, template: str | None = None) -> str:
    """A new database (a copy of ``template`` when given); its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    return name


def drop_database(name: str) -> None:
    """Drops ``name`` if it is there, closing whatever is still connected to it."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(prefix: str, *, template: str | None = None) -> Iterator[str]:
    """A new database's URL for the ``with`` block; dropped after it."""
    name = create_database(prefix, template=template)
    try:
        yield url_of(name)
    finally:
        drop_database(name)
