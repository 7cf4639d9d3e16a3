"""The lean path of the hottest route, ``POST /api/scaffolder/v2/tasks``.

FastAPI's routing, its middleware layers and its dependency solving were about
half of a create's request path (issue 17, target 3). A well-formed create — a
JSON body (``Content-Type: application/json``) that parses and validates as
``CreateTask`` — is answered here, inside the edge (api/edge.py: host, size and
depth limits still apply) and before FastAPI's exception middleware and router,
by the very code of the route (``tasks.create``), its errors answered by the
app's own exception handlers. Every other request — another route, another
content type, a body that is not JSON or fails validation — goes on to FastAPI
unchanged, its body handed over as it came, so its answer (a 422's wording, the
order of its checks) is FastAPI's by construction. The route stays declared
there: the OpenAPI document does not change. When FastAPI's own OpenTelemetry
instrumentation is on (a global provider configured), every request goes to FastAPI,
whose spans and metrics name the route its router matched.

What a create sees in both paths, in FastAPI's order: the JSON body parsed, the
caller identified (401 before any complaint about the body's fields), the body
validated, the route's code run.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from falsework.api import tasks
from falsework.api.deps import get_identity
from falsework.api.edge import replay
from falsework.api.models import CreateTask

Handler = Callable[[Request, Exception], Awaitable[Response]]

# What FastAPI's route (``tasks.create_task``) would solve before running the create,
# resolved here by hand: its dependencies in FastAPI's order, and its body. A unit
# test compares them with the route's own (tests/unit/api/test_hotpath_route.py),
# so a dependency added to the route cannot be skipped here unnoticed.
DEPENDENCIES = (get_identity,)
BODY = CreateTask


class HotPath:
    """ASGI middleware answering a well-formed create itself (module docstring)."""

    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
            or scope["method"] != "POST"
            or scope.get("root_path")
            # FastAPI's own OpenTelemetry instrumentation is on (a global provider):
            # its spans name the route FastAPI's router matched
            or "fastapi.telemetry" in scope
        ):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        if body is None:
            return  # the client went away
        request = Request(scope, replay(body, receive))
        data = _json_object(request, body)
        if data is None:
            await self.app(scope, replay(body, receive), send)
            return
        response: Response | None
        try:
            caller = await get_identity(request)
            try:
                fields = BODY.model_validate(data)
            except ValidationError:
                fields = None
            response = None if fields is None else await tasks.create(request, fields, caller)
        except Exception as exc:
            handler = _handler(scope, exc)
            if handler is None:
                raise  # to the server-error middleware, as from FastAPI's route
            response = await handler(request, exc)
        if response is None:
            # FastAPI answers a body that fails validation in its own words
            await self.app(scope, replay(body, receive), send)
            return
        await response(scope, receive, send)


async def _read(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _json_object(request: Request, body: bytes) -> dict[str, Any] | None:
    """The body as FastAPI would hand it to the route's validation, when it is a JSON
    object sent as plain ``application/json``; None for anything else."""
    if not body or request.headers.get("content-type") != "application/json":
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _handler(scope: Scope, exc: Exception) -> Handler | None:
    """The app's handler of ``exc``, found as Starlette's exception middleware finds
    it (by class, the nearest first); None for those the server-error middleware
    answers (``Exception``)."""
    handlers: dict[Any, Handler] = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
