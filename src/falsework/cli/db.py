"""`falsework db upgrade|backup|restore|vacuum`: the engine's migrations, backups,
restores and file compaction."""

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


def vacuum() -> None:
    """SQLite: rewrite the file with incremental auto-vacuum on (once, for a file made
    before retention existed), giving its free pages back. Postgres needs none:
    autovacuum reuses the space (VACUUM FULL it in a maintenance window to shrink it)."""
    from pathlib import Path

    from falsework.engine.factory import parse_url
    from falsework.engine.sqlite import compact_database

    settings = load_settings()
    try:
        parsed = parse_url(settings.resolved_database_url)
        if parsed.dialect != "sqlite":
            typer.echo(
                f"{parsed.shown} is Postgres: autovacuum gives deleted rows' space to new ones; "
                "nothing to do (VACUUM FULL in a maintenance window shrinks the files)."
            )
            return
        before, after, was_off = compact_database(Path(parsed.target))
    except FalseworkError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    mode = "now uses" if was_off else "already used"
    typer.echo(
        f"SQLite database {parsed.shown}: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB; "
        f"it {mode} incremental auto-vacuum, so retention gives freed pages back."
    )


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The engine's database.", no_args_is_help=True)
    db.command("upgrade")(upgrade)
    db.command("backup")(backup)
    db.command("restore")(restore)
    db.command("vacuum")(vacuum)
    app.add_typer(db, name="db")
