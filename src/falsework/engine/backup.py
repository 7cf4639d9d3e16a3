"""Backups of a live database, and restores into a fresh one.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies a consistent
snapshot page by page while the server keeps writing; the copy is written beside
the target and renamed into place, so a backup file is never half written.
Postgres: ``pg_dump --format=custom`` (one consistent snapshot of a live
database) and ``pg_restore`` into an empty database; they must be installed (the
PostgreSQL client package) and be at least the server's major version. The
password goes to them in ``PGPASSWORD``, never on their command line.

Neither holds the key that encrypts task secrets (``FALSEWORK_SECRET_KEY`` or
``DATA_DIR/secret.key``): keep it apart from the backups, and give the restored
database the same key. A task that was running when the backup was taken is
``processing`` in it with an old heartbeat: the first janitor after the restore
re-opens it (``recovered``), as after any crash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from falsework.engine.factory import DatabaseURL, parse_url
from falsework.engine.sqlite import copy_database, is_falsework_database
from falsework.errors import DatabaseError, FalseworkError, InputError


class BackupError(FalseworkError):
    """The backup or restore failed."""


def backup(url: str, target: Path, *, force: bool = False) -> str:
    """Write a backup of the database at ``url`` to ``target``; returns what it did
    (one line)."""
    parsed = parse_url(url)
    if target.exists() and not force:
        raise InputError(f"{target} exists: choose a new file, or --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    if parsed.dialect == "sqlite":
        _copy(Path(parsed.target), target, parsed.shown, "Backing up")
        return f"SQLite database {parsed.shown} backed up to {target} (online backup API)"
    partial = target.with_name(f".{target.name}.partial")
    _pg_tool("pg_dump", ["--format=custom", "--no-owner", f"--file={partial}"], parsed)
    partial.replace(target)
    return f"Postgres database {parsed.shown} dumped to {target} (pg_dump, custom format)"


def restore(source: Path, url: str, *, force: bool = False) -> str:
    """Load the backup ``source`` into the (empty) database at ``url``."""
    parsed = parse_url(url)
    if not source.is_file():
        raise InputError(f"No backup file at {source}")
    if parsed.dialect == "sqlite":
        live = Path(parsed.target)
        if live.exists() and live.stat().st_size > 0 and not force:
            raise InputError(
                f"{parsed.shown} exists: stop every Falsework process on it and move it "
                "away, or --force to overwrite it"
            )
        if not is_falsework_database(source):
            raise InputError(
                f"{source} is not a Falsework backup (not a SQLite database with its tables)"
            )
        for suffix in ("-wal", "-shm"):  # a stale log must not replay over the copy
            Path(f"{live}{suffix}").unlink(missing_ok=True)
        live.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, live, str(source), "Restoring")
        return f"{source} restored into SQLite database {parsed.shown}"
    _pg_tool(
        "pg_restore",
        ["--no-owner", "--exit-on-error", "--single-transaction", *(["--clean"] if force else [])],
        parsed,
        source=source,
    )
    return f"{source} restored into Postgres database {parsed.shown} (pg_restore)"


def _copy(source: Path, target: Path, shown: str, verb: str) -> None:
    if not source.is_file():
        raise BackupError(f"No SQLite database at {shown}")
    try:
        copy_database(source, target)
    except DatabaseError as exc:
        raise BackupError(f"{verb} {shown} failed: {exc.message}") from exc


def _pg_tool(
    tool: str, args: list[str], parsed: DatabaseURL, *, source: Path | None = None
) -> None:
    found = shutil.which(tool)
    if found is None:
        raise BackupError(
            f"{tool} is not installed: install the PostgreSQL client (e.g. apt-get install "
            f"postgresql-client), at least the server's major version"
        )
    dsn, password = _without_password(parsed.target)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    command = [found, *args, f"--dbname={dsn}"]
    if source is not None:
        command.append(str(source))
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {done.returncode}"
        raise BackupError(f"{tool} of {parsed.shown} failed: {detail}")


def _without_password(dsn: str) -> tuple[str, str | None]:
    parts = urlsplit(dsn)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return dsn, None
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=f"{user}@{hosts}")), unquote(password)
