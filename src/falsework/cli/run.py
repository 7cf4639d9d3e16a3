"""`falsework run`: run a template locally, no server or database (like `copier copy`)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.text import Text

from falsework.cli.output import console as new_console
from falsework.cli.output import escape as escape_markup
from falsework.errors import FalseworkError
from falsework.localconfig import LocalSettings, read_local
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.runner.dry_run import read_files, write_files
from falsework.templates import (
    ParameterValidationError,
    Template,
    TemplateCatalog,
    load_templates,
    validate_values,
)
from falsework.templates.catalog import candidate_files
from falsework.templates.syntax import read_value
from falsework.templates.values import MAX_VALUE_DEPTH
from falsework.types import JSONObject

if TYPE_CHECKING:
    from rich.progress import Progress

    from falsework.config import Settings


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
    try:
        settings = _settings()
    except (OSError, ValueError) as exc:  # a bad FALSEWORK_* value, config file
        err.print(Text("Error: ", style="red") + Text(str(exc)))
        raise typer.Exit(2) from None
    with contextlib.ExitStack() as cleanup:
        try:
            tpl = _find(template, settings, cleanup, err)
            given = _values(tpl, values_file, sets or [])
            secret_values = dict(_pair(s, "--secret") for s in secrets or [])
            if sys.stdin.isatty():
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
            values = validate_values(tpl, given)
        except ParameterValidationError as exc:
            err.print(Text("Invalid values:", style="red"))
            for item in exc.errors:
                err.print(Text(f"  - {item.get('stack') or item}"))
            raise typer.Exit(2) from None
        except (EOFError, KeyboardInterrupt):
            err.print(Text("\nStopped: nothing was run.", style="yellow"))
            raise typer.Exit(130) from None
        except (FalseworkError, OSError, yaml.YAMLError, ValueError) as exc:
            err.print(Text("Error: ", style="red") + Text(str(exc)))
            raise typer.Exit(2) from None

        # Local and run by its user: fetch:* may read any folder that user can,
        # publish:git may push to any local path (a relative one lands in
        # DATA_DIR/remotes), and git and http:request reach what the user's machine
        # reaches, with the user's git and ssh configuration (no egress policy).
        from falsework.wiring import workflow_runner

        runner = workflow_runner(settings, local=True)
        if dry_run:
            code = asyncio.run(_dry_run(runner, tpl, values, secret_values, output, console))
        else:
            code = asyncio.run(_run(runner, tpl, values, secret_values, output, console, err))
    raise typer.Exit(code)


def _settings() -> Settings | LocalSettings:
    """The settings a local run reads: without pydantic when the environment holds
    only plain scalars (``falsework.localconfig``), else the full ``Settings``."""
    fast = read_local()
    if fast is not None:
        return fast
    from falsework.config import load_settings

    return load_settings()


def _required_only(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(schema, dict):
        return None
    required = set(schema.get("required") or [])
    props = {k: v for k, v in (schema.get("properties") or {}).items() if k in required}
    return {**schema, "properties": props}


# ---------------------------------------------------------------- inputs


def _find(
    ref: str, settings: Settings | LocalSettings, cleanup: contextlib.ExitStack, err: Console
) -> Template:
    """The template ``ref`` names: a folder or file here, a git repository (cloned
    into a temporary folder removed when the run ends), or a catalog ref or name."""
    path = Path(ref)
    if path.exists():
        return _load(path)
    # a local run of a local template needs neither (the git and HTTP policies)
    from falsework.actions.git import GitPolicy
    from falsework.cli import remote

    source = remote.parse(ref)
    if source is None:
        return TemplateCatalog(settings.template_dirs).get(ref)
    policies = settings.action_policies(local=True)
    policy = next(p for p in policies if isinstance(p, GitPolicy))
    folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="falsework-")))
    err.print(Text(f"Cloning {source}", style="dim"))
    return _load(asyncio.run(remote.clone(policy, source, folder / "repo")))


def _load(path: Path) -> Template:
    files = list(candidate_files(path))
    found = [t for f in files for t in load_templates(f)]
    if not found:
        raise FalseworkError(f"No Template (kind: Template) found in {path}")
    if len(found) > 1:
        names = ", ".join(str(t.path) for t in found)
        raise FalseworkError(f"{path} holds several templates; pick one file: {names}")
    return found[0]


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{option} {text!r}: expected key=value")
    return key.strip(), value


def _values(tpl: Template, values_file: Path | None, sets: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if values_file is not None:
        loaded = _value(values_file.read_text(encoding="utf-8"), str(values_file)) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{values_file}: expected a YAML mapping of values")
        values.update(loaded)
    types = _property_types(tpl)
    for item in sets:
        key, raw = _pair(item, "--set")
        # A string parameter keeps the text as typed ("007" stays "007").
        value: Any = raw
        if types.get(key) != "string":
            value = _value(raw, f"--set {key}") if raw else ""
        target = values
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return values


def _value(text: str, where: str) -> Any:
    # nesting bounded as the values' is: validate_values' check_shape says where a
    # value is too deep; this stops a parse that would recurse past Python's limit
    return read_value(text, where, max_depth=MAX_VALUE_DEPTH)


def _property_types(tpl: Template) -> dict[str, str]:
    types: dict[str, str] = {}
    for page in tpl.parameters:
        for name, prop in (page.get("properties") or {}).items():
            if isinstance(prop, dict) and isinstance(prop.get("type"), str):
                types[name] = prop["type"]
    return types


# ---------------------------------------------------------------- running


class _Display:
    """Draws a task's events: log lines, and on a terminal a progress bar over the
    steps below them (a pipe or a file gets the lines only)."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.progress: Progress | None = None
        if console.is_terminal:
            # imported here: a pipe or CI never draws it
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
            )

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
            )
            self.bar = self.progress.add_task("Starting", total=total)

    def shown(self) -> contextlib.AbstractContextManager[object]:
        return self.progress if self.progress is not None else contextlib.nullcontext()

    def event(self, type: str, body: JSONObject) -> None:
        message = str(body.get("message", ""))
        status = body.get("status")
        console = self.console
        if status == "processing":
            if self.progress is not None:
                self.progress.update(self.bar, description=escape_markup(message))
        elif status in ("completed", "skipped", "failed", "cancelled"):
            if self.progress is not None:
                self.progress.advance(self.bar)
            style = {"completed": "green", "skipped": "yellow"}.get(str(status), "red")
            console.print(Text(f"{status:>9} ", style=style) + Text.from_ansi(message))
        elif body.get("stepId"):
            console.print(Text("          ") + Text.from_ansi(message))


