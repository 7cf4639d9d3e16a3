"""`falsework worker`: run tasks from the database until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated, Any

import typer

from falsework import logs
from falsework.config import Settings, load_settings
from falsework.errors import FalseworkError


async def _work(settings: Settings, burst: bool) -> None:
    from falsework.engine import TaskWorker
    from falsework.engine.heap import freeze_startup_heap
    from falsework.runner import as_executor
    from falsework.runner.tasklog import bind_context, log_tasks
    from falsework.tracing import Tracing
    from falsework.updates.fleet import recording
    from falsework.wiring import open_broker, webhook_services, worker_options, workflow_runner

    traces = Tracing.from_environment()
    broker = await open_broker(settings)
    try:
        runner = workflow_runner(settings)
        executor = traces.instrument(as_executor(recording(runner, broker)))
        if settings.task_log:
            executor = log_tasks(executor)
        made: list[TaskWorker] = []
        executor = bind_context(executor, lambda: made[0].worker_id if made else None)
        dispatcher, deliveries = webhook_services(settings, broker)
        executor = deliveries.wrap(executor)
        worker = TaskWorker(broker, executor, worker_options(settings))
        made.append(worker)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
        logging.getLogger("falsework").info(
            "worker %s: limit %d%s", worker.worker_id, worker.limit, " (burst)" if burst else ""
        )
        dispatching = asyncio.create_task(dispatcher.run(), name="falsework-webhooks")
        freeze_startup_heap()  # start-up done: the GC's tuning for a worker (engine/heap.py)
        try:
            await worker.run(burst=burst)
        finally:
            dispatching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatching
    finally:
        await broker.close()
        await asyncio.to_thread(traces.shutdown)  # the last spans go out


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not on Windows
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Tasks run at once (default 100, FALSEWORK_CONCURRENCY).", min=0),
    ] = None,
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty.")] = False,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
    log_format: Annotated[
        str | None,
        typer.Option(help="text or json: one JSON object per line (FALSEWORK_LOG_FORMAT)."),
    ] = None,
) -> None:
    """Claim and run tasks; SIGTERM/SIGINT stops claiming, drains, and exits 0."""
    overrides: dict[str, Any] = {}
    if concurrency is not None:
        overrides["concurrency"] = concurrency
    if log_format is not None:
        overrides["log_format"] = log_format
    try:
        settings = load_settings(**overrides)
    except (OSError, ValueError) as exc:  # a missing or invalid config file
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(log_level, settings.log_format)
    try:
        _run(_work(settings, burst))
    except FalseworkError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
