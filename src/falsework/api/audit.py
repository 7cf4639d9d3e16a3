"""The audit trail: who did what, as a log stream and as rows admins can query.

Every audited act is one line on the ``falsework.audit`` logger (with
``--log-format json``: ``actor``, ``action``, ``target`` and ``detail`` as fields of
its own) and one row of ``audit_events``, written with whatever other acts arrive
meanwhile (group commit: a burst of creates shares a statement). A row that cannot
be written (the database is away) is logged as an error; the act itself stands and
its log line is there. A create's row goes with its task: the broker's group commit
of creates writes it right after the task (``entry``, ``NewTask.audit``).

Acts (``action``):

- ``task.create``, ``task.cancel``, ``task.retry``: target the task id;
- ``worker.limit``: a worker's concurrency limit changed (target the worker id);
- ``dryrun.body``: a template body dry-run by a template author (target its name);
- ``authz.denied``: a signed-in caller refused (403), or sent a restricted
  template's ref it may not run (404 to the caller, a denial here);
- ``auth.failed``: a missing, malformed or unknown token (401): on the log stream
  only, so anonymous callers cannot fill the table.

``GET /api/falsework/v1/audit`` lists the rows, newest first, for admins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from falsework.api.deps import Caller, Svc
from falsework.api.models import AuditPage, errors
from falsework.engine.codec import dumps
from falsework.engine.models import AuditEntry, AuditQuery
from falsework.errors import InputError, NotAllowedError
from falsework.types import JSONObject

log = logging.getLogger("falsework.audit")

TASK_CREATE = "task.create"
TASK_CANCEL = "task.cancel"
TASK_RETRY = "task.retry"
WORKER_LIMIT = "worker.limit"
DRY_RUN_BODY = "dryrun.body"
DENIED = "authz.denied"
AUTH_FAILED = "auth.failed"
ANONYMOUS = "anonymous"

Write = Callable[[list[AuditEntry]], Awaitable[None]]


class AuditTrail:
    def __init__(self, write: Write, *, max_batch: int = 1000) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(
        self, actor: str, action: str, target: str | None = None, **detail: Any
    ) -> None:
        """Log the act and write its row (returns once written, or once its write
        failed and was logged)."""
        say(actor, action, target, detail)
        entry = AuditEntry(actor, action, target, dumps(detail))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run(), name="falsework-audit")
        await asyncio.shield(future)

    async def _run(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                await self._write([entry for entry, _ in batch])
            except Exception as exc:
                log.error(
                    "could not write %d audit entr%s (%s); they are in this log",
                    len(batch),
                    "y" if len(batch) == 1 else "ies",
                    exc,
                )
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def close(self) -> None:
        """Write what is waiting, then stop."""
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=10)
            self._writer.cancel()


def entry(actor: str, action: str, **detail: Any) -> AuditEntry:
    """The row of an act that another write carries (a create's, with its task's
    insert, which sets the target); its line is the caller's to ``say``."""
    return AuditEntry(actor, action, None, dumps(detail))


def say(actor: str, action: str, target: str | None, detail: dict[str, Any]) -> None:
    """The act's line on the ``falsework.audit`` stream."""
    words = " ".join(f"{k}={v}" for k, v in detail.items())
    log.info(
        "%s %s %s%s",
        actor,
        action,
        target or "-",
        f" {words}" if words else "",
        extra={"actor": actor, "action": action, "target": target, "detail": detail},
    )


router = APIRouter(tags=["audit"])


@router.get(
    "/v1/audit",
    response_model=AuditPage,
    summary="The audit trail, newest first (admins): filter by actor, action, since; "
    "page with before=<next>",
    responses=errors(401, 403, 422, 503),
)
async def list_audit(
    svc: Svc,
    caller: Caller,
    actor: Annotated[str | None, Query(max_length=300, description="A user ref")] = None,
    action: Annotated[
        str | None, Query(max_length=32, description="e.g. task.create, authz.denied")
    ] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; entries at or after it")] = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="Only entries with a smaller id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONObject:
    if not caller.admin:
        raise NotAllowedError(f"{caller.ref} may not read the audit trail: admins only.")
    if since is not None and since.tzinfo is None:
        raise InputError(
            f"since={since.isoformat()} has no time zone: add one (Z or +00:00), "
            "e.g. 2026-01-31T12:00:00Z"
        )
    found = await svc.broker.audit_list(
        AuditQuery(actor=actor, action=action, since=since, before=before, limit=limit)
    )
    page: JSONObject = {"entries": [r.to_json() for r in found]}
    if len(found) == limit:
        page["next"] = found[-1].id
    return page
