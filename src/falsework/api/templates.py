"""Routes of the noun *template*: the gallery, parameter schemas, and who am I."""

from __future__ import annotations

from fastapi import APIRouter

from falsework.api import auth
from falsework.api.deps import Caller, Svc
from falsework.api.models import Me, ParameterSchema, TemplateSummary, errors
from falsework.types import JSONObject

router = APIRouter(tags=["templates"])


@router.get(
    "/v2/templates",
    response_model=list[TemplateSummary],
    response_model_exclude_none=True,
    summary="Templates the caller may run (broken ones only to template authors)",
    responses=errors(401),
)
async def list_templates(svc: Svc, caller: Caller) -> list[JSONObject]:
    runnable = [t for t in svc.catalog.list() if auth.may_run(caller, t.raw)]
    broken = await svc.checks.problems(runnable, svc.registry.ids())
    author = caller.has(auth.AUTHOR)
    listed: list[JSONObject] = []
    for template in runnable:
        problems = broken.get(template.ref)
        if problems is None:
            listed.append(template.summary())
        elif author:
            listed.append({**template.summary(), "broken": True, "problems": problems})
    return listed


@router.get(
    "/v2/templates/{namespace}/{kind}/{name}/parameter-schema",
    response_model=ParameterSchema,
    response_model_exclude_none=True,
    summary="The template's parameter pages as JSON Schemas",
    responses=errors(401, 404, 422),
)
async def parameter_schema(
    namespace: str, kind: str, name: str, svc: Svc, caller: Caller
) -> JSONObject:
    ref = f"{kind.lower()}:{namespace}/{name}"
    template = auth.runnable_template(caller, svc.catalog, ref)
    schema: JSONObject = template.parameter_schema()
    if template.secrets_schema is not None:
        # Falsework's addition: the page renders spec.secrets.schema as its own page.
        schema["secretsSchema"] = template.secrets_schema
    return schema


@router.get(
    "/v2/me",
    response_model=Me,
    summary="Who the caller is, and whether the server needs a token",
    responses=errors(401),
)
async def me(svc: Svc, caller: Caller) -> JSONObject:
    return {
        "user": caller.ref,
        "groups": list(caller.groups),
        "admin": caller.admin,
        "roles": caller.all_roles,
        "localMode": svc.auth.local_mode,
        "authRequired": svc.auth.required,
    }
