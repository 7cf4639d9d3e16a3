"""The edge's JSON depth check (api/edge.py), through the middleware itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from falsework.api.edge import Edge

LIMIT = 4


async def _route(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    body = message["body"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _post(body: bytes) -> tuple[int, bytes]:
    edge = Edge(_route, hosts=None, max_body=1 << 20, body_timeout=5.0, max_depth=LIMIT)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/scaffolder/v2/tasks",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(edge(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_a_body_as_deep_as_the_limit_passes_one_deeper_is_refused() -> None:
    assert _post(json.dumps(_nested(LIMIT)).encode())[0] == 200
    status, body = _post(json.dumps(_nested(LIMIT + 1)).encode())
    assert status == 422
    assert b"nested more than 4 levels" in body


def test_brackets_inside_strings_do_not_count() -> None:
    # more brackets than the limit, all but one inside a string: one level deep
    body = json.dumps({"name": "[[[[{{{{[[[["}).encode()
    assert _post(body) == (200, body)
    # and a shallow body with few brackets is passed as it came
    small = b'{"templateRef": "template:default/x", "values": {"n": 1}}'
    assert _post(small) == (200, small)
