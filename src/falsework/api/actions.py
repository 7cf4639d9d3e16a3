"""Routes of the noun *action*: the installed actions and their schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from falsework.api.deps import Caller, Svc
from falsework.api.models import ActionModel, errors
from falsework.types import JSONObject

router = APIRouter(tags=["actions"])


def action_json(action: Any) -> JSONObject:
    model = action.input_model
    input_schema = model.model_json_schema() if model is not None else {}
    return {
        "id": action.id,
        "description": action.description,
        "examples": [
            {"description": str(e.get("description", "")), "example": str(e.get("example", ""))}
            for e in (action.examples or [])
        ],
        "schema": {"input": input_schema, "output": action.output_schema or {}},
    }


@router.get(
    "/v2/actions",
    response_model=list[ActionModel],
    summary="Installed actions with their input and output schemas",
    responses=errors(401),
)
async def list_actions(svc: Svc, caller: Caller) -> list[JSONObject]:
    del caller
    return [action_json(a) for a in svc.registry.list()]
