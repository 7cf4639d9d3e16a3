"""``http:request`` — call an HTTP API, optionally polling until a condition holds.

The seed use case is Argo Workflows: submit a workflow, then poll its status
until ``${{ response.body.status.phase in ['Succeeded','Failed'] }}``. Waiting
between polls is a bare ``asyncio.sleep``: an idle poll costs a coroutine.

Every connection, redirects included, goes through the server's egress policy
(``falsework.actions.egress``); a host that cannot be reached, for whatever
reason, gives the one ``UnreachableError``. Proxy variables of the environment
are not used: a proxy would resolve the name again, past the policy's check.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from functools import lru_cache
from typing import Any, Literal

import certifi
import httpx
from pydantic import Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.actions.egress import EgressPolicy, unreachable, unreachable_message
from falsework.actions.transport import EgressTransport
from falsework.errors import ActionError, InputError, UnreachableError
from falsework.templating import is_truthy


class RequestInput(ActionInput):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = Field(
        "GET", description="The HTTP method."
    )
    url: str = Field(description="An http:// or https:// URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers.")
    body: Any = Field(
        None, description="Request body: an object or list is sent as JSON, a string as-is."
    )
    timeout: float = Field(60.0, gt=0, description="Seconds allowed for each request.")
    until: str | None = Field(
        None,
        description="Poll until this template expression over `response` "
        "(`code`, `headers`, `body`) is truthy.",
    )
    interval: float = Field(5.0, gt=0, description="Seconds between polls.")
    max_wait: float = Field(600.0, gt=0, description="Give up polling after this many seconds.")
    continue_on_bad_response: bool = Field(
        False, description="Do not fail on a 4xx/5xx status; report it in the outputs."
    )
    follow_redirects: bool = Field(
        False,
        description="Follow 3xx redirects (each hop is checked by the server's egress "
        "policy); otherwise a redirect is the response.",
    )
    idempotency_key: bool = Field(
        False,
        description="Send the step's idempotency key as the `Idempotency-Key` header: the "
        "same key when the step runs again after an interruption (a Falsework extension).",
    )


async def record_http_request(ctx: ActionContext[RequestInput]) -> None:
    """In a rehearsal: answered from the rehearsal's canned answers (none
    matching: the step fails), polled without waiting between answers."""
    inp = ctx.input
    assert ctx.recording is not None
    rehearsal = ctx.recording.rehearsal
    if inp.until is not None:
        errors = ctx.renderer.check(inp.until)
        if errors:
            raise ActionError(f"until does not parse: {'; '.join(errors)}")
    if inp.idempotency_key:
        await _idempotency_key(ctx)  # the same input errors as a real run
    polls = max(1, int(inp.max_wait // inp.interval) + 1) if inp.until is not None else 1
    last: object = None
    for attempt in range(1, polls + 1):
        answer = rehearsal.answer(inp.method, inp.url, inp.body)
        if answer is last:
            # the last canned response again: the condition cannot change any more
            raise ActionError(
                f"Condition {inp.until!r} still false after {attempt - 1} requests "
                "(every canned response of this request was given)"
            )
        last = answer
        response = {
            "code": answer["status"],
            "headers": dict(answer["headers"]),
            "body": answer["body"],
        }
        ctx.logger.info(f"{inp.method} {inp.url} -> {response['code']} (canned answer)")
        if response["code"] >= 400 and not inp.continue_on_bad_response:
            raise ActionError(
                f"{inp.method} {inp.url} answered {response['code']}: {_preview(response['body'])}"
            )
        if inp.until is None or _holds(ctx, inp.until, response):
            break
        if attempt == polls:
            raise ActionError(
                f"Condition {inp.until!r} still false after {attempt} requests "
                f"(maxWait {inp.max_wait:g}s)"
            )
    ctx.recording.note(polls=attempt)
    for name in ("code", "headers", "body"):
        ctx.output(name, response[name])


@action(
    id="http:request",
    description="Sends an HTTP request and outputs the response; can poll until a "
    "condition over the response holds.",
    input=RequestInput,
    settings=EgressPolicy,
    output={
        "type": "object",
        "properties": {
            "code": {"type": "integer", "description": "The status code."},
            "headers": {"type": "object", "description": "Response headers (lower-case)."},
            "body": {"description": "The JSON body, or the text when it is not JSON."},
        },
    },
    raw_input=["until"],
    recorder=record_http_request,
    examples=[
        (
            "Submit a workflow",
            "steps:\n  - action: http:request\n    id: submit\n    name: Submit workflow\n"
            "    input:\n      method: POST\n"
            "      url: https://argo.example.com/api/v1/workflows/ci\n"
            "      headers:\n        Authorization: Bearer ${{ secrets.ARGO_TOKEN }}\n"
            "      body:\n        workflow:\n          metadata:\n"
            "            generateName: build-\n",
        ),
        (
            "Poll until the workflow has finished",
            "steps:\n  - action: http:request\n    id: wait\n    name: Wait for the workflow\n"
            "    input:\n      url: https://argo.example.com/api/v1/workflows/ci/build-x\n"
            "      until: ${{ response.body.status.phase in ['Succeeded', 'Failed'] }}\n"
            "      interval: 10\n      maxWait: 1800\n",
        ),
    ],
)
async def http_request(ctx: ActionContext[RequestInput], egress: EgressPolicy) -> None:
    inp = ctx.input
    if not inp.url.startswith(("http://", "https://")):
        raise ActionError(f"url {inp.url!r} is not an http:// or https:// URL")
    try:
        url = httpx.URL(inp.url)
    except httpx.InvalidURL as exc:
        raise ActionError(f"url {inp.url!r} is not a valid URL: {exc}") from None
    where = f"{url.host}:{url.port}" if url.port else url.host
    if inp.until is not None:
        errors = ctx.renderer.check(inp.until)
        if errors:
            raise ActionError(f"until does not parse: {'; '.join(errors)}")
    headers = dict(inp.headers)
    if inp.idempotency_key:
        headers[IDEMPOTENCY_HEADER] = await _idempotency_key(ctx)
    deadline = time.monotonic() + inp.max_wait
    attempt = 0
    transport = EgressTransport(egress, verify=_ssl_context())
    async with httpx.AsyncClient(
        timeout=inp.timeout,
        transport=transport,
        trust_env=False,
        follow_redirects=inp.follow_redirects,
    ) as client:
        while True:
            attempt += 1
            response = await _send(client, inp, headers, where)
            ctx.logger.info(f"{inp.method} {inp.url} -> {response['code']}")
            if response["code"] >= 400 and not inp.continue_on_bad_response:
                raise ActionError(
                    f"{inp.method} {inp.url} answered {response['code']}: "
                    f"{_preview(response['body'])}"
                )
            if inp.until is None or _holds(ctx, inp.until, response):
                break
            if time.monotonic() + inp.interval > deadline:
                raise ActionError(
                    f"Condition {inp.until!r} still false after {attempt} requests "
                    f"(maxWait {inp.max_wait:g}s)"
                )
            await asyncio.sleep(inp.interval)
    for name in ("code", "headers", "body"):
        ctx.output(name, response[name])


IDEMPOTENCY_HEADER = "Idempotency-Key"


async def _idempotency_key(ctx: ActionContext[RequestInput]) -> str:
    """The step's key, for the one request of a step that asks for it."""
    inp = ctx.input
    if inp.until is not None:
        raise InputError(
            "idempotencyKey: a polling request (until) is sent many times; send the "
            "request to deduplicate in a step of its own"
        )
    if any(name.lower() == IDEMPOTENCY_HEADER.lower() for name in inp.headers):
        raise InputError(
            f"idempotencyKey: headers already has {IDEMPOTENCY_HEADER}; give one or the other"
        )
    return await ctx.idempotency_key()


