"""`falsework actions ls`: the actions installed, with their input schema."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from falsework.actions import ActionRegistry
from falsework.cli import output

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
    if as_json:
        output.print_json([a.to_json() for a in registry.list()])
        return
    console = output.console()
    if not console.is_terminal:
        # one line per action: its id, whether it dry-runs, and its inputs
        for item in registry.list():
            inputs = _inputs(item.input_schema).replace("\n", ", ")
            dry = "dry-run" if item.supports_dry_run else "no-dry-run"
            console.print(Text(f"{item.id}\t{dry}\t{inputs}\t{item.description}"))
        return
    table = Table("action", "description", "input (* = required)", "dry run")
    for item in registry.list():
        table.add_row(
            Text(item.id),
            Text(item.description),
            Text(_inputs(item.input_schema)),
            "yes" if item.supports_dry_run else "no",
        )
    console.print(table)
