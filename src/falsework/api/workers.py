"""Routes of the noun *worker*: list them, change a limit at runtime."""

from __future__ import annotations

from fastapi import APIRouter

from falsework.api import audit, auth
from falsework.api.deps import Caller, Svc
from falsework.api.models import WorkerLimit, WorkerModel, errors
from falsework.engine import WorkerInfo
from falsework.errors import NotAllowedError
from falsework.types import JSONObject

router = APIRouter(tags=["workers"])


def worker_json(info: WorkerInfo) -> JSONObject:
    return info.to_json()


@router.get(
    "/v2/workers",
    response_model=list[WorkerModel],
    summary="Workers of the cluster: host, pid, limit, running tasks, last heartbeat "
    "(admins and the workers:read role)",
    responses=errors(401, 403, 503),
)
async def list_workers(svc: Svc, caller: Caller) -> list[JSONObject]:
    # Host names and pids map the deployment: not for every signed-in user.
    auth.check_role(caller, auth.WORKERS_READ, "list the workers")
    return [worker_json(w) for w in await svc.broker.workers()]


@router.patch(
    "/v2/workers/{workerId}",
    response_model=WorkerModel,
    summary="Change a worker's concurrency limit at runtime (admin)",
    responses=errors(401, 403, 404, 422, 503),
)
async def set_worker_limit(
    workerId: str, body: WorkerLimit, svc: Svc, caller: Caller
) -> JSONObject:
    if not caller.admin:
        raise NotAllowedError("Only an admin may change a worker's limit.")
    info = await svc.broker.set_worker_limit(workerId, body.limit)
    if svc.worker is not None and svc.worker.worker_id == workerId:
        svc.worker.set_limit(body.limit)
    await svc.audit.record(caller.ref, audit.WORKER_LIMIT, workerId, limit=body.limit)
    return worker_json(info)
