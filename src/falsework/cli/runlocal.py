"""What `falsework run` does, apart from reading its command line.

Two front doors call ``run_local``: the Typer command (``cli/run.py``, any
invocation, Rich output) and, for the scripted case (no terminal anywhere),
``cli/quickrun.py``, which reads the command line itself and prints plain lines
without importing Typer, Click or Rich (issue 17: the command line's start). Both
print through a ``Printer``, so what is said and in which order is one code.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from falsework.errors import FalseworkError
from falsework.localconfig import LocalSettings, read_local
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
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
    from falsework.config import Settings

# (text, style): one piece of a printed line; "ansi" pieces are text whose ANSI
# escapes are styles (a step's log message), the others are shown as they are
Piece = tuple[str, str]

# Asks on a terminal for what was not given: (template, given values, secrets so
# far, added to in place) -> the values
Ask = Callable[[Template, dict[str, Any], dict[str, str]], dict[str, Any]]


class Printer(Protocol):
    """Prints one line made of styled pieces (style ``ANSI`` marks a piece whose
    ANSI escapes are read as styles)."""

    def line(self, *pieces: Piece) -> None: ...


ANSI = "\x1b"  # the style of a piece given with its own ANSI escapes


class RichPrinter:
    """Prints a line of styled pieces on a Rich console (an ``ANSI`` piece's
    escapes read as styles, nothing read as markup)."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def line(self, *pieces: Piece) -> None:
        from rich.text import Text

        text = Text()
        for piece, style in pieces:
            text += Text.from_ansi(piece) if style == ANSI else Text(piece, style=style)
        self.console.print(text)


class Progress(Protocol):
    def step(self, description: str) -> None: ...

    def advance(self) -> None: ...

    def shown(self) -> contextlib.AbstractContextManager[object]: ...


def run_local(
    template: str,
    *,
    values_file: Path | None,
    sets: list[str],
    secrets: list[str],
    output: Path | None,
    dry_run: bool,
    out: Printer,
    err: Printer,
    ask: Ask | None = None,
    progress: Callable[[int], Progress | None] = lambda total: None,
) -> int:
    """Run ``template`` here; the exit code (0, 1 a step failed, 2 bad input,
    130 stopped while asking)."""
    try:
        settings = _settings()
    except (OSError, ValueError) as exc:  # a bad FALSEWORK_* value, config file
        err.line(("Error: ", "red"), (str(exc), ""))
        return 2
    with contextlib.ExitStack() as cleanup:
        try:
            tpl = _find(template, settings, cleanup, err)
            given = _values(tpl, values_file, sets)
            secret_values = dict(_pair(s, "--secret") for s in secrets)
            if ask is not None:
                given = ask(tpl, given, secret_values)
            values = validate_values(tpl, given)
        except ParameterValidationError as exc:
            err.line(("Invalid values:", "red"))
            for item in exc.errors:
                err.line((f"  - {item.get('stack') or item}", ""))
            return 2
        except (EOFError, KeyboardInterrupt):
            err.line(("\nStopped: nothing was run.", "yellow"))
            return 130
        except (FalseworkError, OSError, yaml.YAMLError, ValueError) as exc:
            err.line(("Error: ", "red"), (str(exc), ""))
            return 2

        # Local and run by its user: fetch:* may read any folder that user can,
        # publish:git may push to any local path (a relative one lands in
        # DATA_DIR/remotes), and git and http:request reach what the user's machine
        # reaches, with the user's git and ssh configuration (no egress policy).
        from falsework.wiring import workflow_runner

        runner = workflow_runner(settings, local=True)
        if dry_run:
            return asyncio.run(_dry_run(runner, tpl, values, secret_values, output, out))
        return asyncio.run(_run(runner, tpl, values, secret_values, output, out, err, progress))


def _settings() -> Settings | LocalSettings:
    """The settings a local run reads: without pydantic when the environment holds
    only plain scalars (``falsework.localconfig``), else the full ``Settings``."""
    fast = read_local()
    if fast is not None:
        return fast
    from falsework.config import load_settings

    return load_settings()


# ---------------------------------------------------------------- inputs


def _find(
    ref: str, settings: Settings | LocalSettings, cleanup: contextlib.ExitStack, err: Printer
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
    err.line((f"Cloning {source}", "dim"))
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

    def __init__(self, out: Printer, progress: Progress | None) -> None:
        self.out = out
        self.progress = progress

    def shown(self) -> contextlib.AbstractContextManager[object]:
        return self.progress.shown() if self.progress is not None else contextlib.nullcontext()

    def event(self, type: str, body: JSONObject) -> None:
        message = str(body.get("message", ""))
        status = body.get("status")
        if status == "processing":
            if self.progress is not None:
                self.progress.step(message)
        elif status in ("completed", "skipped", "failed", "cancelled"):
            if self.progress is not None:
                self.progress.advance()
            style = {"completed": "green", "skipped": "yellow"}.get(str(status), "red")
            self.out.line((f"{status:>9} ", style), (message, ANSI))
        elif body.get("stepId"):
            self.out.line(("          ", ""), (message, ANSI))


async def _run(
    runner: WorkflowRunner,
    tpl: Template,
    values: dict[str, Any],
    secrets: dict[str, str],
    output: Path | None,
    out: Printer,
    err: Printer,
    progress: Callable[[int], Progress | None],
) -> int:
    spec = tpl.task_spec(values, {"ref": f"user:default/{getpass.getuser()}"})
    task = LocalTask(spec=spec, secrets=secrets)
    workspace = output if output is not None else Path(tempfile.mkdtemp(prefix="falsework-run-"))
    workspace.mkdir(parents=True, exist_ok=True)
    display = _Display(out, progress(len(spec["steps"])))
    io = MemoryTaskIO(on_event=display.event)
    try:
        with display.shown():
            result = await runner.run(task, io, workspace=workspace)
    except TaskFailedError as exc:
        err.line(("Failed: ", "red"), (f"{exc.name}: {exc.message}", ""))
        return 1
    finally:
        if output is None:
            shutil.rmtree(workspace, ignore_errors=True)
    _print_output(result, out)
    if output is not None:
        out.line(("Done.", "green"), (f" Workspace written to {output}", ""))
    else:
        out.line(("Done.", "green"), (" (workspace discarded; use --output DIR to keep it)", ""))
    return 0


async def _dry_run(
    runner: WorkflowRunner,
    tpl: Template,
    values: dict[str, Any],
    secrets: dict[str, str],
    output: Path | None,
    out: Printer,
) -> int:
    from falsework.runner.dry_run import read_files, write_files

    files = read_files(tpl.directory, skip_dirs=frozenset({".git"}))
    result = await runner.dry_run(tpl, values, secrets, files)
    for entry in result["log"]:
        out.line((str(entry["body"].get("message", "")), ANSI))
    out.line(("Files:", "bold"))
    for item in result["directoryContents"]:
        out.line((f"  {item['path']}", ""))
    if output is not None:
        write_files(output, result["directoryContents"])
    _print_output(result["output"], out)
    if "error" in result:
        error = result["error"]
        out.line(("Failed: ", "red"), (f"{error['name']}: {error['message']}", ""))
        return 1
    return 0


def _print_output(output: JSONObject, out: Printer) -> None:
    for link in output.get("links") or []:
        target = str(link.get("url") or link.get("entityRef") or "")
        out.line((str(link.get("title") or target), "bold"), (f": {target}", ""))
    for text in output.get("text") or []:
        out.line((str(text.get("title", "")), "bold"))
        out.line((str(text.get("content", "")), ""))
