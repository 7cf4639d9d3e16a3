"""A host's official OpenAPI description, as the forge test server uses it.

Validation is done by ``openapi-core`` (request parameters, bodies and responses against
an OpenAPI 3.0/3.1 document, with the spec's own ``nullable``, formats and ``$ref``s), so
nothing here re-implements JSON Schema. Two things are ours:

- **strict request bodies**: every object schema of a request body that lists its
  properties refuses unknown ones (``additionalProperties: false``). Real hosts often
  ignore an unknown field, which is exactly how a misspelt field goes unnoticed: here it
  fails the test.
- **synthesised responses**: a response body is built from the operation's response
  schema (every required field gets a value of its type), with the server's real state
  laid over it, so every response is complete; it is then validated like the requests.

The specs are installed by ``scripts/ensure-forges.sh`` into a cache folder, never
committed.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.testing import MockRequest, MockResponse

from support.paths import REPO

ROOT = REPO
CACHE = Path(os.environ.get("FALSEWORK_TEST_CACHE", Path.home() / ".cache" / "falsework-tests"))
SPEC_FILES = {
    # npm @octokit/openapi 23.0.2 (pinned in scripts/ensure-forges.sh)
    "github": "forge-specs/node_modules/@octokit/openapi/generated/api.github.com.json",
}
# Hosts whose official description is not published in any package registry this
# project can install from (checked: npm, PyPI, Debian): a description written here, in
# OpenAPI 3.0, of the operations the actions call, transcribed from the host's REST API
# reference (each file names its source and version). Validated the same way.
LOCAL_SPECS = {
    "gitlab": "gitlab.yaml",
    "gitea": "gitea.yaml",
    "bitbucketCloud": "bitbucket-cloud.yaml",
    "bitbucketServer": "bitbucket-server.yaml",
    "azure": "azure.yaml",
}
SPECS_DIR = Path(__file__).resolve().parent / "specs"
BASE = "http://forge.test"


_LOADED: dict[str, Contract] = {}
_LOADING = threading.Lock()


def contract_for(name: str) -> Contract:
    """One host's contract, loaded once per test session."""
    with _LOADING:
        if name not in _LOADED:
            _LOADED[name] = Contract(name)
        return _LOADED[name]


@functools.cache
def ensure_installed() -> None:
    """Run the setup script once per process (it is idempotent, 0.4 s when all is
    there). Not only when a file is missing: while another test process installs,
    the files appear before npm has finished (a catalog started then had no
    better-sqlite3 binding yet, and answered 503 until its test timed out); the
    script waits for that install's lock and checks its stamp."""
    subprocess.run([str(ROOT / "scripts" / "ensure-forges.sh")], check=True, capture_output=True)


@dataclass(frozen=True)
class Operation:
    id: str
    path_params: dict[str, str]


