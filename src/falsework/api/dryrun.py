"""The dry-run route: run a template's steps without side effects, in a child process.

Two request shapes:

- ``{"templateRef": "template:default/x", "values": {...}}`` (Falsework's): a
  catalog template the caller may run, with its own folder. A restricted template
  the caller may not run is not found, as everywhere else.
- Backstage's ``{"template": {...}, "values": {...}, "directoryContents": [...]}``:
  any template body with any files. That is a template author's power (any action,
  any expression), so it needs the ``templates:author`` role.

Every dry-run runs in the dry-run pool (``runner.isolation``): bounded in time,
memory, result size and number, and killed when the client goes away. Per user, a
few at once and a rate per minute (429 with ``Retry-After`` beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from fastapi import APIRouter, Request, Response

from falsework.api import audit, auth
from falsework.api.deps import Caller, Services, Svc
from falsework.api.models import DryRunRequest, DryRunResult, ValidationErrors, errors
from falsework.errors import InputError, NotAllowedError
from falsework.runner.isolation import DryRunJob

router = APIRouter(tags=["templates"])


@router.post(
    "/v2/dry-run",
    summary="Run a template's steps in dry-run mode: a catalog template by `templateRef`, "
    "or (templates:author) a template body with its files",
    response_class=Response,
    responses={
        200: {"model": DryRunResult, "description": "The log, files, output and steps"},
        400: {"model": ValidationErrors, "description": "Values fail the template's schema"},
        **errors(401, 403, 404, 413, 422, 429),
    },
)
async def dry_run(body: DryRunRequest, request: Request, svc: Svc, caller: Caller) -> Response:
    job = _job(body, svc, caller)
    if body.template is not None:
        meta = body.template.get("metadata")
        name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
        files = len(body.directoryContents)
        await svc.audit.record(caller.ref, audit.DRY_RUN_BODY, name or None, files=files)
    release = svc.dry_run_slots.take(caller.ref, retry_after=5.0)
    try:
        svc.dry_run_rate.take(caller.ref)
        data = await _unless_disconnected(request, svc.dry_runs.run(job))
    finally:
        release()
    if data is None:
        return Response(status_code=499)  # nobody is listening any more
    return Response(data, media_type="application/json")


def _job(body: DryRunRequest, svc: Services, caller: auth.Identity) -> DryRunJob:
    user = caller.user_context()
    secrets = dict(body.secrets or {})
    rehearsal = body.rehearsal.model_dump() if body.rehearsal is not None else None
    if body.templateRef is not None:
        if body.template is not None or body.directoryContents:
            raise InputError(
                "Send either templateRef (a catalog template, run with its own files) or "
                "template with directoryContents, not both."
            )
        template = auth.runnable_template(caller, svc.catalog, body.templateRef)
        return DryRunJob(
            template=template.raw,
            values=body.values,
            secrets=secrets,
            user=user,
            template_dir=str(template.directory),
            rehearsal=rehearsal,
        )
    if body.template is None:
        raise InputError(
            "Send templateRef (a catalog template you may run) or template (a template "
            "body with its directoryContents)."
        )
    if not caller.has(auth.AUTHOR):
        raise NotAllowedError(
            f"{caller.ref} may not dry-run a template body: that needs the {auth.AUTHOR} "
            "role (an admin grants it with auth.roles in the config). To dry-run a catalog "
            'template you may run, send {"templateRef": "template:<namespace>/<name>", '
            '"values": {...}} instead.'
        )
    if not isinstance(body.template.get("spec"), dict):
        raise InputError("template.spec must be the template's spec (an object with steps).")
    return DryRunJob(
        template=body.template,
        values=body.values,
        secrets=secrets,
        files=[f.model_dump() for f in body.directoryContents],
        user=user,
        rehearsal=rehearsal,
    )


async def _unless_disconnected(request: Request, work: Awaitable[bytes]) -> bytes | None:
    """``work``'s result, or None when the client went away first (``work`` is then
    cancelled, which kills the dry-run's child)."""
    job = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        if job.done():
            return job.result()
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await job
        return None
    finally:
        gone.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
