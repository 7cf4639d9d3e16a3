"""The registry, the decorator, the published schemas and docs/actions.md."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import Field

from falsework.actions import ActionContext, ActionInput, ActionRegistry, action, builtin
from falsework.actions import docs as action_docs
from falsework.actions.contract import Action
from falsework.actions.policies import SourcePolicy
from falsework.errors import ConflictError, NotFoundError
from support.paths import DOCS

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


def _defined_builtins() -> dict[str, Action[Any]]:
    """Every action the modules of ``actions/builtin/`` define, each imported."""
    found: dict[str, Action[Any]] = {}
    for info in pkgutil.iter_modules(builtin.__path__):
        module = importlib.import_module(f"{builtin.__name__}.{info.name}")
        for value in vars(module).values():
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, Action):
                    found[item.id] = item
    return found


def test_the_lazy_table_names_the_module_that_defines_each_builtin() -> None:
    defined = _defined_builtins()
    assert {i: a.handler.__module__ for i, a in defined.items()} == builtin.MODULES
    registry = ActionRegistry.builtin()
    assert registry.ids() == sorted(defined)
    for action_id, item in defined.items():
        assert registry.get(action_id) is item


def test_a_family_is_imported_only_when_one_of_its_actions_is_asked_for() -> None:
    probe = (
        "import json, sys\n"
        "from falsework.actions import ActionRegistry\n"
        "registry = ActionRegistry.builtin()\n"
        "ids = registry.ids()\n"
        "before = sorted(sys.modules)\n"
        "registry.get('debug:log')\n"
        "after_debug = sorted(sys.modules)\n"
        "registry.get('github:webhook')\n"
        "print(json.dumps([len(ids), before, after_debug, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    count, before, after_debug, after_github = json.loads(done.stdout)
    assert count == len(builtin.MODULES)
    families = {m for m in builtin.MODULES.values()}
    assert not families & set(before)
    assert families & set(after_debug) == {"falsework.actions.builtin.debug"}
    assert "githubkit" not in after_debug
    assert {"falsework.actions.builtin.github", "githubkit"} <= set(after_github)


def test_a_lazy_builtin_gets_its_family_settings_and_keeps_its_id() -> None:
    policy = SourcePolicy(roots=(Path("/srv/templates"),))
    registry = ActionRegistry.builtin(settings=(policy,))
    assert "fetch:template" in registry and "fetch:nothing" not in registry
    assert registry.get("fetch:template").settings is policy
    assert registry.get("fetch:plain").settings is policy
    with pytest.raises(ConflictError):
        registry.register(dataclasses.replace(shout, id="publish:gitlab"))


def test_settings_given_as_a_function_are_built_when_first_needed() -> None:
    policy = SourcePolicy(roots=(Path("/srv/templates"),))
    calls: list[int] = []

    def settings() -> tuple[object, ...]:
        calls.append(1)
        return (policy,)

    registry = ActionRegistry.builtin(settings=settings)
    assert registry.get("debug:log").settings is None
    assert calls == []  # no action with settings yet
    assert registry.get("fetch:template").settings is policy
    assert registry.get("fetch:plain").settings is policy
    assert calls == [1]


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
    committed = DOCS / "actions.md"
    assert committed.read_text(encoding="utf-8") == action_docs.render(), (
        "docs/actions.md is stale: run `python -m falsework.actions.docs > docs/actions.md`"
    )
