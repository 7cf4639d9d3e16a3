"""Generates docs/actions.md from the registry, so the reference cannot drift:
``python -m falsework.actions.docs > docs/actions.md`` (a test compares them)."""

from __future__ import annotations

import json
from typing import Any

from falsework.actions.contract import Action
from falsework.actions.registry import ActionRegistry


def _type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items") or {}
        return f"list of {_type(items)}" if items else "list"
    if "$ref" in schema:
        return "object"
    return str(kind or "any")


def _section(item: Action[Any]) -> list[str]:
    schema = item.input_schema
    required = set(schema.get("required", []))
    lines = [f"## `{item.id}`", "", item.description, ""]
    lines.append(f"Dry run: {'supported' if item.supports_dry_run else 'skipped (outputs faked)'}.")
    lines += ["", "| input | type | required | default | description |", "|---|---|---|---|---|"]
    for name, prop in (schema.get("properties") or {}).items():
        default = json.dumps(prop["default"]) if "default" in prop else ""
        desc = str(prop.get("description", "")).replace("|", "\\|").replace("\n", " ")
        typ = _type(prop).replace("|", "\\|")
        req = "yes" if name in required else ""
        lines.append(f"| `{name}` | {typ} | {req} | {default} | {desc} |")
    outputs = (item.output_schema.get("properties") or {}).items()
    if outputs:
        lines += ["", "| output | type | description |", "|---|---|---|"]
        for name, prop in outputs:
            desc = str(prop.get("description", "")).replace("|", "\\|")
            lines.append(f"| `{name}` | {_type(prop)} | {desc} |")
    for example in item.examples:
        lines += ["", f"**{example.description}**", "", "```yaml", example.example.rstrip(), "```"]
    lines.append("")
    return lines


_SIDE_EFFECTS = """\
## When a step runs again: idempotency keys and reuse

A step can run more than once: its worker may die, lose its lease or be stopped
mid-step, and the task is then resumed elsewhere from the step it was in (see
[What remains at-least-once](operations.md#what-remains-at-least-once)). So that
running it again does not do its work twice, each step has an **idempotency key**
(a Falsework extension; Backstage has none): a UUID derived from the task id, the
step id (with the item's index under `each`, as in `deploy[2]`) and the attempt
that first asked for it. It is stored with the task before the action gets it, so
every run of the step that follows an interrupted one gets the **same** key. Once
the step has ended (completed or failed) the key is spent: a user's **retry** that
runs the step again gets a **new** key (derived from the retry's attempt), so a
service that remembers keys does the work again instead of replaying the failure.
A step that re-runs by design on each attempt (`if: ${{ always() }}`) gets a new
key each attempt too, as do the steps an interrupted run had completed when the
template recovers with `startOver` (it asked for a fresh run); the step that was
interrupted keeps its key.

- `http:request` with `idempotencyKey: true` sends it as the `Idempotency-Key`
  header (the IETF draft's and Stripe's name); not with `until` (a poll sends many
  requests), nor with an `Idempotency-Key` of your own in `headers`.
  `http:backstage:request` does the same with `idempotencyKey: true` (or a string,
  which also keeps the answer as a checkpoint, so the request is sent once per task).
- The actions that push a repository's first commit (`publish:git`,
  `github:repo:push`, and `publish:github`, `publish:gitlab`, `publish:gitea`,
  `publish:azure`, `publish:bitbucketCloud`, `publish:bitbucketServer`) and
  `publish:github:pull-request` write the key into their commit as a
  `Falsework-Step-Key: <key>` trailer. Run again after an interruption, they find
  that commit at the head of the branch and reuse it (the same `commitHash`,
  nothing pushed); `publish:git` with `force: true` looks before it
  force-pushes. `publish:github:pull-request` also reuses the open pull request
  of its branch when the branch holds that commit. Run again after an
  interruption, `publish:gitlab:merge-request` finds its branch's commit by the
  trailer too, and it, `publish:bitbucketServer:pull-request` and
  `publish:bitbucketCloud:pull-request` (which use a source branch that exists
  as it is) reuse the open request from their branch into the target instead of
  opening another. A new task still meets the branch or request that exists as
  Backstage's do (`publish:azure:pull-request` always reuses an open request of
  its branches, as Backstage's does).
- `github:repo:create` and `publish:github` adopt the repository they are told to
  create when creating it is refused because it exists, the step had its key
  before (an earlier run was interrupted), and the repository is empty or holds
  that commit; its settings are applied again. Anyone else's repository of that
  name (not empty and not holding the commit, or filled by `autoInit`) is still
  an error. `publish:gitlab`, `publish:gitea`, `publish:bitbucketCloud`,
  `publish:bitbucketServer` and `publish:azure` adopt theirs by the same rule
  (the host's answer for a name in use, then the repository read back); their
  other calls (GitLab's owner, branches and variables) are not matched yet.
  `publish:gitlab` with `skipExisting: true` takes any existing project, as
  Backstage's does.
- `catalog:register` takes the catalog's 409 (location already registered), and
  `github:webhook` GitHub's 422 (a hook for that URL exists), as done in a run
  that follows an interrupted one.
- Templates read it as `${{ context.step.idempotencyKey }}` in a step's `input`,
  to put it where a service expects it (another header name, a body field, a
  workflow dispatch's inputs).
- Custom actions read the key with `await ctx.idempotency_key()` (or
  `ctx.step_key()`, which also says whether an earlier run was given it), and keep
  results with `ctx.checkpoint(key, fn)`.

Not covered: `github:actions:dispatch` dispatches again when its worker died
between the call and its checkpoint (GitHub has no key for a dispatch; pass
`${{ context.step.idempotencyKey }}` in `workflowInputs` for the workflow to
check), as does any request to a service that ignores `Idempotency-Key`.

"""
_SIDE_EFFECTS_LINES = _SIDE_EFFECTS.splitlines()


def render(registry: ActionRegistry | None = None) -> str:
    reg = registry or ActionRegistry.builtin()
    lines = [
        "# Actions",
        "",
        "<!-- Generated by `python -m falsework.actions.docs`; do not edit by hand. -->",
        "",
        "Built-in actions, with Backstage's input names. Every path input is relative to",
        "the task's workspace; `..`, absolute paths and symbolic links leaving it are refused.",
        "A link is fetched only when it points inside the folder fetched (a link pointing",
        "elsewhere fails the step, naming the file); no action reads or writes through a link",
        "(see [Symbolic links](templates.md#symbolic-links)).",
        "`falsework actions ls` lists the actions installed, custom ones included.",
        "",
        *_SIDE_EFFECTS_LINES,
    ]
    for item in reg.list():
        lines += _section(item)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
