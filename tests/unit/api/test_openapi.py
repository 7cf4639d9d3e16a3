"""What the OpenAPI document declares of the routes' security and the create's
header, which the routes read by hand (issue 17: FastAPI's own extraction cost CPU)."""

from __future__ import annotations

from typing import Any

from falsework.api.app import create_app
from falsework.config import Settings


def _document() -> dict[str, Any]:
    return create_app(Settings(auth={"tokens": []})).openapi()


def test_every_route_that_needs_a_caller_declares_the_bearer_scheme() -> None:
    document = _document()
    assert document["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from auth.tokens",
        }
    }
    operations = {
        (method, path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    secured = {key for key, op in operations.items() if op.get("security")}
    assert ("post", "/api/scaffolder/v2/tasks") in secured
    assert ("get", "/api/scaffolder/v2/me") in secured
    assert ("get", "/api/falsework/v1/audit") in secured
    for key in secured:
        assert operations[key]["security"] == [{"HTTPBearer": []}], key
    # the probes need no token
    assert ("get", "/healthz") not in secured


def test_the_create_declares_its_idempotency_key_header() -> None:
    create = _document()["paths"]["/api/scaffolder/v2/tasks"]["post"]
    assert create["parameters"] == [
        {
            "name": "idempotency-key",
            "in": "header",
            "required": False,
            "schema": {
                "anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}],
                "title": "Idempotency-Key",
            },
        }
    ]
