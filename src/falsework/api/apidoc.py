"""docs/api.md, generated from the OpenAPI document so the two cannot drift.

Run ``python -m falsework.api.apidoc > docs/api.md``; a test fails when the file
differs from what this prints.
"""

from __future__ import annotations

import sys
from typing import Any

from falsework.types import JSONObject

INTRO = """\
# The HTTP API

Generated from the OpenAPI document (`GET /api/scaffolder/openapi.json`) by
`python -m falsework.api.apidoc > docs/api.md`; do not edit by hand.

Routes under `/api/scaffolder` follow Backstage's scaffolder API, so Backstage
clients work unchanged; Falsework's own routes, which the page's template editor and
pickers use, are under `/api/falsework/v1` (Authoring, Pickers). Every route but
`/healthz`, `/readyz`, `/metrics` and the OpenAPI document needs
`Authorization: Bearer <token>` unless the server runs in local mode (see
[operations](operations.md)).

`GET /v2/templates` leaves out the templates `falsework templates validate` rejects,
except for template authors and admins, to whom such a template comes with
`"broken": true` and its `problems`.

Errors use Backstage's body:

```json
{"error": {"name": "NotFoundError", "message": "No task with id '…' found"},
 "request": {"method": "GET", "url": "/v2/tasks/…"},
 "response": {"statusCode": 404}}
```

except invalid template values, which answer 400 with `{"errors": [...]}`, one
entry per failing field (`path`, `property`, `message`, `name`, `argument`, ...).
Request bodies over 10 MB answer 413, a body not sent within `body_timeout`
408, malformed requests and JSON nested deeper than `max_json_depth` (64) 422;
a per-user limit answers 429 with `Retry-After` when waiting helps. In local mode
a `Host` other than `127.0.0.1`, `localhost`, `[::1]` or an `allowed_hosts` name
answers 421.

`POST /v2/dry-run` takes Backstage's body (`template` and `directoryContents`),
which needs the `templates:author` role, or `{"templateRef", "values"}`: a
catalog template the caller may run, with its own files. Either runs in a child
process, bounded in time, memory and result size (422 `DryRunLimitError` past a
limit). Who may do what: [operations](operations.md#who-may-do-what).

A dry run logs, before each step, Backstage's line `Running <action> in dry-run
mode with inputs (secrets redacted): {…}` (the step's rendered input, secrets as
`***`); a step whose action cannot dry-run ends `skipped` with one event
(`Skipping because <action> does not support dry-run`), its outputs faked from
the output schema Backstage's action of that id declares (`catalog:register`: none).
When a step fails, the answer has Backstage's status and error body — 404
`NotFoundError` for an unknown action, 400 `InputError` for input the action
refuses, 500 for a file that does not render (`TemplateRenderError`) or any other
failure — and, beyond what Backstage sends, the run so far: `log`,
`directoryContents` (the files written before the failure), `output` and `steps`
(each with its `status`). A rehearsal (`falsework templates test --server`)
answers 200 with the failure in its `error`.

The event stream (`…/eventstream`) sends one message per event:

```
event: log
data: {"id":2,"isTaskRecoverable":false,"taskId":"…","body":{…},"type":"log","createdAt":"…"}
id: 2

```

with `: keep-alive` comments while the task is idle, and ends after the task's
final event. Reconnect with `Last-Event-ID` (or `?after=`) to resume without
gaps or duplicates.
"""


def _ref_name(schema: JSONObject) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    name = _ref_name(schema)
    if name:
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " \\| ".join(_type(s) for s in schema["anyOf"])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"object of {_type(schema['additionalProperties'])}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    return str(kind or "any")


def _cell(text: Any) -> str:
    return str(text or "").replace("\n", " ").replace("|", "\\|")


def _operation(method: str, path: str, op: JSONObject) -> list[str]:
    lines = [f"#### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        lines += [str(op["summary"]) + ".", ""]
    params = op.get("parameters") or []
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} "
                f"| {'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        for media, content in sorted(body.get("content", {}).items()):
            lines += [f"Body ({media}): {_type(content.get('schema', {}))}", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for code, response in sorted(op.get("responses", {}).items()):
        bodies = [
            f"{_type(c.get('schema', {}))} ({m})"
            for m, c in sorted((response.get("content") or {}).items())
        ]
        lines.append(f"| {code} | {_cell(response.get('description'))} | {', '.join(bodies)} |")
    lines.append("")
    return lines


def _schema(name: str, schema: JSONObject) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    props = schema.get("properties") or {}
    if not props:
        return [*lines, f"Type: {_type(schema)}", ""]
    required = set(schema.get("required") or [])
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, sub in props.items():
        lines.append(
            f"| `{field}` | {_type(sub)} | {'yes' if field in required else 'no'} "
            f"| {_cell(sub.get('description'))} |"
        )
    lines.append("")
    return lines


def render(document: JSONObject) -> str:
    """The Markdown reference of an OpenAPI document."""
    lines = [INTRO, "## Routes", ""]
    by_tag: dict[str, list[tuple[str, str, JSONObject]]] = {}
    for path, item in document.get("paths", {}).items():
        for method, op in item.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method, path, op))
    for tag in sorted(by_tag):
        lines += [f"### {tag.capitalize()}", ""]
        for method, path, op in by_tag[tag]:
            lines += _operation(method, path, op)
    lines += ["## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def current() -> str:
    """docs/api.md as the code describes it now."""
    from falsework.api.app import create_app
    from falsework.config import Settings

    app = create_app(Settings(auth={"tokens": []}))
    return render(app.openapi())


def main() -> None:
    sys.stdout.write(current())


if __name__ == "__main__":
    main()
