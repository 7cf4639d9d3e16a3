"""`falsework db upgrade|backup|restore`: the engine's migrations, backups and restores."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from falsework.config import load_settings
from falsework.errors import FalseworkError


def upgrade() -> None:
    """Create or upgrade the engine's tables (the worker and server also do it at start)."""
    from falsework.engine.factory import hide_password
    from falsework.wiring import open_broker

    settings = load_settings()
    url = settings.resolved_database_url

    async def main() -> str:
        broker = await open_broker(settings)
        try:
            return await broker.schema_revision()
        finally:
            await broker.close()

    try:
        revision = asyncio.run(main())
    except FalseworkError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Database {hide_password(url)} is at revision {revision}.")


def backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write.")],
    force: Annotated[bool, typer.Option(help="Replace PATH if it exists.")] = False,
) -> None:
    """Back up the live database: SQLite through its online backup API, Postgres with
    pg_dump (custom format). The secret key is not in it: keep that apart."""
    from falsework.engine.backup import backup as run_backup

    settings = load_settings()
    try:
        said = run_backup(settings.resolved_database_url, path, force=force)
    except FalseworkError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(said)
    typer.echo(
        "The secrets of unfinished tasks need the same key to be read after a restore: "
        "FALSEWORK_SECRET_KEY, or DATA_DIR/secret.key (not in the backup)."
    )


def restore(
    path: Annotated[Path, typer.Argument(help="A file written by `falsework db backup`.")],
    force: Annotated[
        bool, typer.Option(help="Overwrite a database that exists (stop every node first).")
    ] = False,
) -> None:
    """Restore a backup into the configured database, which must be new and unused
    (SQLite: no file yet; Postgres: an empty database, loaded with pg_restore)."""
    from falsework.engine.backup import restore as run_restore

    settings = load_settings()
    try:
        said = run_restore(path, settings.resolved_database_url, force=force)
    except FalseworkError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(said)


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The engine's database.", no_args_is_help=True)
    db.command("upgrade")(upgrade)
    db.command("backup")(backup)
    db.command("restore")(restore)
    app.add_typer(db, name="db")
