"""Routes of the noun *action*: the installed actions and their schemas."""

from __future__ import annotations

from fastapi import APIRouter

from falsework.api.deps import Caller, Svc
from falsework.api.models import ActionModel, errors
from falsework.types import JSONObject

router = APIRouter(tags=["actions"])


@router.get(
    "/v2/actions",
    response_model=list[ActionModel],
    summary="Installed actions with their input and output schemas",
    responses=errors(401),
)
async def list_actions(svc: Svc, caller: Caller) -> list[JSONObject]:
    del caller
    return [a.to_json() for a in svc.registry.list()]
