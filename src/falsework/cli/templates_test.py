"""`falsework templates test`: run the test cases beside each template.

One line per case as it ends, the problems and diffs of the failed ones, a
summary; a progress bar on a terminal when the suite is large. Exit codes: 0
every case passed, 1 some failed, 2 a usage error or a case that could not run.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from falsework.cli import output
from falsework.testing.junit import write_report
from falsework.testing.rehearse import LocalRehearser, Rehearser, ServerRehearser, UsageError
from falsework.testing.suite import Options, Outcome, Plan, exit_code, plan, run_suite

PROGRESS_FROM = 20  # cases: a progress bar for suites at least this large

_LABELS = {"passed": ("PASS", "green"), "failed": ("FAIL", "red"), "broken": ("BROKEN", "red")}


def test(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Template folders or files, or folders searched for templates "
            "(default: the current folder)."
        ),
    ] = None,
    patterns: Annotated[
        list[str] | None,
        typer.Option(
            "-k",
            help="Run only the cases whose id (template/case) contains this text or "
            "matches it as a glob; repeatable.",
        ),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Rewrite the snapshots that differ (only those).")
    ] = False,
    ci: Annotated[
        bool,
        typer.Option("--ci", help="A missing or unused snapshot is a failure (nothing written)."),
    ] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report to this file.")
    ] = None,
    checks: Annotated[
        bool,
        typer.Option("--run-checks", help="Run the check: commands of expect.yaml on each result."),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Rehearse through this Falsework server's dry-run API "
            "(for templates that use its own actions).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="FALSEWORK_TOKEN",
            help="The API token for --server (or FALSEWORK_TOKEN). Sending a template's "
            "working copy needs the templates:author role.",
        ),
    ] = None,
    by_ref: Annotated[
        bool,
        typer.Option(
            "--by-ref",
            help="With --server: run the server's own copy of each template (by its "
            "ref; the right to run it is enough), not the working copy.",
        ),
    ] = False,
) -> None:
    """Test templates: each case's answers are checked page by page as the form
    does, the template is rehearsed (a deterministic dry run whose pushes,
    pull requests and catalog calls are recorded and whose http:request calls are
    answered from the case's http/ files), and the result compared with the
    case's snapshot/ and expect.yaml."""
    out = output.console()
    err = output.console(stderr=True)
    if update and ci:
        _usage(err, "--update and --ci do not go together: --ci never writes a snapshot")
    if by_ref and not server:
        _usage(err, "--by-ref goes with --server")
    options = Options(patterns=tuple(patterns or ()), update=update, ci=ci, run_checks=checks)
    found = plan(list(paths or [Path(".")]), options.patterns)
    total = len(found.cases) + len(found.broken) + len(found.unused)
    if total == 0:
        where = ", ".join(str(p) for p in paths or [Path(".")])
        selection = " matching -k" if options.patterns else ""
        err.print(Text(f"no test cases{selection} found in {where} (tests/<case>/values.yaml)"))
        raise typer.Exit(2)
    rehearser: Rehearser = (
        ServerRehearser(server, token, by_ref=by_ref) if server else LocalRehearser()
    )
    started = time.perf_counter()
    try:
        outcomes = asyncio.run(_run(found, rehearser, options, out, total))
    except UsageError as exc:
        _usage(err, exc.message)
    _details(out, outcomes)
    for path in found.untested:
        out.print(Text(f"no test cases: {path} (add tests/<case>/values.yaml)", style="yellow"))
    _summary(out, outcomes, time.perf_counter() - started)
    if junit is not None:
        write_report(junit, outcomes)
    raise typer.Exit(exit_code(outcomes))


def _usage(err: Console, message: str) -> None:
    err.print(Text("Error: ", style="red") + Text(message))
    raise typer.Exit(2)


async def _run(
    found: Plan, rehearser: Rehearser, options: Options, out: Console, total: int
) -> list[Outcome]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal or total < PROGRESS_FROM,
    )
    bar = progress.add_task("Testing templates", total=total)

    def show(outcome: Outcome) -> None:
        progress.advance(bar)
        progress.console.print(_line(outcome))

    try:
        with progress:
            return await run_suite(found, rehearser, options, on_outcome=show)
    finally:
        await rehearser.aclose()


def _line(outcome: Outcome) -> Text:
    label, style = _LABELS[outcome.verdict]
    if outcome.unused and outcome.verdict == "passed":
        label, style = "NOTE", "yellow"
    line = Text(f"{label:<6} ", style=style) + Text(outcome.id)
    if outcome.seconds:
        line += Text(f" ({outcome.seconds * 1000:.0f} ms)", style="dim")
    for note in outcome.notes:
        line += Text(f"  {note}", style="yellow")
    return line


def _details(out: Console, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.verdict == "passed":
            continue
        out.print()
        label, style = _LABELS[outcome.verdict]
        head = Text(f"{label} ", style=f"bold {style}") + Text(outcome.id, style="bold")
        if outcome.where is not None:
            head += Text(f" ({outcome.where})", style="dim")
        out.print(head)
        for problem in outcome.problems:
            out.print(Text(f"  {problem.kind}: ", style=style) + Text(problem.message))
            if problem.diff:
                out.print(_diff(problem.diff))


def _diff(diff: str) -> Text:
    shown = Text()
    for line in diff.splitlines(keepends=True):
        style = ""
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        shown += Text("    " + line, style=style)
    shown.rstrip()
    return shown


def _summary(out: Console, outcomes: list[Outcome], seconds: float) -> None:
    cases = [o for o in outcomes if not o.unused]
    counts = {v: sum(o.verdict == v for o in cases) for v in ("passed", "failed", "broken")}
    written = sum(any(n.startswith("snapshot written") for n in o.notes) for o in outcomes)
    updated = sum(any(n.startswith("snapshot updated") for n in o.notes) for o in outcomes)
    unused = sum(o.unused or any(n.startswith("unused") for n in o.notes) for o in outcomes)
    parts = [f"{counts['passed']} passed"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    if counts["broken"]:
        parts.append(f"{counts['broken']} broken")
    extra = [
        f"{n} {what}"
        for n, what in (
            (written, "snapshot(s) written"),
            (updated, "snapshot(s) updated"),
            (unused, "unused snapshot(s)"),
        )
        if n
    ]
    style = "green" if not counts["failed"] and not counts["broken"] else "red"
    text = Text("cases: " + ", ".join(parts), style=f"bold {style}")
    if extra:
        text += Text(" (" + ", ".join(extra) + ")")
    text += Text(f" in {seconds:.2f}s")
    out.print()
    out.print(text)


def register(app: typer.Typer) -> None:
    app.command("test")(test)
