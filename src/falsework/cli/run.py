"""`falsework run`: run a template locally, no server or database (like `copier copy`).

The command line as Typer reads it, and Rich's output; what the run does is
``cli/runlocal.py`` (shared with ``cli/quickrun.py``, the front door without
Typer or Rich for the scripted case)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from falsework.cli.output import console as new_console
from falsework.cli.output import escape as escape_markup
from falsework.cli.runlocal import RichPrinter, run_local
from falsework.templates import Template

if TYPE_CHECKING:
    from rich.progress import Progress


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    template: Annotated[
        str,
        typer.Argument(
            help="A template folder, its YAML file, a ref or name (see `templates ls`), or "
            "a git repository: gh:OWNER/REPO[/PATH][@REF] (gl:, bb:), or any git URL."
        ),
    ],
    values_file: Annotated[
        Path | None, typer.Option("--values", help="A YAML file of parameter values.")
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="key=value (dotted keys nest); repeatable.")
    ] = None,
    secrets: Annotated[
        list[str] | None, typer.Option("--secret", help="key=value secret; repeatable.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the workspace to this folder.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Skip actions that cannot dry-run; fake outputs.")
    ] = False,
    defaults: Annotated[
        bool,
        typer.Option(
            "--defaults",
            help="Take every default without asking; ask only for required values that "
            "have none (on a terminal).",
        ),
    ] = False,
) -> None:
    """Run a template's steps here and now, writing the result to --output.

    On a terminal, every parameter not given with --values or --set is asked, page
    by page, each answer checked as it is given. Elsewhere (a pipe, CI) nothing is
    asked: defaults apply and a missing required value is an error (exit 2).
    """
    console = new_console()
    err = new_console(stderr=True)
    code = run_local(
        template,
        values_file=values_file,
        sets=sets or [],
        secrets=secrets or [],
        output=output,
        dry_run=dry_run,
        out=RichPrinter(console),
        err=RichPrinter(err),
        ask=_asker(err, defaults) if sys.stdin.isatty() else None,
        progress=lambda total: _Bar(console, total) if console.is_terminal else None,
    )
    raise typer.Exit(code)


def _asker(err: Console, defaults: bool) -> Any:
    def ask(tpl: Template, given: dict[str, Any], secret_values: dict[str, str]) -> Any:
        from falsework.cli.prompts import Questions

        questions = Questions(tpl, err, defaults=defaults)
        given = questions.run(given)
        secret_values.update(questions.secrets)
        if not defaults or tpl.secrets_schema:
            questions.ask_secrets(
                _required_only(tpl.secrets_schema) if defaults else tpl.secrets_schema,
                secret_values,
            )
            secret_values.update(questions.secrets)
        return given

    return ask


def _required_only(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(schema, dict):
        return None
    required = set(schema.get("required") or [])
    props = {k: v for k, v in (schema.get("properties") or {}).items() if k in required}
    return {**schema, "properties": props}


class _Bar:
    """A progress bar over the steps, below their log lines (on a terminal)."""

    def __init__(self, console: Console, total: int) -> None:
        # imported here: a pipe or CI never draws it
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self.progress: Progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        self.bar = self.progress.add_task("Starting", total=total)

    def shown(self) -> contextlib.AbstractContextManager[object]:
        return self.progress

    def step(self, description: str) -> None:
        self.progress.update(self.bar, description=escape_markup(description))

    def advance(self) -> None:
        self.progress.advance(self.bar)
