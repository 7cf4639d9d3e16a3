"""Routes of the noun *task*: create, list, read, cancel, retry, events."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from falsework import tracing
from falsework.api import audit, auth
from falsework.api.deps import Caller, Services, Svc, task_id
from falsework.api.models import (
    CancelResult,
    CreateTask,
    EventModel,
    TaskId,
    TaskList,
    TaskModel,
    ValidationErrors,
    errors,
)
from falsework.engine import NewTask, Task
from falsework.engine.models import iso
from falsework.errors import InputError, NotAllowedError
from falsework.templates import quick_values, validate_values
from falsework.types import JSONObject

router = APIRouter(tags=["tasks"])

MAX_IDEMPOTENCY_KEY = 200
# Read from the headers by the route, not declared as a Header parameter: FastAPI's
# extraction of that one header was ~7 % of a create's request path in a profile
# (issue 17, target 3). The OpenAPI document declares it as FastAPI would. (A key
# too long beside a malformed body: the body's errors alone, where FastAPI listed both.)
_IDEMPOTENCY_KEY: JSONObject = {
    "name": "idempotency-key",
    "in": "header",
    "required": False,
    "schema": {
        "anyOf": [{"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY}, {"type": "null"}],
        "title": "Idempotency-Key",
    },
}


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header; 422 as for any malformed input when longer
    than ``MAX_IDEMPOTENCY_KEY`` characters."""
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("header", "idempotency-key"),
                    "msg": f"String should have at most {MAX_IDEMPOTENCY_KEY} characters",
                    "input": key,
                    "ctx": {"max_length": MAX_IDEMPOTENCY_KEY},
                }
            ]
        )
    return key or None


def task_json(task: Task, hide_paths: Sequence[Path] | None = None) -> JSONObject:
    """Backstage's task shape (the engine's), plus ``completedAt`` once finished.

    ``hide_paths``: the template folders; the template's location
    (``templateInfo.baseUrl``, a ``file:`` URL on this server) is then shown
    relative to the one holding it, not as an absolute path of the server."""
    data = task.to_json()
    if task.finished_at is not None:
        data["completedAt"] = iso(task.finished_at)
    if hide_paths is not None:
        spec = data.get("spec")
        info = spec.get("templateInfo") if isinstance(spec, dict) else None
        base = info.get("baseUrl") if isinstance(info, dict) else None
        if isinstance(spec, dict) and isinstance(info, dict) and isinstance(base, str):
            if base.startswith("file:"):
                hidden = {**info, "baseUrl": _relative_location(base, hide_paths)}
                data["spec"] = {**spec, "templateInfo": hidden}
    return data


def _relative_location(base: str, roots: Sequence[Path]) -> str:
    path = unquote(urlsplit(base).path)
    for root in roots:
        prefix = str(root).rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            return path[len(prefix) :]
    return os.path.basename(path)


def _hidden_paths(svc: Services, caller: auth.Identity) -> list[Path] | None:
    """What task_json hides from this caller: server paths, from all but admins."""
    if caller.admin:
        return None
    return [Path(os.path.abspath(d)) for d in svc.settings.template_dirs]


async def _owned(svc: Services, caller: auth.Identity, raw_id: str) -> Task:
    task = await svc.broker.get(task_id(raw_id))
    auth.check_owner(caller, task.id, task.created_by)
    return task


@router.post(
    "/v2/tasks",
    status_code=201,
    response_model=TaskId,
    summary="Create a task from a template",
    responses={
        400: {"model": ValidationErrors, "description": "Values fail the template's schema"},
        **errors(401, 404, 413, 422, 429, 503),
    },
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY]},
)
async def create_task(body: CreateTask, request: Request, caller: Caller) -> Response:
    # Declared for the OpenAPI document and for the requests the lean path hands on
    # (api/hotpath.py): a well-formed create never reaches FastAPI's route.
    return await create(request, body, caller)


