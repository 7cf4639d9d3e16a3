"""Routes of the admin page (``/admin``), admins only: the queue and the workers at a
glance, stale and recovered tasks, bulk cancel and retry by filter, and the
cluster-wide switch that pauses claiming for maintenance. Every change is audited
(``admin.pause``, ``admin.resume``, ``admin.bulk_cancel``, ``admin.bulk_retry``;
a worker's limit is set through ``PATCH /v2/workers/{id}``, ``worker.limit``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import APIRouter

from falsework.api.auth import Identity
from falsework.api.deps import Caller, Svc
from falsework.api.models import (
    AdminOverview,
    BulkFilter,
    BulkResult,
    PauseBody,
    PauseState,
    errors,
)
from falsework.engine import Broker, Task
from falsework.errors import FalseworkError, InputError, NotAllowedError
from falsework.types import JSONObject

router = APIRouter(tags=["admin"])

PAUSE = "admin.pause"
RESUME = "admin.resume"
BULK_CANCEL = "admin.bulk_cancel"
BULK_RETRY = "admin.bulk_retry"
# a bulk action reads the queue in pages of this many tasks, at most SCAN of them
PAGE = 500
SCAN = 20_000


def _admin(caller: Identity, what: str) -> None:
    if not caller.admin:
        raise NotAllowedError(f"{caller.ref} may not {what}: admins only.")


@router.get(
    "/v1/admin/overview",
    response_model=AdminOverview,
    summary="The queue (depth, oldest open age, stale), the paused switch, the workers with "
    "their limits and heartbeat age, stale and recovered tasks, the webhooks (admins)",
    responses=errors(401, 403, 503),
)
async def overview(svc: Svc, caller: Caller) -> JSONObject:
    _admin(caller, "see the admin overview")
    stale_after = svc.settings.stale_timeout
    broker = svc.broker
    queue = await broker.overview(stale_after)
    paused = await broker.paused()
    workers = await broker.workers()
    troubled = await broker.troubled(stale_after)
    return {
        "queue": queue.to_json(),
        "paused": paused.to_json() if paused else None,
        "workers": [
            {**w.to_json(), "heartbeatAgeSeconds": round(w.heartbeat_age, 3)} for w in workers
        ],
        "troubled": [t.to_json() for t in troubled],
        "staleAfterSeconds": stale_after,
        "webhooks": [
            {"name": h.label, "events": list(h.events), "templates": h.templates}
            for h in svc.settings.webhooks
        ],
    }


@router.put(
    "/v1/admin/pause",
    response_model=PauseState,
    summary="Pause claiming on every node (maintenance): running tasks go on, nothing new "
    "starts until resumed; durable in the database (admins)",
    responses=errors(401, 403, 422, 503),
)
async def pause(body: PauseBody, svc: Svc, caller: Caller) -> JSONObject:
    _admin(caller, "pause claiming")
    flag = await svc.broker.pause(caller.ref, body.reason)
    await svc.audit.record(caller.ref, PAUSE, None, reason=body.reason)
    return {"paused": flag.to_json()}


@router.delete(
    "/v1/admin/pause",
    response_model=PauseState,
    summary="Resume claiming on every node (admins)",
    responses=errors(401, 403, 503),
)
async def resume(svc: Svc, caller: Caller) -> JSONObject:
    _admin(caller, "resume claiming")
    if await svc.broker.resume():
        await svc.audit.record(caller.ref, RESUME, None)
    return {"paused": None}


async def _matching(broker: Broker, f: BulkFilter, statuses: tuple[str, ...]) -> list[Task]:
    wanted = tuple(f.status) if f.status else statuses
    if unfit := [s for s in wanted if s not in statuses]:
        raise InputError(
            f"status {', '.join(unfit)} cannot be taken by this action (use {', '.join(statuses)})"
        )
    before = f.createdBefore
    if before is not None and before.tzinfo is None:
        raise InputError(
            f"createdBefore={before.isoformat()} has no time zone: add one (Z or +00:00)"
        )
    found: list[Task] = []
    for offset in range(0, SCAN, PAGE):
        page, _ = await broker.list(
            created_by=f.createdBy,
            status=list(wanted),
            limit=PAGE,
            offset=offset,
            order="asc:created_at",
        )
        found += [t for t in page if _fits(t, f, before)]
        if len(found) >= f.limit or len(page) < PAGE:
            break
    return found[: f.limit]


def _fits(task: Task, f: BulkFilter, before: datetime | None) -> bool:
    if before is not None and task.created_at >= before:
        return False
    if f.template is not None:
        info = task.spec.get("templateInfo")
        ref = info.get("entityRef") if isinstance(info, dict) else None
        return ref == f.template
    return True


async def _bulk(
    svc: Svc,
    caller: Identity,
    f: BulkFilter,
    statuses: tuple[str, ...],
    act: Callable[[str], Awaitable[Task]],
    action: str,
) -> JSONObject:
    tasks = await _matching(svc.broker, f, statuses)
    matched = [t.id for t in tasks]
    done: list[str] = []
    failed: list[JSONObject] = []
    if not f.dryRun:
        for task_id in matched:
            try:
                await act(task_id)
            except FalseworkError as exc:  # it moved on meanwhile, or a cap refused it
                failed.append({"id": task_id, "message": exc.message})
            else:
                done.append(task_id)
        await svc.audit.record(
            caller.ref,
            action,
            None,
            filter=f.model_dump(mode="json", exclude={"dryRun"}, exclude_none=True),
            done=len(done),
            failed=len(failed),
        )
    return {"matched": matched, "done": done, "failed": failed, "dryRun": f.dryRun}


@router.post(
    "/v1/admin/tasks/cancel",
    response_model=BulkResult,
    summary="Cancel the open and processing tasks a filter matches, oldest first (admins); "
    "dryRun only lists them",
    responses=errors(401, 403, 422, 503),
)
async def bulk_cancel(body: BulkFilter, svc: Svc, caller: Caller) -> JSONObject:
    _admin(caller, "cancel tasks in bulk")
    return await _bulk(svc, caller, body, ("open", "processing"), svc.broker.cancel, BULK_CANCEL)


@router.post(
    "/v1/admin/tasks/retry",
    response_model=BulkResult,
    summary="Retry the failed and cancelled tasks a filter matches, oldest first (admins); "
    "dryRun only lists them",
    responses=errors(401, 403, 422, 503),
)
async def bulk_retry(body: BulkFilter, svc: Svc, caller: Caller) -> JSONObject:
    _admin(caller, "retry tasks in bulk")
    return await _bulk(svc, caller, body, ("failed", "cancelled"), svc.broker.retry, BULK_RETRY)
