"""Fault scenarios on real ``falsework serve`` / ``falsework worker`` processes and
a real (private) Postgres, each counted from the recorder's append-only file and
the database (tests/support/faultlab.py): nothing lost, nothing failed by the
fault, no two runs of a task at once, no event twice, side effects repeated only
by runs in flight at the fault, and the tasks held running again within the
stale timeout + 5 s (locks included)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.faultlab import SCENARIOS, TEST, Lab, lab

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


@pytest.fixture
def fresh_lab() -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="fw-lab-"))
    root.chmod(0o755)  # the postgres user walks into it
    try:
        with lab(root / "lab", TEST) as made:
            yield made
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str, fresh_lab: Lab) -> None:
    figures = SCENARIOS[name](fresh_lab)
    print(figures.row())  # the figures, for whoever reads the test's output
    report = f"{figures.row()}\n{fresh_lab.logs()}"
    assert figures.lost == 0, report
    assert figures.failed == 0, report
    assert figures.overlapping == 0, report
    assert figures.duplicate_events == 0, report
    assert figures.repeated_effects <= figures.in_flight, report
    assert figures.recovery_s is not None
    assert figures.recovery_s <= TEST.stale + 5, report
