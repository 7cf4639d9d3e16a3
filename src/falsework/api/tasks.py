"""Routes of the noun *task*: create, list, read, cancel, retry, events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from falsework.api import auth
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
from falsework.errors import InputError, NotAllowedError, TooManyRequestsError
from falsework.templates import validate_values
from falsework.types import JSONObject

router = APIRouter(tags=["tasks"])


def task_json(task: Task) -> JSONObject:
    """Backstage's task shape (the engine's), plus ``completedAt`` once finished."""
    data = task.to_json()
    if task.finished_at is not None:
        data["completedAt"] = iso(task.finished_at)
    return data


async def _owned(svc: Services, caller: auth.Identity, raw_id: str) -> Task:
    task = await svc.broker.get(task_id(raw_id))
    auth.check_owner(caller, task.id, task.created_by)
    return task


async def _check_open_limit(svc: Services, caller: auth.Identity) -> None:
    limit = svc.settings.max_open_tasks_per_user
    if limit is None:
        return
    count = await svc.broker.count_open(caller.ref)
    if count >= limit:
        raise TooManyRequestsError(
            f"{caller.ref} already has {count} open or running tasks (the limit is {limit}); "
            "wait for one to finish or cancel one."
        )


@router.post(
    "/v2/tasks",
    status_code=201,
    response_model=TaskId,
    summary="Create a task from a template",
    responses={
        400: {"model": ValidationErrors, "description": "Values fail the template's schema"},
        **errors(401, 403, 404, 413, 422, 429, 503),
    },
)
async def create_task(
    body: CreateTask,
    svc: Svc,
    caller: Caller,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONObject:
    template = svc.catalog.get(body.templateRef)
    auth.check_may_run(caller, template.raw, template.ref)
    values = validate_values(template, body.values)
    await _check_open_limit(svc, caller)
    spec = template.task_spec(values, caller.user_context())
    created = await svc.creator.create(
        NewTask(
            spec,
            created_by=caller.ref,
            secrets=body.secrets or None,
            idempotency_key=f"{caller.ref} {idempotency_key}" if idempotency_key else None,
        )
    )
    svc.metrics.tasks_created.inc()
    return {"id": created}


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
    return {"tasks": [task_json(t) for t in tasks], "totalTasks": total}


@router.get(
    "/v2/tasks/{taskId}",
    response_model=TaskModel,
    response_model_exclude_none=True,
    summary="One task (never its secrets)",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_task(taskId: str, svc: Svc, caller: Caller) -> JSONObject:
    return task_json(await _owned(svc, caller, taskId))


@router.post(
    "/v2/tasks/{taskId}/cancel",
    response_model=CancelResult,
    summary="Cancel an open or running task, on whichever node runs it",
    responses=errors(401, 403, 404, 409, 422, 503),
)
async def cancel_task(taskId: str, svc: Svc, caller: Caller) -> JSONObject:
    task = await _owned(svc, caller, taskId)
    await svc.broker.cancel(task.id)
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
    await _check_open_limit(svc, caller)
    retried = await svc.broker.retry(task.id)
    return {"id": retried.id}


@router.get(
    "/v2/tasks/{taskId}/events",
    response_model=list[EventModel],
    summary="Long-poll: events after `after` at once, else wait up to 30 s for new ones",
    responses=errors(401, 403, 404, 422, 503),
)
async def task_events(
    taskId: str,
    svc: Svc,
    caller: Caller,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> list[JSONObject]:
    task = await _owned(svc, caller, taskId)
    events = await svc.hub.wait(task.id, after, svc.settings.long_poll_timeout)
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
        **errors(400, 401, 403, 404, 422, 503),
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
    return StreamingResponse(
        _stream(svc, task.id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


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
