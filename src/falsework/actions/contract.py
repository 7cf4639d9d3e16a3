"""The Action contract: what one built-in or custom action declares.

An action is a value (``Action``), built by the ``@action`` decorator around an
async handler. Its input model is a pydantic model whose JSON Schema the API
publishes under Backstage's field names (camelCase aliases), so one declaration
serves validation, documentation and ``GET /v2/actions``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from falsework.types import JSONObject

if TYPE_CHECKING:
    from falsework.actions.context import ActionContext

ACTION_ID = re.compile(r"^[a-z][a-z0-9-]*(:[a-z][a-zA-Z0-9-]*)+$")


class ActionInput(BaseModel):
    """Base of every input model: Backstage's camelCase names, unknown keys refused.

    Refusing unknown keys turns a typo (``targetpath``) into a clear error
    instead of a silently ignored input, as Backstage's strict schemas do.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


InputT = TypeVar("InputT", bound=BaseModel)
SettingsT = TypeVar("SettingsT")
Handler = Callable[["ActionContext[InputT]"], Awaitable[None]]
# The handler of an action whose family has settings (``@action(settings=…)``).
ConfiguredHandler = Callable[["ActionContext[InputT]", SettingsT], Awaitable[None]]


@dataclass(frozen=True)
class Example:
    """One documented use: a description and a YAML ``steps:`` snippet."""

    description: str
    example: str


@dataclass(frozen=True, eq=False)
class Action(Generic[InputT]):
    """One action. ``raw_input`` names top-level input keys the runner must not
    render (they are template expressions the action evaluates itself, like
    ``http:request``'s ``until``).

    ``settings_type`` names the settings of the action's family (a frozen value
    such as ``SourcePolicy``); the registry hands the configured one to
    ``configured()`` when it is built, and ``run`` passes it to the handler
    beside the per-run context. Until then the type's defaults apply."""

    id: str
    description: str
    input_model: type[InputT]
    handler: Callable[..., Awaitable[None]]
    output_schema: JSONObject = field(default_factory=lambda: {"type": "object"})
    supports_dry_run: bool = False
    examples: tuple[Example, ...] = ()
    raw_input: frozenset[str] = frozenset()
    # Its only effect is on the workspace, and running it again gives the same
    # files: a resumed task (recovered elsewhere, or retried) runs it again to
    # rebuild the workspace instead of skipping it (fetch:*, fs:*, catalog:write).
    rebuilds_workspace: bool = False
    settings_type: type[Any] | None = None
    settings: Any = None
    # Runs in a rehearsal instead of the handler (``falsework.actions.rehearsal``):
    # says what the action would do, outputs what it would output, records what
    # it would push (``ctx.recording``). Takes the context only: it reaches nothing.
    recorder: Handler[InputT] | None = None
    # What a dry run fakes this action's outputs from when it cannot dry-run: its
    # output schema, unless Backstage's action of the same id declares none
    # (then a dry run shows no outputs, as Backstage's does).
    dry_run_output: JSONObject | None = None

    def __post_init__(self) -> None:
        if not ACTION_ID.match(self.id):
            raise ValueError(f"action id {self.id!r} is not of the form family:verb")
        if self.settings_type is not None and self.settings is None:
            object.__setattr__(self, "settings", self.settings_type())

    def run(self, ctx: ActionContext[InputT]) -> Awaitable[None]:
        """Run the handler for one step (with its family's settings, if any), or
        its recorder in a rehearsal: the handler's own awaitable, so a waiting
        step holds no frame of this method."""
        if self.recorder is not None and ctx.recording is not None:
            return self.recorder(ctx)
        if self.settings_type is None:
            return self.handler(ctx)
        return self.handler(ctx, self.settings)

    def configured(self, settings: object) -> Action[InputT]:
        """This action with its family's ``settings`` (of ``settings_type``)."""
        if self.settings_type is None or not isinstance(settings, self.settings_type):
            raise TypeError(f"{self.id} takes no settings of type {type(settings).__name__}")
        return dataclasses.replace(self, settings=settings)

    @cached_property
    def input_schema(self) -> JSONObject:
        schema = self.input_model.model_json_schema(by_alias=True)
        schema.setdefault("$schema", "http://json-schema.org/draft-07/schema#")
        return schema

    def to_json(self) -> JSONObject:
        """Backstage's ``GET /v2/actions`` item."""
        return {
            "id": self.id,
            "description": self.description,
            "examples": [
                {"description": e.description, "example": e.example} for e in self.examples
            ],
            "schema": {"input": self.input_schema, "output": self.output_schema},
            "supportsDryRun": self.supports_dry_run,
        }


@overload
def action(
    *,
    id: str,
    description: str,
    input: type[InputT],
    output: JSONObject | None = None,
    dry_run: bool = False,
    examples: Sequence[Example | tuple[str, str]] = (),
    raw_input: Sequence[str] = (),
    rebuilds_workspace: bool = False,
    settings: None = None,
    recorder: Handler[InputT] | None = None,
    dry_run_output: JSONObject | None = None,
) -> Callable[[Handler[InputT]], Action[InputT]]: ...


@overload
def action(
    *,
    id: str,
    description: str,
    input: type[InputT],
    output: JSONObject | None = None,
    dry_run: bool = False,
    examples: Sequence[Example | tuple[str, str]] = (),
    raw_input: Sequence[str] = (),
    rebuilds_workspace: bool = False,
    settings: type[SettingsT],
    recorder: Handler[InputT] | None = None,
    dry_run_output: JSONObject | None = None,
) -> Callable[[ConfiguredHandler[InputT, SettingsT]], Action[InputT]]: ...


def action(
    *,
    id: str,
    description: str,
    input: type[InputT],
    output: JSONObject | None = None,
    dry_run: bool = False,
    examples: Sequence[Example | tuple[str, str]] = (),
    raw_input: Sequence[str] = (),
    rebuilds_workspace: bool = False,
    settings: type[Any] | None = None,
    recorder: Handler[InputT] | None = None,
    dry_run_output: JSONObject | None = None,
) -> Callable[[Callable[..., Awaitable[None]]], Action[InputT]]:
    """Turn an async handler into an ``Action`` (the decorated name is the Action).

    With ``settings=SomePolicy`` the handler takes ``(ctx, policy)``: the
    family's configuration, given once when the registry is built. ``recorder``
    stands in for the handler in a rehearsal (see ``Action.recorder``)."""

    def wrap(handler: Callable[..., Awaitable[None]]) -> Action[InputT]:
        return Action(
            id=id,
            description=description,
            input_model=input,
            handler=handler,
            output_schema=output if output is not None else {"type": "object"},
            supports_dry_run=dry_run,
            examples=tuple(e if isinstance(e, Example) else Example(*e) for e in examples),
            raw_input=frozenset(raw_input),
            rebuilds_workspace=rebuilds_workspace,
            settings_type=settings,
            recorder=recorder,
            dry_run_output=dry_run_output,
        )

    return wrap


def example_output(schema: JSONObject) -> Any:
    """A plausible value for an output schema: what a dry run fakes for an action
    that cannot run without side effects."""
    if schema.get("examples"):
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: example_output(sub) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind == "string":
        return "<example>"
    if kind in ("number", "integer"):
        return 0
    if kind == "boolean":
        return False
    return None
