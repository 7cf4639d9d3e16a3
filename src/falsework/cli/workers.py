"""`falsework workers ls|set-limit`: see and steer the running workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from falsework.cli import output
from falsework.config import load_settings
from falsework.errors import FalseworkError

T = TypeVar("T")


def _with_broker(fn: Callable[..., Awaitable[T]]) -> T:
    from falsework.wiring import open_broker

    settings = load_settings()

    async def main() -> T:
        broker = await open_broker(settings)
        try:
            return await fn(broker)
        finally:
            await broker.close()

    try:
        return asyncio.run(main())
    except FalseworkError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def ls(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print as JSON (the shape of GET /v2/workers).")
    ] = False,
) -> None:
    """List the workers, their limits and running tasks."""
    from falsework.engine import Broker, WorkerInfo

    async def fetch(broker: Broker) -> list[WorkerInfo]:
        return await broker.workers()

    infos = _with_broker(fetch)
    if as_json:
        output.print_json([w.to_json() for w in infos])
        return
    console = output.console()
    table = Table(box=None, pad_edge=False, header_style="bold" if console.is_terminal else "")
    for column in ("ID", "HOST", "PID", "LIMIT", "RUNNING", "HEARTBEAT"):
        table.add_column(
            column, justify="right" if column in ("PID", "LIMIT", "RUNNING") else "left"
        )
    for w in infos:
        age = f"{w.heartbeat_age:.1f}s ago"
        table.add_row(w.id, w.host, str(w.pid), str(w.limit), str(w.running), age)
    output.print_table(console, table)


def set_limit(
    worker_id: Annotated[str, typer.Argument(help="The worker id (see `workers ls`).")],
    limit: Annotated[int, typer.Argument(help="Tasks it may run at once (0-10000).")],
) -> None:
    """Change a running worker's concurrency limit; it applies it within one heartbeat."""
    from falsework.engine import Broker, WorkerInfo

    async def apply(broker: Broker) -> WorkerInfo:
        return await broker.set_worker_limit(worker_id, limit)

    info = _with_broker(apply)
    typer.echo(f"Worker {info.id}: limit {info.limit}.")


def register(app: typer.Typer) -> None:
    workers = typer.Typer(help="The running workers.", no_args_is_help=True)
    workers.command("ls")(ls)
    workers.command("set-limit")(set_limit)
    app.add_typer(workers, name="workers")
