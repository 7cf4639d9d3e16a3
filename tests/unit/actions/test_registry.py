"""The registry, the decorator, the published schemas and docs/actions.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import Field

from falsework.actions import ActionContext, ActionInput, ActionRegistry, action
from falsework.actions import docs as action_docs
from falsework.errors import ConflictError, NotFoundError

BACKSTAGE_IDS = {
    "catalog:write",
    "debug:log",
    "debug:wait",
    "fetch:plain",
    "fetch:plain:file",
    "fetch:template",
    "fetch:template:file",
    "fs:delete",
    "fs:readdir",
    "fs:rename",
}


def test_builtins_cover_backstage_and_the_new_ones() -> None:
    ids = set(ActionRegistry.default().ids())
    assert BACKSTAGE_IDS | {"publish:git", "http:request"} <= ids


def test_unknown_action_suggests_the_close_one() -> None:
    with pytest.raises(NotFoundError, match="did you mean fetch:template"):
        ActionRegistry.builtin().get("fetch:tmplate")


def test_input_schemas_are_valid_json_schema_with_backstage_names() -> None:
    for item in ActionRegistry.builtin().list():
        jsonschema.Draft7Validator.check_schema(item.input_schema)
        body = item.to_json()
        assert body["id"] == item.id and body["schema"]["input"] is item.input_schema
    props = ActionRegistry.builtin().get("fetch:template").input_schema["properties"]
    assert {"url", "targetPath", "copyWithoutTemplating", "templateFileExtension"} <= set(props)


class ShoutInput(ActionInput):
    text: str = Field(description="What to shout.")


@action(id="test:shout", description="Shouts.", input=ShoutInput, dry_run=True)
async def shout(ctx: ActionContext[ShoutInput]) -> None:
    ctx.output("loud", ctx.input.text.upper())


def test_custom_action_registers_once() -> None:
    registry = ActionRegistry.builtin()
    registry.register(shout)
    assert registry.get("test:shout") is shout
    with pytest.raises(ConflictError):
        registry.register(shout)


def test_action_ids_must_be_family_verb() -> None:
    with pytest.raises(ValueError, match="family:verb"):
        action(id="shout", description="x", input=ShoutInput)(shout.handler)


async def test_custom_action_runs_in_a_task(harness: Any) -> None:
    harness.runner.registry.register(shout)
    result = await harness.run(
        [{"id": "s", "action": "test:shout", "input": {"text": "${{ parameters.w }}"}}],
        {"w": "hey"},
        output={"text": [{"title": "t", "content": "${{ steps.s.output.loud }}"}]},
    )
    assert result.output == {"text": [{"title": "t", "content": "HEY"}]}


def test_docs_match_the_generator() -> None:
    committed = Path(__file__).parents[3] / "docs" / "actions.md"
    assert committed.read_text(encoding="utf-8") == action_docs.render(), (
        "docs/actions.md is stale: run `python -m falsework.actions.docs > docs/actions.md`"
    )
