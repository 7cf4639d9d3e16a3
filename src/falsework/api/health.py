"""Liveness, readiness and Prometheus metrics (outside the Backstage prefix)."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from falsework.api.deps import Svc
from falsework.api.metrics import CONTENT_TYPE
from falsework.api.models import Health
from falsework.api.outage import OUTAGES
from falsework.errors import DatabaseError, DatabaseUnavailableError

router = APIRouter(tags=["health"])
REREAD = 1.0
log = logging.getLogger("falsework.api")


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
    summary="Prometheus metrics of this process and of the cluster",
    description="The cluster's (falsework_tasks, falsework_task_duration_seconds, ...) are "
    "computed from the database by one node at a time and are the same on every node: "
    "aggregate them with max, not sum.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(svc: Svc) -> Response:
    settings = svc.settings
    cluster = svc.metrics.cluster
    # anyone may call /metrics: at most one read of the snapshot per process per
    # REREAD seconds, however often it is asked
    if time.monotonic() - cluster.tried_at < min(REREAD, settings.cluster_metrics_interval):
        return Response(svc.metrics.render(), media_type=CONTENT_TYPE)
    cluster.tried_at = time.monotonic()
    try:
        cluster.snapshot = await svc.broker.cluster_metrics(
            every=settings.cluster_metrics_interval,
            alive_within=settings.stale_timeout,
            lag=settings.cluster_metrics_lag,
        )
        cluster.read_at = time.monotonic()
    except DatabaseUnavailableError as exc:
        # the process's own metrics still answer; the cluster's keep their last values
        # and their age grows (falsework_cluster_metrics_age_seconds); one log line
        # per outage, not one per scrape
        OUTAGES.note("GET /metrics", exc)
    except DatabaseError as exc:
        log.warning("cluster metrics: %s", exc)
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)