async def create(request: Request, body: CreateTask, caller: auth.Identity) -> Response:
    """The create itself, for FastAPI's route and the lean path alike.

    The hottest route takes less of FastAPI than the others (issue 17, target 3):
    the services without a dependency of their own, the answer made here rather
    than validated against TaskId and serialized (the OpenAPI document is the same)."""
    svc: Services = request.app.state.services
    key = idempotency_key(request)
    template = auth.runnable_template(caller, svc.catalog, body.templateRef)
    with svc.tracing.request(
        "POST /v2/tasks", request.headers, **{"falsework.template": template.ref}
    ) as span:
        # A schema check may take long (a pattern, a big value): never on the event
        # loop, unless it is sure to take microseconds (small values, a plain schema)
        values = quick_values(template, body.values)
        if values is None:
            values = await anyio.to_thread.run_sync(validate_values, template, body.values)
        # serialized by the broker at once, changed only at its top level (the trace)
        spec = template.task_spec(values, caller.user_context(), shared=True)
        carrier = span.carrier()
        if carrier:  # the worker's spans of this task continue this request's trace
            spec[tracing.SPEC_KEY] = carrier
        # the broker refuses (429) a creator at max_open_tasks_per_user, in the insert;
        # the audit row goes in the same group commit, right after the task's
        created = await svc.broker.submit(
            NewTask(
                spec,
                created_by=caller.ref,
                secrets=body.secrets or None,
                idempotency_key=f"{caller.ref} {key}" if key else None,
                recovery=template.recovery,
                audit=audit.entry(caller.ref, audit.TASK_CREATE, template=template.ref),
            )
        )
        span.set(**{"falsework.task.id": created})
    svc.metrics.tasks_created.inc()
    audit.say(caller.ref, audit.TASK_CREATE, created, {"template": template.ref})
    # the bytes JSONResponse({"id": created}) makes (an id is ASCII), without its encoder
    content = b'{"id":%s}' % json.dumps(created).encode()
    return Response(content, status_code=201, media_type="application/json")


