"""What every route needs: the services built by create_app() and the caller."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from falsework.actions import ActionRegistry
from falsework.api.auth import Authenticator, Identity
from falsework.api.checks import TemplateChecks
from falsework.api.metrics import Metrics
from falsework.api.quota import UserRate, UserSlots
from falsework.api.sse import EventHub
from falsework.config import Settings
from falsework.engine import Broker, TaskWorker
from falsework.errors import NotFoundError
from falsework.runner import WorkflowRunner
from falsework.runner.isolation import DryRunPool
from falsework.templates import TemplateCatalog
from falsework.tracing import Tracing

if TYPE_CHECKING:
    from falsework.api.audit import AuditTrail
    from falsework.api.entities import EntitySource


@dataclass
class Services:
    """The object graph of one process, built once by create_app()."""

    settings: Settings
    auth: Authenticator
    metrics: Metrics
    catalog: TemplateCatalog
    registry: ActionRegistry
    runner: WorkflowRunner
    broker: Broker
    hub: EventHub
    worker: TaskWorker | None
    dry_runs: DryRunPool
    dry_run_slots: UserSlots
    dry_run_rate: UserRate
    stream_slots: UserSlots
    audit: AuditTrail
    tracing: Tracing = field(default_factory=Tracing)
    checks: TemplateChecks = field(default_factory=TemplateChecks)
    entities: EntitySource | None = None  # the pickers' sources, built on first use


# Dependencies are coroutines: FastAPI runs a plain function dependency in a
# thread pool, a hand-off that cost more than the whole dependency.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


class _Bearer(HTTPBearer):
    """The caller's identity, from the ``Authorization`` header. A bearer security
    scheme, so the OpenAPI document declares it on every route that needs it; read
    here, not by HTTPBearer, so a wrong scheme gets the same 401 as a missing one.
    One dependency, not a scheme beneath an identity: one solve of FastAPI's
    dependency tree fewer on every request (issue 17, target 3)."""

    async def __call__(self, request: Request) -> Identity:  # type: ignore[override]
        services: Services = request.app.state.services
        identity = services.auth.identify(request.headers.get("authorization"))
        request.state.identity = identity  # for the audit line of a refusal (api/errors.py)
        return identity


get_identity = _Bearer(
    auto_error=False, scheme_name="HTTPBearer", description="A token from auth.tokens"
)


Svc = Annotated[Services, Depends(get_services)]
Caller = Annotated[Identity, Depends(get_identity)]


def task_id(value: str) -> str:
    """Task ids are UUIDs; anything else cannot name a task (404, not a DB error)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFoundError(f"No task with id '{value}' found") from None
