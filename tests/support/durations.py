"""The suite's files, longest first, so that pytest-xdist's workers finish together.

`make test` hands out whole files (``--dist loadfile``) in collection order
(``--no-loadscope-reorder``: xdist's own order, most tests first, left the few long
files of few tests — the chaos scenarios, the backups, the failover, the image —
to the end, one worker running them while the other idled for minutes). Sorting
the files by their measured time, longest first, is the classic greedy schedule:
whatever remains at the end is short.

``durations.json`` beside this module holds each file's seconds, from a run
recorded with ``FALSEWORK_TEST_DURATIONS=tests/support/durations.json``. Only the
order follows from it: a stale or missing figure costs time, never a test. A file
it does not know counts its tests at its tier's mean time per test.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
RECORD = "FALSEWORK_TEST_DURATIONS"


class Identified(Protocol):
    @property
    def nodeid(self) -> str: ...


Item = TypeVar("Item", bound=Identified)


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def tier_of(path: str) -> str:
    parts = path.split("/")
    return parts[1] if len(parts) > 2 else ""


def read(path: Path = DURATIONS) -> dict[str, dict[str, float]]:
    """File → {"seconds", "tests"}, or nothing when the file is absent."""
    if not path.is_file():
        return {}
    data: dict[str, dict[str, float]] = json.loads(path.read_text())
    return data


def costs(counts: dict[str, int], known: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each collected file's expected seconds: measured, or its test count times
    its tier's mean seconds per test."""
    seconds: dict[str, float] = defaultdict(float)
    tests: dict[str, float] = defaultdict(float)
    for path, figures in known.items():
        seconds[tier_of(path)] += figures["seconds"]
        tests[tier_of(path)] += figures["tests"]
    every = sum(seconds.values()) / max(sum(tests.values()), 1)
    mean = {tier: seconds[tier] / tests[tier] for tier in seconds if tests[tier]}
    return {
        path: known[path]["seconds"]
        if path in known
        else count * mean.get(tier_of(path), every or 1.0)
        for path, count in counts.items()
    }


def longest_first(items: list[Item], known: dict[str, dict[str, float]]) -> list[Item]:
    """``items`` with their files in descending expected time; a file's own tests
    keep their order (a stable sort), and so do files of equal cost."""
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[file_of(item.nodeid)] += 1
    expected = costs(counts, known)
    return sorted(items, key=lambda item: -expected[file_of(item.nodeid)])


class Recorder:
    """Sums each file's setup, call and teardown time (on the controller, which
    sees every worker's reports) and writes them at the end of the session."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = defaultdict(float)
        self.tests: dict[str, set[str]] = defaultdict(set)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = file_of(report.nodeid)
        self.seconds[path] += report.duration
        self.tests[path].add(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if os.environ.get("PYTEST_XDIST_WORKER") or not self.seconds:
            return
        lines = [  # one file a line: a new recording diffs file by file
            f" {json.dumps(path)}: "
            + json.dumps({"seconds": round(seconds, 2), "tests": len(self.tests[path])})
            for path, seconds in sorted(self.seconds.items())
        ]
        self.path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
