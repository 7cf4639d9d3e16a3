"""`falsework db upgrade`: run the engine's migrations."""

from __future__ import annotations

import asyncio

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


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The engine's database.", no_args_is_help=True)
    db.command("upgrade")(upgrade)
    app.add_typer(db, name="db")