@router.get(
    "/v2/tasks",
    response_model=TaskList,
    response_model_exclude_none=True,
    summary="List tasks (a user sees their own, an admin all)",
    responses=errors(401, 403, 422, 503),
)
async def list_tasks(
    svc: Svc,
    caller: Caller,
    createdBy: Annotated[str | None, Query(description="Entity ref of the creator")] = None,
    status: Annotated[
        str | None, Query(pattern="^(open|processing|completed|failed|cancelled)$")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    order: Annotated[
        str, Query(pattern="^(asc|desc):(created_at|last_heartbeat_at|status|id)$")
    ] = "desc:created_at",
) -> JSONObject:
    if not caller.admin:
        if createdBy is not None and createdBy != caller.ref:
            raise NotAllowedError(f"{caller.ref} may only list their own tasks.")
        createdBy = caller.ref
    tasks, total = await svc.broker.list(
        created_by=createdBy, status=status, limit=limit, offset=offset, order=order
    )
    hide = _hidden_paths(svc, caller)
    return {"tasks": [task_json(t, hide) for t in tasks], "totalTasks": total}


@router.get(
    "/v2/tasks/{taskId}",
    response_model=TaskModel,
    response_model_exclude_none=True,
    summary="One task (never its secrets)",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_task(taskId: str, svc: Svc, caller: Caller) -> JSONObject:
    return task_json(await _owned(svc, caller, taskId), _hidden_paths(svc, caller))


@router.post(
    "/v2/tasks/{taskId}/cancel",
    response_model=CancelResult,
    summary="Cancel an open or running task, on whichever node runs it",
    responses=errors(401, 403, 404, 409, 422, 503),
)
async def cancel_task(taskId: str, svc: Svc, caller: Caller) -> JSONObject:
    task = await _owned(svc, caller, taskId)
    await svc.broker.cancel(task.id)
    await svc.audit.record(caller.ref, audit.TASK_CANCEL, task.id, **_whose(caller, task))
    return {"status": "cancelled"}


@router.post(
    "/v2/tasks/{taskId}/retry",
    status_code=201,
    response_model=TaskId,
    summary="Re-open a failed or cancelled task from its failed step",
    responses=errors(401, 403, 404, 409, 422, 429, 503),
)
async def retry_task(taskId: str, svc: Svc, caller: Caller) -> JSONObject:
    task = await _owned(svc, caller, taskId)
    retried = await svc.broker.retry(task.id)  # 429 as a create would be
    await svc.audit.record(caller.ref, audit.TASK_RETRY, task.id, **_whose(caller, task))
    return {"id": retried.id}


def _whose(caller: auth.Identity, task: Task) -> dict[str, str]:
    """The task's owner, in the audit entry of an act on another user's task."""
    return {"owner": task.created_by or ""} if task.created_by != caller.ref else {}


@router.get(
    "/v2/tasks/{taskId}/events",
    response_model=list[EventModel],
    summary="Long-poll: events after `after` at once, else wait up to 30 s for new ones",
    responses=errors(401, 403, 404, 422, 429, 503),
)
async def task_events(
    taskId: str,
    svc: Svc,
    caller: Caller,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> list[JSONObject]:
    task = await _owned(svc, caller, taskId)
    release = svc.stream_slots.take(caller.ref, retry_after=svc.settings.long_poll_timeout)
    try:
        events = await svc.hub.wait(task.id, after, svc.settings.long_poll_timeout)
    finally:
        release()
    return [event.to_json() for event in events]


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    if last_event_id is not None and last_event_id.strip():
        try:
            return int(last_event_id.strip())
        except ValueError:
            raise InputError(f"Last-Event-ID must be an event id, not {last_event_id!r}") from None
    return after


@router.get(
    "/v2/tasks/{taskId}/eventstream",
    summary="Server-sent events: every event of the task, pushed, until it completes",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`event: <type>` / `data: <event JSON>` / `id: <event id>` per "
            "event, `: keep-alive` comments while idle; the stream ends after the task's "
            "final event. Resume with `Last-Event-ID` or `?after=`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **errors(400, 401, 403, 404, 422, 429, 503),
    },
)
async def task_eventstream(
    taskId: str,
    request: Request,
    svc: Svc,
    caller: Caller,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    last_event_id: Annotated[str | None, Header(max_length=30)] = None,
) -> StreamingResponse:
    task = await _owned(svc, caller, taskId)
    start = _resume_point(last_event_id, after)
    release = svc.stream_slots.take(caller.ref)
    return _HeldStream(
        _stream(svc, task.id, start),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _HeldStream(StreamingResponse):
    """A stream holding one of its user's stream slots until it ends, however it
    ends (a generator that never started would never run its ``finally``).

    The request's own task writes the stream; a second, plain asyncio task waits
    for the client to leave and then cancels the writing. Starlette runs the two
    under an anyio task group (for servers before ASGI 2.4, uvicorn's included),
    whose objects every open stream held (about 6 MiB for 1,000 streams) and
    whose cancellation ran at every stream's end (issue 17)."""

    def __init__(
        self, content: AsyncIterator[bytes], release: Callable[[], None], **kwargs: object
    ) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._write_until_gone(receive, send)
        finally:
            self._release()

    async def _write_until_gone(self, receive: Receive, send: Send) -> None:
        writer = asyncio.current_task()
        assert writer is not None
        writing, gone = True, False

        async def listen() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            # the writer waits inside stream_response whenever this runs
            if writing:
                gone = True
                writer.cancel()

        listener = asyncio.create_task(listen(), name="falsework-stream-listener")
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            # the client left: the stream ends as it would have ended (any other
            # cancel, a shutdown's, goes on up)
            if not gone or writer.uncancel() > 0:
                raise
        finally:
            writing = False
            listener.cancel()


async def _stream(svc: Services, task: str, after: int | None) -> AsyncIterator[bytes]:
    gauge = svc.metrics.eventstream_clients
    gauge.inc()
    try:
        # The first bytes go out at once so clients and proxies see the stream open.
        yield b": stream open\n\n"
        async for chunk in svc.hub.watch(task, after):
            yield chunk
    finally:
        gauge.dec()
