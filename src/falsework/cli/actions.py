"""`falsework actions ls`: the actions installed, with their input schema."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from falsework.actions import ActionRegistry

actions_app = typer.Typer(
    name="actions", help="The actions templates can use.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(actions_app)


def _inputs(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    parts = []
    for name, prop in (schema.get("properties") or {}).items():
        kind = (
            prop.get("type")
            or "/".join(
                str(s.get("type", "any")) for s in prop.get("anyOf", []) if s.get("type") != "null"
            )
            or "any"
        )
        parts.append(f"{name}{'*' if name in required else ''}: {kind}")
    return "\n".join(parts)


@actions_app.command("ls")
def ls(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print Backstage's /v2/actions JSON.")
    ] = False,
) -> None:
    """List every action (built-in and from the `falsework.actions` entry points)."""
    registry = ActionRegistry.default()
    console = Console(highlight=False)
    if as_json:
        console.print_json(json.dumps([a.to_json() for a in registry.list()]))
        return
    table = Table("action", "description", "input (* = required)", "dry run")
    for item in registry.list():
        table.add_row(
            item.id,
            item.description,
            _inputs(item.input_schema),
            "yes" if item.supports_dry_run else "no",
        )
    console.print(table)