async def _send(
    client: httpx.AsyncClient, inp: RequestInput, headers: dict[str, str], where: str
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(inp.body, dict | list):
        kwargs["json"] = inp.body
    elif inp.body is not None:
        kwargs["content"] = str(inp.body)
    try:
        resp = await client.request(inp.method, inp.url, **kwargs)
    except httpx.TransportError as exc:
        # refused, reset, timed out, not HTTP: one message, so no port scan
        raise unreachable(where, None, _describe(exc)) from None
    except UnreachableError:
        # refused by the egress policy (maybe at a redirect's hop, logged there)
        raise UnreachableError(unreachable_message(where)) from None
    except httpx.HTTPError as exc:
        raise ActionError(f"{inp.method} {inp.url} failed: {_describe(exc)}") from exc
    body: Any = resp.text
    if "json" in resp.headers.get("content-type", ""):
        try:
            body = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = resp.text
    return {"code": resp.status_code, "headers": dict(resp.headers), "body": body}


def _describe(exc: Exception) -> str:
    """An exception in words, never empty (httpx's often have no message)."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _holds(ctx: ActionContext[Any], until: str, response: dict[str, Any]) -> bool:
    return is_truthy(ctx.renderer.evaluate(until, {**ctx.template_context, "response": response}))


def _preview(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return text[:300]


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Built once: creating a TLS context costs milliseconds of CPU per request.
    return ssl.create_default_context(cafile=certifi.where())
