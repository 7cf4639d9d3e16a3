"""The application factory: builds the object graph once and mounts every route."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from falsework import web
from falsework.actions import ActionRegistry
from falsework.api import actions, dryrun, errors, health, tasks, templates, workers
from falsework.api.auth import Authenticator
from falsework.api.batch import CreateBatcher
from falsework.api.deps import Services
from falsework.api.metrics import Metrics
from falsework.api.sse import EventHub
from falsework.config import Settings
from falsework.engine import Broker, TaskWorker
from falsework.runner import WorkflowRunner
from falsework.templates import TemplateCatalog

log = logging.getLogger("falsework.api")

MAX_BODY = 10 * 1024 * 1024
PREFIX = "/api/scaffolder"


class BodyLimit:
    """413 for request bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit
        self.message = f"The request body is larger than {limit // (1024 * 1024)} MB."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException passes through FastAPI's body parsing and
                    # reaches the error handlers, which give it Backstage's shape.
                    raise HTTPException(413, self.message)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = errors.error_body(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            413,
            "PayloadTooLargeError",
            self.message,
        )
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


def create_app(settings: Settings) -> FastAPI:
    """The whole service: API, page and (when concurrency > 0) one worker."""
    metrics = Metrics()
    authenticator = Authenticator(settings)
    catalog = TemplateCatalog(settings.template_dirs)
    registry = ActionRegistry.default(settings.action_policies())
    runner = WorkflowRunner.from_settings(settings, registry=registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = await Broker.open(settings.resolved_database_url, settings)
        hub = EventHub(broker, keepalive=settings.sse_keepalive)
        creator = CreateBatcher(broker)
        worker: TaskWorker | None = None
        running: asyncio.Task[None] | None = None
        if settings.concurrency > 0:
            executor = metrics.instrument(runner)
            worker = made = TaskWorker(broker, executor, settings)
            metrics.watch_worker(lambda: float(made.running), lambda: float(made.limit))
            running = asyncio.create_task(made.run(), name="falsework-worker")
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
            creator=creator,
            worker=worker,
        )
        try:
            yield
        finally:
            await hub.close()
            await creator.close()
            if worker is not None and running is not None:
                await worker.stop()
                try:
                    await running
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("the worker stopped with an error")
            await broker.close()

    app = FastAPI(
        title="Falsework scaffolder API",
        version=_version(),
        description="Backstage-compatible scaffolder API (`/api/scaffolder/v2/...`).",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    errors.install(app)
    api = APIRouter(prefix=PREFIX)
    for module in (templates, tasks, actions, workers, dryrun):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(web.router)  # the page: /, /create/..., /static/...
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("falsework")
    except PackageNotFoundError:  # pragma: no cover
        return "0"
