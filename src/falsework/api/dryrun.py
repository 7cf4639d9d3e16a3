"""The dry-run route: run a template's steps without side effects, in a child process.

Two request shapes:

- ``{"templateRef": "template:default/x", "values": {...}}`` (Falsework's): a
  catalog template the caller may run, with its own folder. A restricted template
  the caller may not run is not found, as everywhere else.
- Backstage's ``{"template": {...}, "values": {...}, "directoryContents": [...]}``:
  any template body with any files. That is a template author's power (any action,
  any expression), so it needs the ``templates:author`` role.

A dry run whose step fails answers as Backstage does — 404 for an unknown action,
400 for input its action refuses, 500 for a file that does not render (and for
any other failure) with Backstage's error body — and adds to that body the log,
the files written so far, the output and the steps, as a successful one has them.
A rehearsal (``falsework templates test --server``) answers 200 with its
``error`` either way.

Every dry-run runs in the dry-run pool (``runner.isolation``): bounded in time,
memory, result size and number, and killed when the client goes away. Per user, a
few at once and a rate per minute (429 with ``Retry-After`` beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

import falsework.errors as errors_module
from falsework.api import audit, auth
from falsework.api.deps import Caller, Services, Svc
from falsework.api.errors import error_body
from falsework.api.models import (
    DryRunFailure,
    DryRunRequest,
    DryRunResult,
    ValidationErrors,
    errors,
)
from falsework.errors import FalseworkError, InputError, NotAllowedError
from falsework.runner.isolation import DryRunJob, DryRunOutcome

router = APIRouter(tags=["templates"])


@router.post(
    "/v2/dry-run",
    summary="Run a template's steps in dry-run mode: a catalog template by `templateRef`, "
    "or (templates:author) a template body with its files",
    response_class=Response,
    responses={
        200: {"model": DryRunResult, "description": "The log, files, output and steps"},
        400: {
            "model": ValidationErrors | DryRunFailure,
            "description": "Values fail the template's schema (`errors`), or a step's "
            "input fails its action's schema (DryRunFailure)",
        },
        404: {
            "model": DryRunFailure,
            "description": "A step names an unknown action (DryRunFailure), or the "
            "templateRef is not found (ErrorBody)",
        },
        500: {
            "model": DryRunFailure,
            "description": "A step failed otherwise (a file that does not render, an "
            "action's error): Backstage's error body, with the log, files, output and "
            "steps so far",
        },
        **errors(401, 403, 413, 422, 429),
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
        outcome = await _unless_disconnected(request, svc.dry_runs.run(job))
    finally:
        release()
    if outcome is None:
        return Response(status_code=499)  # nobody is listening any more
    if outcome.failed is None:
        return Response(outcome.data, media_type="application/json")
    status = failure_status(outcome.failed)
    result = json.loads(outcome.data)
    error = result.pop("error")
    url = request.url
    failure = {
        **error_body(request.method, url.path, url.query, status, error["name"], error["message"]),
        **result,
    }
    return JSONResponse(failure, status_code=status)


# Backstage renders a skeleton in its step: a file that does not render fails it
# with a plain error (500), not an input error.
_RENDER_ERRORS = frozenset({"TemplateRenderError", "TemplateSyntaxError", "TemplateSecurityError"})


def failure_status(name: str) -> int:
    """The HTTP status of a dry run that failed with the error ``name``, as
    Backstage answers it: the error's own 4xx (404 NotFoundError: an unknown
    action; 400 InputError: input the action refuses), else 500."""
    found = getattr(errors_module, name, None)
    if name in _RENDER_ERRORS or not (
        isinstance(found, type) and issubclass(found, FalseworkError)
    ):
        return 500
    status = int(found.status_code)
    return status if 400 <= status < 500 else 500


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


async def _unless_disconnected(
    request: Request, work: Awaitable[DryRunOutcome]
) -> DryRunOutcome | None:
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
