"""A case's ``expect.yaml``: status and error, an output subset, files absent,
``contains:`` regular expressions, and ``check:`` commands (``--run-checks``).

A check command runs in a temporary copy of the result written through
:class:`~falsework.confine.Tree` (no path, no link leaves it), with the case's
time limit, its own process group (killed whole at the limit), no standard
input and a minimal environment: the CI's tokens are not handed to it. The copy
is removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import fnmatch
import os
import re
import shlex
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import yaml

from falsework.confine import Tree
from falsework.testing.cases import Case, Check
from falsework.testing.rehearse import File, Rendered
from falsework.testing.snapshot import Problem

# What a check command sees of the environment (the rest stays out: tokens).
CHECK_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "VIRTUAL_ENV", "PYTHONPATH", "TZ")
MAX_CHECK_OUTPUT = 4_000


def check_expectations(case: Case, result: Rendered) -> list[Problem]:
    expect = case.expect
    problems = _status(case, result)
    if problems:
        return problems  # the rest is about a result that is not the one expected
    if result.update is not None and result.status == "completed":
        problems += _conflicts(case, result)
    if expect.output is not None:
        missing = _subset_problems(expect.output, result.output, "output")
        if missing:
            want = _yaml(expect.output)
            got = _yaml(_restricted(result.output, expect.output))
            diff = "".join(
                difflib.unified_diff(
                    want.splitlines(keepends=True),
                    got.splitlines(keepends=True),
                    fromfile="expect.yaml output",
                    tofile="result output",
                )
            )
            problems.append(Problem("output differs", "; ".join(missing), diff))
    for pattern in expect.absent:
        found = sorted(p for p in result.files if _glob(p, pattern))
        if found:
            problems.append(
                Problem("present", f"absent: {pattern!r} matches {', '.join(found[:10])}")
            )
    for path, patterns in expect.contains.items():
        file = result.files.get(path)
        if file is None:
            problems.append(Problem("missing file", f"contains: {path} is not in the result"))
            continue
        text = file.data.decode("utf-8", "replace")
        for pattern in patterns:
            try:
                if re.search(pattern, text, re.MULTILINE) is None:
                    problems.append(
                        Problem("contains", f"contains: {path} has no match for {pattern!r}")
                    )
            except re.error as exc:
                problems.append(Problem("contains", f"contains: {pattern!r} is not a regex: {exc}"))
    return problems


def _status(case: Case, result: Rendered) -> list[Problem]:
    expect = case.expect
    wanted = expect.error
    if result.status != expect.status:
        why = ""
        if result.invalid is not None:
            where = f"page {result.invalid.page}" if result.invalid.page else "the values"
            why = f": {where} refused: " + "; ".join(result.invalid.messages)
        elif result.error is not None and result.error.get("step") is None:
            why = f": {result.error.get('message')}"
        elif result.error is not None:
            why = f": step {result.error.get('step')} failed: {result.error.get('message')}"
        return [Problem("status", f"expected status {expect.status}, got {result.status}{why}")]
    if wanted is None:
        return []
    problems: list[Problem] = []
    if result.status == "invalid" and result.invalid is not None:
        invalid = result.invalid
        if wanted.page is not None and wanted.page != invalid.page:
            problems.append(
                Problem(
                    "validation",
                    f"expected page {wanted.page} to refuse the answers, page {invalid.page} did",
                )
            )
        if wanted.messages is not None and sorted(wanted.messages) != sorted(invalid.messages):
            diff = "".join(
                difflib.unified_diff(
                    [m + "\n" for m in sorted(wanted.messages)],
                    [m + "\n" for m in sorted(invalid.messages)],
                    fromfile="expect.yaml error.messages",
                    tofile="the form's messages",
                )
            )
            problems.append(Problem("validation message differs", "messages differ", diff))
        messages = invalid.messages
    else:
        error = result.error or {}
        if wanted.step is not None and wanted.step != error.get("step"):
            problems.append(
                Problem("error", f"expected step {wanted.step} to fail, {error.get('step')} did")
            )
        if wanted.name is not None and wanted.name != error.get("name"):
            problems.append(
                Problem("error", f"expected a {wanted.name}, got a {error.get('name')}")
            )
        messages = [str(error.get("message", ""))]
    if wanted.message is not None and wanted.message not in messages:
        diff = "".join(
            difflib.unified_diff(
                [wanted.message + "\n"],
                [m + "\n" for m in messages],
                fromfile="expect.yaml error.message",
                tofile="result",
            )
        )
        problems.append(Problem("error message differs", "the error message differs", diff))
    if wanted.match is not None and not any(re.search(wanted.match, m) for m in messages):
        problems.append(
            Problem("error message differs", f"no error message matches {wanted.match!r}")
        )
    return problems


def _conflicts(case: Case, result: Rendered) -> list[Problem]:
    """An upgrade case's conflicts against ``conflicts:`` (exactly those)."""
    assert result.update is not None
    found = {str(c["path"]): str(c["kind"]) for c in result.update.get("conflicts") or []}
    wanted = set(case.expect.conflicts)
    problems: list[Problem] = []
    for path in sorted(set(found) - wanted):
        file = result.files.get(path)
        markers = conflict_excerpt(file.data.decode("utf-8", "replace")) if file else ""
        shown = markers or (
            "(no conflict markers: one side deleted the file, the other changed it; the "
            "result keeps the changed one)\n"
            if file
            else "(no conflict markers; the file is not in the result)\n"
        )
        problems.append(
            Problem(
                "unexpected conflict",
                f"{path}: {found[path]} updating to the working copy",
                f"{path}:\n{shown}",
                path,
            )
        )
    for path in sorted(wanted - set(found)):
        problems.append(
            Problem("expected conflict", f"{path}: expected to conflict, merged cleanly", "", path)
        )
    return problems


