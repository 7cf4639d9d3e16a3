"""Talking to a Backstage instance (the ``backstage:`` section of the configuration):
its catalog client for catalog:register / catalog:fetch, and ``http:backstage:request``
(as ``@roadiehq/scaffolder-backend-module-http-request`` has it)."""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
from pydantic import Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.actions.integrations import BackstageTarget, Integrations
from falsework.errors import ActionError, InputError


class Backstage:
    """The few catalog calls the actions make, over the integrations' HTTP client."""

    def __init__(self, target: BackstageTarget, integrations: Integrations) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self.http = integrations.client(target.base_url, headers)

    async def __aenter__(self) -> Backstage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ActionError(
                f"Backstage at {self.target.base_url} could not be reached ({type(exc).__name__})"
            ) from None

    async def add_location(
        self, target: str, *, dry_run: bool = False, exists_ok: bool = False
    ) -> dict[str, Any] | None:
        """Register ``target``; None when it was registered already and
        ``exists_ok`` (the catalog answered 409)."""
        params = {"dryRun": "true"} if dry_run else {}
        answer = await self.call(
            "POST", "/api/catalog/locations", params=params, json={"type": "url", "target": target}
        )
        if answer.status_code == 409 and exists_ok:
            return None
        if answer.status_code >= 400:
            raise ActionError(
                f"The catalog refused location {target}: {answer.status_code} {_reason(answer)}"
            )
        return dict(answer.json())

    async def entity(self, ref: str) -> dict[str, Any] | None:
        kind, namespace, name = _split_ref(ref)
        path = "/api/catalog/entities/by-name/" + "/".join(
            quote(p, safe="") for p in (kind, namespace, name)
        )
        answer = await self.call("GET", path)
        if answer.status_code == 404:
            return None
        if answer.status_code >= 400:
            raise ActionError(
                f"The catalog answered {answer.status_code} for {ref}: {_reason(answer)}"
            )
        return dict(answer.json())

    async def entities(self, refs: list[str]) -> list[dict[str, Any] | None]:
        answer = await self.call("POST", "/api/catalog/entities/by-refs", json={"entityRefs": refs})
        if answer.status_code >= 400:
            raise ActionError(f"The catalog answered {answer.status_code}: {_reason(answer)}")
        return list(answer.json()["items"])


def _reason(answer: httpx.Response) -> str:
    try:
        error = answer.json().get("error", {})
        return str(error.get("message") or answer.reason_phrase)
    except (ValueError, AttributeError):
        return answer.reason_phrase


def _split_ref(ref: str) -> tuple[str, str, str]:
    kind, _, rest = ref.partition(":")
    namespace, _, name = rest.partition("/")
    return kind, namespace, name


def parse_entity_ref(
    ref: str, default_kind: str | None = None, default_namespace: str | None = None
) -> str:
    """``kind:namespace/name`` in full (Backstage's parseEntityRef + stringifyEntityRef)."""
    text = ref.strip()
    kind, sep, rest = text.partition(":")
    if not sep:
        kind, rest = default_kind or "", text
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = default_namespace or "default", rest
    if not kind:
        raise InputError(f"Entity reference {ref!r} had no kind, and no defaultKind was given")
    if not name or not namespace:
        raise InputError(f"Entity reference {ref!r} is not of the form [kind:][namespace/]name")
    return f"{kind.lower()}:{namespace.lower()}/{name}"


def require(integrations: Integrations, what: str) -> BackstageTarget:
    if integrations.backstage is None:
        raise ActionError(
            f"{what}: no Backstage instance is configured; set backstage.baseUrl (and a "
            "token) in the server's configuration"
        )
    return integrations.backstage


