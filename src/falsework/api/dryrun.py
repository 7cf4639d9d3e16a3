"""The dry-run route: run a template against its own files, write nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter

from falsework.api.deps import Caller, Svc
from falsework.api.models import DryRunRequest, DryRunResult, errors
from falsework.errors import ActionError, InputError
from falsework.types import JSONObject

router = APIRouter(tags=["templates"])


@router.post(
    "/v2/dry-run",
    response_model=DryRunResult,
    summary="Run a template's steps in dry-run mode against the files sent with it",
    responses=errors(400, 401, 413, 422),
)
async def dry_run(body: DryRunRequest, svc: Svc, caller: Caller) -> JSONObject:
    template = body.template
    if not isinstance(template.get("spec"), dict):
        raise InputError("template.spec must be the template's spec (an object with steps).")
    files: list[Mapping[str, Any]] = [f.model_dump() for f in body.directoryContents]
    try:
        result: JSONObject = await svc.runner.dry_run(
            template, body.values, body.secrets, files, user=caller.user_context()
        )
    except ActionError as exc:
        # Only the upload itself can fail here (a path leaving the template
        # folder); failing steps are reported inside the result.
        raise InputError(f"directoryContents: {exc.message}") from exc
    return result