def conflict_excerpt(text: str, context: int = 2, limit: int = 60) -> str:
    """The conflict-marked regions of ``text`` with ``context`` lines around
    each, numbered (at most ``limit`` lines)."""
    lines = text.splitlines()
    keep: set[int] = set()
    start: int | None = None
    for number, line in enumerate(lines):
        if line.startswith("<<<<<<< "):
            start = number
        elif line.startswith(">>>>>>> ") and start is not None:
            keep.update(range(max(0, start - context), min(len(lines), number + context + 1)))
            start = None
    shown: list[str] = []
    previous = -1
    for number in sorted(keep):
        if previous >= 0 and number != previous + 1:
            shown.append("...")
        shown.append(f"{number + 1:>5} | {lines[number]}")
        previous = number
    if len(shown) > limit:
        shown = [*shown[:limit], f"... {len(shown) - limit} more lines"]
    return "\n".join(shown) + ("\n" if shown else "")


def _subset_problems(want: Any, got: Any, where: str) -> list[str]:
    """Where ``want`` is not found in ``got`` (mappings by key, lists item by item)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{where}: expected a mapping, got {_short(got)}"]
        found: list[str] = []
        for key, value in want.items():
            if key not in got:
                found.append(f"{where}.{key}: missing")
            else:
                found.extend(_subset_problems(value, got[key], f"{where}.{key}"))
        return found
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{where}: expected {len(want)} items, got {_short(got)}"]
        return [
            p
            for i, (w, g) in enumerate(zip(want, got, strict=True))
            for p in _subset_problems(w, g, f"{where}[{i}]")
        ]
    return [] if want == got else [f"{where}: expected {_short(want)}, got {_short(got)}"]


def _restricted(got: Any, want: Any) -> Any:
    """``got`` cut to the keys ``want`` names (what the diff shows)."""
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: _restricted(got[k], want[k]) for k in want if k in got}
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [_restricted(g, w) for g, w in zip(got, want, strict=True)]
    return got


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _glob(path: str, pattern: str) -> bool:
    """``**`` spans folders; ``*`` and ``?`` do not."""
    return fnmatch.fnmatchcase(path, pattern) or (
        pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:])
    )


# ------------------------------------------------------------------ checks


async def run_checks(case: Case, result: Rendered) -> list[Problem]:
    """Run the case's ``check:`` commands in a copy of its result."""
    if not case.expect.check:
        return []
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="falsework-check-"))
    try:
        await asyncio.to_thread(_write_copy, folder / "result", result.files)
        problems: list[Problem] = []
        for check in case.expect.check:
            problem = await _run(check, folder / "result")
            if problem is not None:
                problems.append(problem)
        return problems
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


def _write_copy(root: Path, files: dict[str, File]) -> None:
    with Tree(root, where="the check's copy", create=True) as tree:
        for path, file in files.items():
            tree.write_bytes(path, file.data, mode=0o755 if file.executable else 0o644)


async def _run(check: Check, cwd: Path) -> Problem | None:
    try:
        argv = shlex.split(check.run)
    except ValueError as exc:
        return Problem("check", f"check {check.run!r}: {exc}")
    if not argv:
        return Problem("check", "check: an empty command")
    env = {k: os.environ[k] for k in CHECK_ENV if k in os.environ}
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Problem("check", f"check {check.run!r} could not start: {exc.strerror or exc}")
    try:
        out, _ = await asyncio.wait_for(process.communicate(), check.timeout)
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        return Problem("check", f"check {check.run!r} ran past its {check.timeout:g}s limit")
    finally:
        if process.returncode is None:
            _kill_group(process.pid)
            await process.wait()
    if process.returncode != 0:
        text = out.decode("utf-8", "replace")
        if len(text) > MAX_CHECK_OUTPUT:
            text = "...\n" + text[-MAX_CHECK_OUTPUT:]
        return Problem("check", f"check {check.run!r} exited with {process.returncode}", text)
    return None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