# -- http:backstage:request -----------------------------------------------------
class BackstageRequestInput(ActionInput):
    path: str = Field(description="The path to call: `/<plugin>/<rest>` (e.g. `/catalog/entities`)")
    method: Literal["GET", "HEAD", "OPTIONS", "POST", "UPDATE", "DELETE", "PUT", "PATCH"] = Field(
        description="The method type of the request"
    )
    headers: dict[str, Any] | None = Field(None, description="Request headers")
    params: dict[str, Any] | None = Field(None, description="Query parameters")
    body: Any = Field(None, description="Request body (an object is sent as JSON)")
    log_request_path: bool | None = Field(None, description="Log the path (default true)")
    continue_on_bad_response: bool | None = Field(
        None, description="Output a 4xx/5xx response instead of failing the step"
    )
    timeout: float = Field(60000, description="Timeout of the request (milliseconds)")
    use_backstage_token: bool | None = Field(
        None, description="Use the task secret `backstageToken` as the bearer token"
    )
    idempotency_key: bool | str | None = Field(
        None,
        description="true: send the step's idempotency key as the `Idempotency-Key` header "
        "(the same key when the step runs again after an interruption); a string: that too, "
        "and send the request at most once per task (the string names its checkpoint)",
    )


@action(
    settings=Integrations,
    id="http:backstage:request",
    description="Sends an HTTP request to the configured Backstage instance's API "
    "(`/<plugin>/<path>` under its `/api`), with its configured token.",
    input=BackstageRequestInput,
    dry_run=True,
    output={
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "The response code"},
            "headers": {"type": "object", "description": "The response headers"},
            "body": {"description": "The response body"},
        },
    },
    examples=[
        (
            "Count the catalog's entities by kind",
            "steps:\n  - id: kinds\n    name: Kinds\n    action: http:backstage:request\n"
            "    input:\n      method: GET\n      path: /catalog/entity-facets\n"
            "      params:\n        facet: kind\n",
        )
    ],
)
async def http_backstage_request(
    ctx: ActionContext[BackstageRequestInput], integrations: Integrations
) -> None:
    inp = ctx.input
    target = require(integrations, "http:backstage:request")
    plugin, _, rest = inp.path.lstrip("/").partition("/")
    if not plugin or "://" in inp.path or ".." in inp.path.split("/"):
        raise InputError(f"path {inp.path!r} is not of the form /<plugin>/<path>")
    query = f"?{urlencode(inp.params, doseq=True)}" if inp.params else ""
    shown = f"{inp.path}{query}"
    if inp.log_request_path is False:
        ctx.logger.info(f"Creating {inp.method} request with http:backstage:request")
    else:
        ctx.logger.info(
            f"Creating {inp.method} request with http:backstage:request against {shown}"
        )
    if ctx.is_dry_run and inp.method not in ("GET", "HEAD", "OPTIONS"):
        ctx.logger.info(f"Dry run mode. Skipping non dry-run safe method '{inp.method}'")
        return
    headers = {str(k): str(v) for k, v in (inp.headers or {}).items()}
    token = ctx.secrets.get("backstageToken") if inp.use_backstage_token else None
    token = token or target.token
    if token and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = f"Bearer {token}"
    content: str | bytes | None = None
    if isinstance(inp.body, dict | list):
        content = json.dumps(inp.body)
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    elif inp.body is not None:
        content = str(inp.body)
    url = f"/api/{plugin}/{rest}{query}"
    if inp.idempotency_key:
        if any(k.lower() == "idempotency-key" for k in headers):
            raise InputError(
                "idempotencyKey: headers already has Idempotency-Key; give one or the other"
            )
        headers["Idempotency-Key"] = await ctx.idempotency_key()

    async def send() -> dict[str, Any]:
        async with Backstage(BackstageTarget(target.base_url, None), integrations) as api:
            api.http.timeout = httpx.Timeout(inp.timeout / 1000)
            answer = await api.call(inp.method, url, headers=headers, content=content)
        body: Any = answer.text
        if "application/json" in answer.headers.get("content-type", ""):
            try:
                body = answer.json()
            except ValueError:
                body = answer.text
        if answer.status_code >= 400 and not inp.continue_on_bad_response:
            raise ActionError(
                f"{inp.method} {shown} on Backstage answered {answer.status_code}: "
                f"{str(body)[:300]}"
            )
        return {"code": str(answer.status_code), "headers": dict(answer.headers), "body": body}

    if isinstance(inp.idempotency_key, str):
        result = await ctx.checkpoint(inp.idempotency_key, send)
    else:
        result = await send()
    for name, value in result.items():
        ctx.output(name, value)