async def _run(
    runner: WorkflowRunner,
    tpl: Template,
    values: dict[str, Any],
    secrets: dict[str, str],
    output: Path | None,
    console: Console,
    err: Console,
) -> int:
    spec = tpl.task_spec(values, {"ref": f"user:default/{getpass.getuser()}"})
    task = LocalTask(spec=spec, secrets=secrets)
    workspace = output if output is not None else Path(tempfile.mkdtemp(prefix="falsework-run-"))
    workspace.mkdir(parents=True, exist_ok=True)
    display = _Display(console, len(spec["steps"]))
    io = MemoryTaskIO(on_event=display.event)
    try:
        with display.shown():
            result = await runner.run(task, io, workspace=workspace)
    except TaskFailedError as exc:
        err.print(Text("Failed: ", style="red") + Text(f"{exc.name}: {exc.message}"))
        return 1
    finally:
        if output is None:
            shutil.rmtree(workspace, ignore_errors=True)
    _print_output(result, console)
    if output is not None:
        console.print(Text("Done.", style="green") + Text(f" Workspace written to {output}"))
    else:
        kept = " (workspace discarded; use --output DIR to keep it)"
        console.print(Text("Done.", style="green") + Text(kept))
    return 0


async def _dry_run(
    runner: WorkflowRunner,
    tpl: Template,
    values: dict[str, Any],
    secrets: dict[str, str],
    output: Path | None,
    console: Console,
) -> int:
    files = read_files(tpl.directory, skip_dirs=frozenset({".git"}))
    result = await runner.dry_run(tpl, values, secrets, files)
    for entry in result["log"]:
        console.print(Text.from_ansi(str(entry["body"].get("message", ""))))
    console.print(Text("Files:", style="bold"))
    for item in result["directoryContents"]:
        console.print(Text(f"  {item['path']}"))
    if output is not None:
        write_files(output, result["directoryContents"])
    _print_output(result["output"], console)
    if "error" in result:
        error = result["error"]
        console.print(Text("Failed: ", style="red") + Text(f"{error['name']}: {error['message']}"))
        return 1
    return 0


def _print_output(output: JSONObject, console: Console) -> None:
    for link in output.get("links") or []:
        target = str(link.get("url") or link.get("entityRef") or "")
        console.print(Text(str(link.get("title") or target), style="bold") + Text(f": {target}"))
    for text in output.get("text") or []:
        console.print(Text(str(text.get("title", "")), style="bold"))
        console.print(Text(str(text.get("content", ""))))
