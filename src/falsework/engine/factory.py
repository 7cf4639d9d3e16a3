"""Opens the store for a database URL (outside the contract module, so the
contract imports no implementation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from falsework.engine.options import StoreOptions
from falsework.engine.postgres import PostgresStore
from falsework.engine.sqlite import SqliteStore
from falsework.engine.store import Store
from falsework.errors import InputError


@dataclass(frozen=True)
class DatabaseURL:
    dialect: Literal["postgres", "sqlite"]
    target: str  # a libpq URL for asyncpg, or the SQLite file's path
    shown: str  # the URL with its password hidden


def hide_password(url: str) -> str:
    """The URL as a user may see it in an error line."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


def parse_url(url: str) -> DatabaseURL:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``postgresql://…`` (or
    ``postgres://``, ``postgresql+asyncpg://``). Postgres runs on asyncpg only: a
    URL naming another driver (``+psycopg``) is refused, not silently switched."""
    shown = hide_password(url)
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise InputError(f"Not a database URL: {shown}")
    backend, _, driver = scheme.lower().partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "asyncpg"):
            raise InputError(
                f"Unsupported Postgres driver {driver!r} in {shown}: Falsework uses asyncpg "
                "(write postgresql://...)"
            )
        return DatabaseURL("postgres", f"postgresql://{rest}", shown)
    if backend == "sqlite":
        if driver not in ("", "aiosqlite"):
            raise InputError(
                f"Unsupported SQLite driver {driver!r} in {shown} (write sqlite:///...)"
            )
        path = rest[1:] if rest.startswith("/") else rest
        path = path.split("?", 1)[0]
        if not path or path == ":memory:":
            raise InputError(f"A SQLite database needs a file path: {shown}")
        return DatabaseURL("sqlite", path, shown)
    raise InputError(f"Unsupported database (use sqlite:/// or postgresql://): {backend}")


async def open_store(url: str, options: StoreOptions | None = None) -> Store:
    """The store for ``url``, connected (not yet migrated). Raises
    ``DatabaseUnavailableError`` (one line, password hidden) when it cannot be
    reached, ``InputError`` for a URL it cannot use."""
    parsed = parse_url(url)
    chosen = options or StoreOptions()
    if parsed.dialect == "postgres":
        return await PostgresStore.connect(parsed.target, parsed.shown, chosen)
    return await SqliteStore.connect(parsed.target, parsed.shown, chosen)
