"""The application factory: builds the object graph once and mounts every route."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from falsework import web
from falsework.actions import ActionRegistry
from falsework.api import (
    actions,
    admin,
    audit,
    authoring,
    dryrun,
    entities,
    errors,
    health,
    scaffolds,
    tasks,
    templates,
    workers,
)
from falsework.api.auth import Authenticator
from falsework.api.deps import Services
from falsework.api.edge import Edge, allowed_host_names, keep_large_buffers_apart
from falsework.api.hotpath import HotPath
from falsework.api.metrics import Metrics
from falsework.api.quota import UserRate, UserSlots
from falsework.api.sse import EventHub
from falsework.config import Settings
from falsework.engine import TaskWorker
from falsework.runner import as_executor
from falsework.runner.isolation import DryRunPool
from falsework.runner.tasklog import bind_context, log_tasks
from falsework.templates import TemplateCatalog
from falsework.tracing import Tracing
from falsework.updates.fleet import recording
from falsework.wiring import (
    action_policies,
    open_broker,
    webhook_services,
    worker_options,
    workflow_runner,
)

log = logging.getLogger("falsework.api")

MAX_BODY = 10 * 1024 * 1024
PREFIX = "/api/scaffolder"
# Falsework's own routes, beside Backstage's API: what the page's editor and pickers use.
OWN_PREFIX = "/api/falsework"


def create_app(settings: Settings, *, tracing: Tracing | None = None) -> FastAPI:
    """The whole service: API, page and (when concurrency > 0) one worker."""
    metrics = Metrics()
    authenticator = Authenticator(settings)
    catalog = TemplateCatalog(settings.template_dirs)
    registry = ActionRegistry.default(action_policies(settings))
    runner = workflow_runner(settings, registry=registry)
    traces = tracing or Tracing.from_environment()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keep_large_buffers_apart()
        broker = await open_broker(settings)
        trail = audit.AuditTrail(broker.audit_write)
        hub = EventHub(broker, keepalive=settings.sse_keepalive)
        dry_runs = DryRunPool(
            functools.partial(workflow_runner, settings),
            workers=settings.dry_run_workers,
            queue=settings.dry_run_queue,
            timeout=settings.dry_run_timeout,
            memory_mb=settings.dry_run_memory_mb,
            max_result=settings.dry_run_max_result,
        )
        worker: TaskWorker | None = None
        running: asyncio.Task[None] | None = None
        dispatching: asyncio.Task[None] | None = None
        if settings.concurrency > 0:
            # completed tasks that made or updated a scaffold record it (docs/updates.md)
            run = recording(runner, broker)
            executor = traces.instrument(metrics.instrument(as_executor(run)))
            if settings.task_log:
                executor = log_tasks(executor)
            ids: list[str] = []
            executor = bind_context(executor, lambda: ids[0] if ids else None)
            dispatcher, deliveries = webhook_services(settings, broker)
            worker = made = TaskWorker(broker, deliveries.wrap(executor), worker_options(settings))
            ids.append(made.worker_id)
            metrics.watch_worker(lambda: float(made.running), lambda: float(made.limit))
            running = asyncio.create_task(made.run(), name="falsework-worker")
            dispatching = asyncio.create_task(dispatcher.run(), name="falsework-webhooks")
        loop = asyncio.get_running_loop()

        def begin_shutdown() -> None:
            hub.end_streams()
            if worker is not None:
                worker.request_stop()

        # Called from a signal handler by `falsework serve` as soon as SIGTERM
        # arrives, so event streams end and the drain starts before uvicorn
        # waits for open connections.
        app.state.begin_shutdown = lambda: loop.call_soon_threadsafe(begin_shutdown)
        app.state.services = Services(
            settings=settings,
            auth=authenticator,
            metrics=metrics,
            catalog=catalog,
            registry=registry,
            runner=runner,
            broker=broker,
            hub=hub,
            worker=worker,
            dry_runs=dry_runs,
            dry_run_slots=UserSlots(settings.dry_runs_per_user, "dry-runs"),
            dry_run_rate=UserRate(settings.dry_runs_per_minute, "dry-runs"),
            stream_slots=UserSlots(settings.max_streams_per_user, "event streams and long polls"),
            audit=trail,
            tracing=traces,
        )
        try:
            yield
        finally:
            await dry_runs.close()
            await hub.close()
            if dispatching is not None:
                dispatching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dispatching
            if worker is not None and running is not None:
                await worker.stop()
                try:
                    await running
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("the worker stopped with an error")
            await trail.close()
            await broker.close()
            await asyncio.to_thread(traces.shutdown)  # the last spans go out

    app = FastAPI(
        title="Falsework scaffolder API",
        version=_version(),
        description="Backstage-compatible scaffolder API (`/api/scaffolder/v2/...`).",
        openapi_url=f"{PREFIX}/openapi.json",
        # No Swagger page: FastAPI's loads its scripts from a CDN. docs/api.md and
        # the OpenAPI document describe the API; the page at / runs templates.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    errors.install(app)
    # Each router included straight into the app's: FastAPI matches an included
    # router's routes through one more layer per level of nesting, a cost every
    # request paid (issue 17, target 3).
    for module in (templates, tasks, actions, workers, dryrun):
        app.include_router(module.router, prefix=PREFIX)
    for module in (authoring, entities, audit, admin, scaffolds):
        app.include_router(module.router, prefix=OWN_PREFIX)
    app.include_router(health.router)
    app.include_router(web.router)  # the page: /, /create/..., /static/...
    # inside the edge (added first): a well-formed create answered without FastAPI's
    # router and dependency solving, the same answer (issue 17, target 3)
    app.add_middleware(HotPath, path=f"{PREFIX}/v2/tasks")
    app.add_middleware(
        Edge,
        hosts=allowed_host_names(settings.local_mode, settings.allowed_hosts),
        max_body=MAX_BODY,
        body_timeout=settings.body_timeout,
        max_depth=settings.max_json_depth,
    )
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("falsework")
    except PackageNotFoundError:  # pragma: no cover
        return "0"
