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
    """List the workers, their limits and running tasks (and whether claiming is paused)."""
    from falsework.engine import Broker, WorkerInfo
    from falsework.engine.models import ClusterFlag

    async def fetch(broker: Broker) -> tuple[list[WorkerInfo], ClusterFlag | None]:
        return await broker.workers(), await broker.paused()

    infos, paused = _with_broker(fetch)
    if as_json:
        output.print_json([w.to_json() for w in infos])
        return
    console = output.console()
    if paused is not None:
        why = paused.detail.get("reason") or "no reason given"
        typer.echo(f"Claiming is paused (by {paused.set_by or 'someone'}: {why}).", err=True)
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


def _actor() -> str:
    """Who acts from this command line, as the audit trail names them."""
    import getpass
    import socket

    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


def pause(
    reason: Annotated[str, typer.Option(help="Why (shown on the admin page, audited).")] = "",
) -> None:
    """Stop every worker of the cluster from claiming (running tasks go on) until resumed."""
    from falsework.api.admin import PAUSE
    from falsework.engine import Broker
    from falsework.engine.codec import dumps
    from falsework.engine.models import AuditEntry

    async def apply(broker: Broker) -> None:
        await broker.pause(_actor(), reason)
        await broker.audit_write([AuditEntry(_actor(), PAUSE, None, dumps({"reason": reason}))])

    _with_broker(apply)
    typer.echo("Claiming is paused on every node; `falsework workers resume` ends it.")


def resume() -> None:
    """Let every worker claim again."""
    from falsework.api.admin import RESUME
    from falsework.engine import Broker
    from falsework.engine.models import AuditEntry

    async def apply(broker: Broker) -> bool:
        cleared = await broker.resume()
        if cleared:
            await broker.audit_write([AuditEntry(_actor(), RESUME, None, "{}")])
        return cleared

    cleared = _with_broker(apply)
    typer.echo("Claiming resumed." if cleared else "Claiming was not paused.")


def register(app: typer.Typer) -> None:
    workers = typer.Typer(help="The running workers.", no_args_is_help=True)
    workers.command("ls")(ls)
    workers.command("set-limit")(set_limit)
    workers.command("pause")(pause)
    workers.command("resume")(resume)
    app.add_typer(workers, name="workers")