class Contract:
    """One host's API description: find the operation of a request, validate requests
    and responses, and synthesise response bodies."""

    def __init__(self, name: str) -> None:
        if name in LOCAL_SPECS:
            with (SPECS_DIR / LOCAL_SPECS[name]).open(encoding="utf-8") as handle:
                raw = yaml.safe_load(handle)
        else:
            ensure_installed()
            with (CACHE / SPEC_FILES[name]).open(encoding="utf-8") as handle:
                raw = json.load(handle)
        self.name = name
        self.version = str(raw.get("info", {}).get("version", "?"))
        self.raw = raw
        self.operations: dict[str, dict[str, Any]] = {}
        for item in raw["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    self.operations[operation["operationId"]] = operation
        strict = dict(raw)
        strict["servers"] = [{"url": BASE}]
        strict["paths"] = {path: self._strict_item(item) for path, item in raw["paths"].items()}
        self.api = OpenAPI.from_dict(strict, config=Config(spec_validator_cls=None))
        self._finder = APICallPathFinder(self.api.spec)

    # -- requests -------------------------------------------------------
    def operation(self, method: str, path: str) -> Operation | None:
        try:
            found = self._finder.find(method.lower(), BASE + path)
        except Exception:
            return None
        return Operation(str(found.operation["operationId"]), dict(found.path_result.variables))

    def request_errors(
        self, method: str, path: str, query: dict[str, Any], body: bytes, content_type: str
    ) -> list[str]:
        request = self._request(method, path, query, body, content_type)
        return [_describe(e) for e in self.api.iter_request_errors(request)]

    def response_errors(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        status: int,
        body: bytes,
        content_type: str,
    ) -> list[str]:
        request = self._request(method, path, query, b"", "application/json")
        response = MockResponse(body, status_code=status, content_type=content_type)
        return [_describe(e) for e in self.api.iter_response_errors(request, response)]

    def _request(
        self, method: str, path: str, query: dict[str, Any], body: bytes, content_type: str
    ) -> MockRequest:
        return MockRequest(
            BASE,
            method.lower(),
            path,
            args=query,
            data=body or None,
            content_type=content_type or "application/json",
        )

    # -- responses ------------------------------------------------------
    def response_schema(self, operation_id: str, status: int) -> dict[str, Any] | None:
        response = self.operations[operation_id].get("responses", {}).get(str(status))
        if response is None:
            return None
        content = self.resolve(response).get("content", {})
        media = content.get("application/json") or next(iter(content.values()), None)
        return None if media is None else self.resolve(media.get("schema", {}))

    def synthesise(self, operation_id: str, status: int, state: Any) -> Any:
        """A body for ``status`` of the operation: ``state`` laid over a complete
        value of the response schema."""
        schema = self.response_schema(operation_id, status)
        return state if schema is None else self.fill(schema, state)

    def fill(self, schema: Any, state: Any, depth: int = 0) -> Any:
        schema = self.resolve(schema)
        if depth > 14 or not isinstance(schema, dict):
            return state
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                part = self.resolve(part)
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
            return self.fill(merged, state, depth + 1)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                chosen = self._discriminated(schema, state)
                if chosen is None:
                    options = [self.resolve(o) for o in schema[key]]
                    chosen = _best_option(options, state)
                return self.fill(chosen, state, depth + 1)
        if state is None:
            return self._placeholder(schema, depth)
        kind = schema.get("type")
        if (kind == "object" or "properties" in schema) and isinstance(state, dict):
            props = schema.get("properties", {})
            out: dict[str, Any] = {}
            for name in schema.get("required", []):
                if name not in state and name in props:
                    out[name] = self._placeholder(self.resolve(props[name]), depth + 1)
            for name, value in state.items():
                out[name] = self.fill(props[name], value, depth + 1) if name in props else value
            return out
        if kind == "array" and isinstance(state, list):
            items = schema.get("items", {})
            return [self.fill(items, item, depth + 1) for item in state]
        return state

    def _discriminated(self, schema: dict[str, Any], state: Any) -> Any:
        """The branch a ``discriminator`` names for ``state``'s value of its property."""
        rule = schema.get("discriminator") or {}
        name = rule.get("propertyName")
        if not name or not isinstance(state, dict) or name not in state:
            return None
        target = (rule.get("mapping") or {}).get(state[name])
        return self.resolve({"$ref": target}) if target else None

    def _placeholder(self, schema: dict[str, Any], depth: int) -> Any:
        if schema.get("nullable") or schema.get("type") == "null":
            return None
        if any(k in schema for k in ("allOf", "oneOf", "anyOf")):
            return self.fill(schema, {} if self._is_object(schema) else None, depth + 1)
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if isinstance(kind, list):
            if "null" in kind:
                return None
            kind = kind[0]
        if kind == "object" or "properties" in schema:
            return self.fill(schema, {}, depth + 1)
        if kind == "array":
            return []
        if kind == "integer":
            return 1
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return False
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2024-01-01T00:00:00Z"
        if fmt == "uri":
            return "https://forge.test/placeholder"
        if fmt == "email":
            return "someone@forge.test"
        return "placeholder"

    def _is_object(self, schema: dict[str, Any]) -> bool:
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key, []):
                part = self.resolve(part)
                if part.get("type") == "object" or "properties" in part:
                    return True
        return False

    # -- helpers --------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        hops = 0
        while isinstance(node, dict) and "$ref" in node and hops < 50:
            node = self._pointer(node["$ref"])
            hops += 1
        return node

    def _pointer(self, ref: str) -> Any:
        node: Any = self.raw
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _strict_item(self, item: dict[str, Any]) -> dict[str, Any]:
        out = dict(item)
        for method, operation in item.items():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            body = copy.deepcopy(self.resolve(operation["requestBody"]))
            for media in body.get("content", {}).values():
                if "schema" in media:
                    media["schema"] = self._strict(self._inline(media["schema"], 0))
            out[method] = {**operation, "requestBody": body}
        return out

    def _inline(self, node: Any, depth: int) -> Any:
        if depth > 24:
            return node
        node = self.resolve(node)
        if isinstance(node, dict):
            return {k: self._inline(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self._inline(v, depth + 1) for v in node]
        return node

    def _strict(self, schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        combined = any(k in schema for k in ("allOf", "oneOf", "anyOf"))
        out = {k: self._strict_children(k, v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema and not combined:
            out["additionalProperties"] = False
        return out

    def _strict_children(self, key: str, value: Any) -> Any:
        if key == "properties" and isinstance(value, dict):
            return {name: self._strict(sub) for name, sub in value.items()}
        if key in ("items", "additionalProperties") and isinstance(value, dict):
            return self._strict(value)
        if key in ("oneOf", "anyOf") and isinstance(value, list):
            return [self._strict(v) for v in value]
        return value


def _best_option(options: list[dict[str, Any]], state: Any) -> dict[str, Any]:
    """The oneOf/anyOf branch that fits ``state`` best (most shared keys)."""
    if isinstance(state, dict):
        return max(options, key=lambda o: len(set(o.get("properties", {})) & set(state)))
    for option in options:
        if option.get("type") == "null" and state is None:
            return option
    for option in options:
        if option.get("type") not in (None, "object", "null"):
            return option
    return options[0]


def _describe(error: Exception) -> str:
    parts = [str(error)]
    cause = error.__cause__
    found = getattr(cause, "schema_errors", None) or ()
    for item in found:
        parts.append(f"{'/'.join(str(p) for p in item.path) or '<body>'}: {item.message}")
    if cause is not None and not found:
        parts.append(str(cause))
    return "; ".join(parts)
