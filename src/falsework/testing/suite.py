"""A suite: every case of the templates under some paths, run and judged.

A case passes when its result matches its snapshot and its expectations. Its
snapshot is written when it has none (a failure with ``ci``), rewritten when it
differs only with ``update`` (which touches only the files that changed). A
snapshot no case uses (an invalid case's, one with ``snapshot: false``, a
folder of ``tests/`` that is no case) is reported; with ``ci`` it fails the run,
with ``update`` it is removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from falsework.errors import FalseworkError
from falsework.testing.cases import SNAPSHOT_DIR, TESTS_DIR, Broken, Case, cases_of, discover
from falsework.testing.cases import selected as is_selected
from falsework.testing.expect import check_expectations, run_checks
from falsework.testing.rehearse import Rehearser, Rendered, UsageError, rehearse
from falsework.testing.snapshot import (
    Problem,
    compare,
    read_snapshot,
    remove_snapshot,
    snapshot_files,
    write_snapshot,
)

if TYPE_CHECKING:
    from falsework.testing.upgrade import Upgrader

Verdict = Literal["passed", "failed", "broken"]


@dataclass(frozen=True)
class Options:
    patterns: tuple[str, ...] = ()
    update: bool = False
    ci: bool = False
    run_checks: bool = False


@dataclass
class Outcome:
    """One case's verdict, with its problems and what was written."""

    id: str
    template: str  # the template's ref
    verdict: Verdict
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "snapshot written"...
    seconds: float = 0.0
    where: Path | None = None
    result: Rendered | None = None
    unused: bool = False  # not a case: a snapshot folder no case uses


@dataclass
class Plan:
    """What a suite will run: its cases, what could not be read, unused snapshots."""

    cases: list[Case] = field(default_factory=list)
    broken: list[Broken] = field(default_factory=list)
    unused: list[tuple[str, str, Path]] = field(default_factory=list)  # id, template ref, folder
    untested: list[Path] = field(default_factory=list)  # template files without a case


def plan(paths: list[Path], patterns: tuple[str, ...] = ()) -> Plan:
    found = Plan()
    for item in discover(paths):
        if isinstance(item, Broken):
            found.broken.append(item)
            continue
        tests = item.directory / TESTS_DIR
        if not tests.is_dir() and not patterns:
            found.untested.append(item.path)
        if tests.is_dir():
            for folder in sorted(tests.iterdir()):
                snapshot = folder / SNAPSHOT_DIR
                if folder.is_dir() and not (folder / "values.yaml").is_file() and snapshot.exists():
                    case_id = f"{item.name}/{folder.name}"
                    if is_selected(case_id, list(patterns)):
                        found.unused.append((case_id, item.ref, snapshot))
        for case in cases_of(item):
            if not is_selected(case.id, list(patterns)):
                continue
            if isinstance(case, Broken):
                found.broken.append(case)
            else:
                found.cases.append(case)
    return found


async def run_case(
    case: Case, rehearser: Rehearser, options: Options, upgrader: Upgrader | None = None
) -> Outcome:
    """One case: rehearsed by ``rehearser``, or an upgrade case (``upgrade-from``)
    computed here by ``upgrader`` (whatever the rehearser: updates are computed
    on the machine that runs ``falsework update``)."""
    started = time.perf_counter()
    outcome = Outcome(case.id, case.template.ref, "passed", where=case.folder)
    try:
        if case.expect.upgrade_from is not None:
            from falsework.testing.upgrade import Upgrader  # (git and updates: only when used)

            own = upgrader or Upgrader()
            try:
                result = await own.upgrade(case)
            finally:
                if upgrader is None:
                    await own.aclose()
        else:
            result = await rehearse(case, rehearser)
        outcome.result = result
        outcome.problems = check_expectations(case, result)
        if not outcome.problems and options.run_checks:
            outcome.problems += await run_checks(case, result)
        outcome.problems += _snapshot(case, result, options, outcome.notes)
    except UsageError:
        raise
    except FalseworkError as exc:
        outcome.verdict = "broken"
        outcome.problems = [Problem("broken", exc.message)]
    except OSError as exc:
        outcome.verdict = "broken"
        outcome.problems = [Problem("broken", f"{exc.filename or ''}: {exc.strerror or exc}")]
    if outcome.verdict == "passed" and outcome.problems:
        outcome.verdict = "failed"
    outcome.seconds = time.perf_counter() - started
    return outcome


def _snapshot(case: Case, result: Rendered, options: Options, notes: list[str]) -> list[Problem]:
    folder = case.snapshot_dir
    if folder is None:
        return []
    stored = read_snapshot(folder)
    if not case.wants_snapshot:
        if stored is None:
            return []
        why = "an invalid case" if case.expect.status == "invalid" else "snapshot: false"
        if options.update:
            remove_snapshot(folder)
            notes.append(f"unused snapshot removed ({why})")
            return []
        if options.ci:
            return [Problem("unused snapshot", f"{folder} is not used ({why})")]
        notes.append(f"unused snapshot ({why}): --update removes it")
        return []
    actual = snapshot_files(result)
    if stored is None:
        if options.ci and not options.update:
            return [Problem("missing snapshot", f"{folder} does not exist (run without --ci)")]
        write_snapshot(folder, actual, None)
        notes.append(f"snapshot written ({len(actual)} files)")
        return []
    problems = compare(stored, actual)
    if problems and options.update:
        changed = write_snapshot(folder, actual, stored)
        notes.append(f"snapshot updated ({changed} change{'s' if changed != 1 else ''})")
        return []
    return problems


async def run_suite(
    found: Plan,
    rehearser: Rehearser,
    options: Options,
    *,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run the planned cases one after the other (each is CPU work here; a server
    limits each user's dry runs at once), then judge the unused snapshots."""
    outcomes: list[Outcome] = []
    upgrader: Upgrader | None = None

    def done(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    for broken in found.broken:
        done(
            Outcome(
                broken.id,
                broken.template,
                "broken",
                [Problem("broken", broken.message)],
                where=broken.where,
            )
        )
    try:
        for case in found.cases:
            if case.expect.upgrade_from is not None and upgrader is None:
                from falsework.testing.upgrade import Upgrader

                upgrader = Upgrader()  # shared by the suite's upgrade cases
            done(await run_case(case, rehearser, options, upgrader))
    finally:
        if upgrader is not None:
            await upgrader.aclose()
    for case_id, ref, folder in found.unused:
        outcome = Outcome(case_id, ref, "passed", where=folder.parent, unused=True)
        if options.update:
            remove_snapshot(folder)
            outcome.notes.append("unused snapshot removed (no values.yaml beside it)")
        elif options.ci:
            outcome.verdict = "failed"
            outcome.problems.append(
                Problem("unused snapshot", f"{folder} belongs to no case (no values.yaml)")
            )
        else:
            outcome.notes.append("unused snapshot (no values.yaml beside it)")
        done(outcome)
    return outcomes


def exit_code(outcomes: list[Outcome]) -> int:
    """0: every case passed; 1: some failed; 2: some could not be run."""
    if any(o.verdict == "broken" for o in outcomes):
        return 2
    if any(o.verdict == "failed" for o in outcomes):
        return 1
    return 0
