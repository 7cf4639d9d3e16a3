"""The create's lean path (api/hotpath.py) answers exactly as FastAPI's route.

The same requests, in-process over ASGI, once as ``application/json`` (the lean
path) and once as ``application/json; charset=utf-8`` (a content type the lean path
hands on to FastAPI): the same status, headers and body (the new task's id aside),
the audit rows and the idempotency keys alike, on SQLite and Postgres."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from falsework.api.app import create_app
from falsework.config import Settings
from support import paths

TEMPLATES = paths.REPO / "bench" / "templates"
REF = "template:default/bench-log"
LEAN = "application/json"
FASTAPI = "application/json; charset=utf-8"
TOKEN = "hot-path-token"
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@asynccontextmanager
async def _client(url: str, tmp_path: Path, tokens: bool) -> AsyncIterator[httpx.AsyncClient]:
    settings: dict[str, Any] = {
        "database_url": url,
        "data_dir": tmp_path,
        "templates": str(TEMPLATES),
        "concurrency": 0,
        "secret_key": base64.urlsafe_b64encode(b"hot-path-test-key-0123456789abcd").decode(),
    }
    if tokens:
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        settings["auth"] = {"tokens": [{"sha256": digest, "user": "user:default/ann"}]}
    app = create_app(Settings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def _both(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str] | None = None
) -> tuple[tuple[int, list[tuple[str, str]], bytes], ...]:
    answers = []
    for content_type in (LEAN, FASTAPI):
        response = await client.post(
            "/api/scaffolder/v2/tasks",
            content=body,
            headers={**(headers or {}), "content-type": content_type},
        )
        answers.append(
            (
                response.status_code,
                list(response.headers.multi_items()),
                _UUID.sub(b"ID", response.content),
            )
        )
    return tuple(answers)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("created", _json({"templateRef": REF, "values": {"name": "x"}}), {}),
    ("with secrets", _json({"templateRef": REF, "secrets": {"a": "b"}}), {}),
    ("unknown fields ignored", _json({"templateRef": REF, "other": 1}), {}),
    ("key too long", _json({"templateRef": REF}), {"idempotency-key": "k" * 201}),
    ("not JSON", b"{nope", {}),
    ("not an object", b"[1, 2]", {}),
    ("field missing", _json({"values": {}}), {}),
    ("field malformed", _json({"templateRef": REF, "values": []}), {}),
    ("secrets malformed", _json({"templateRef": REF, "secrets": {"a": 1}}), {}),
    ("values fail the schema", _json({"templateRef": REF, "values": {"name": 5}}), {}),
    ("unknown template", _json({"templateRef": "template:default/nope"}), {}),
]


AUTH_CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("no token", _json({"templateRef": REF}), {}),
    # FastAPI identifies the caller before it validates the body's fields...
    ("no token, fields malformed", _json({"values": 1}), {}),
    # ...but after it parsed the body
    ("no token, not JSON", b"{", {}),
    ("another scheme", _json({"templateRef": REF}), {"authorization": "Basic eA=="}),
    ("unknown token", _json({"templateRef": REF}), {"authorization": "Bearer nope"}),
    ("created", _json({"templateRef": REF}), {"authorization": f"Bearer {TOKEN}"}),
    ("fields malformed", _json({"values": 1}), {"authorization": f"Bearer {TOKEN}"}),
]


ALL = [(*case, False) for case in CASES] + [(*case, True) for case in AUTH_CASES]


@pytest.mark.parametrize(
    ("case", "body", "headers", "tokens"), ALL, ids=[f"{c[0]}{' (tokens)' * c[3]}" for c in ALL]
)
async def test_the_lean_path_answers_as_fastapi_does(
    database_url: str,
    tmp_path: Path,
    case: str,
    body: bytes,
    headers: dict[str, str],
    tokens: bool,
) -> None:
    async with _client(database_url, tmp_path, tokens=tokens) as client:
        lean, fastapi = await _both(client, body, headers)
    assert lean == fastapi, case


async def test_a_lean_create_keeps_its_idempotency_key_and_its_audit_row(
    database_url: str, tmp_path: Path
) -> None:
    body = _json({"templateRef": REF, "values": {"name": "x"}})
    async with _client(database_url, tmp_path, tokens=False) as client:
        path = "/api/scaffolder/v2/tasks"
        keyed = {"content-type": LEAN, "idempotency-key": "once"}
        first = await client.post(path, content=body, headers=keyed)
        again = await client.post(path, content=body, headers=keyed)
        # the same key through FastAPI's route names the same task
        fastapi = await client.post(path, content=body, headers={**keyed, "content-type": FASTAPI})
        other = await client.post(path, content=body, headers={"content-type": LEAN})
        audit = await client.get("/api/falsework/v1/audit", params={"action": "task.create"})
    assert first.status_code == again.status_code == fastapi.status_code == 201
    task = first.json()["id"]
    assert again.json()["id"] == fastapi.json()["id"] == task
    assert other.json()["id"] != task
    rows = audit.json()["entries"]
    # one row per create answered, a repeated key's included (as through FastAPI)
    assert sorted(row["target"] for row in rows) == sorted([task] * 3 + [other.json()["id"]])
    assert {row["actor"] for row in rows} == {"user:default/guest"}
    assert {json.dumps(row["detail"]) for row in rows} == {json.dumps({"template": REF})}
