"""Liveness, readiness and Prometheus metrics (outside the Backstage prefix)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from falsework.api.deps import Svc
from falsework.api.metrics import CONTENT_TYPE
from falsework.api.models import Health
from falsework.api.outage import OUTAGES

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: the database answers and the worker's claim loop is alive",
    responses={503: {"model": Health, "description": "Not ready"}},
)
async def readyz(svc: Svc) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await svc.broker.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", reported, not raised
        # The reason goes to the log: anyone may call /readyz, and a driver's
        # message names hosts, ports, users and database names.
        OUTAGES.note("GET /readyz", exc)
        checks["database"] = "unavailable"
    if svc.worker is None:
        checks["worker"] = "disabled"
    else:
        checks["worker"] = "ok" if svc.worker.alive else "stopped"
    ready = checks["database"] == "ok" and checks["worker"] != "stopped"
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(svc: Svc) -> Response:
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)
