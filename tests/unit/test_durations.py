"""The order `make test` hands files to its workers (tests/support/durations.py):
longest first by the recorded seconds, a file's tests together and in their order,
a file never recorded costed at its tier's mean per test; and the recording, read
back, gives that order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from support import durations


@dataclass(frozen=True)
class Node:
    nodeid: str


def files(items: list[Node]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if durations.file_of(item.nodeid) not in seen:
            seen.append(durations.file_of(item.nodeid))
    return seen


KNOWN = {
    "tests/unit/test_a.py": {"seconds": 1.0, "tests": 100},  # 0.01 s a test
    "tests/acceptance/test_slow.py": {"seconds": 300.0, "tests": 3},  # 100 s a test
    "tests/acceptance/test_quick.py": {"seconds": 30.0, "tests": 3},
}


def test_the_longest_files_go_first_and_keep_their_tests_in_order() -> None:
    items = [
        Node("tests/unit/test_a.py::test_1"),
        Node("tests/unit/test_a.py::test_2"),
        Node("tests/acceptance/test_quick.py::test_1"),
        Node("tests/acceptance/test_slow.py::test_1[sqlite]"),
        Node("tests/acceptance/test_slow.py::test_1[postgres]"),
    ]
    ordered = durations.longest_first(items, KNOWN)
    assert files(ordered) == [
        "tests/acceptance/test_slow.py",
        "tests/acceptance/test_quick.py",
        "tests/unit/test_a.py",
    ]
    assert [i.nodeid for i in ordered if "test_slow" in i.nodeid] == [
        "tests/acceptance/test_slow.py::test_1[sqlite]",
        "tests/acceptance/test_slow.py::test_1[postgres]",
    ]
    assert sorted(ordered, key=lambda i: i.nodeid) == sorted(items, key=lambda i: i.nodeid)


def test_an_unrecorded_file_costs_its_tests_at_its_tiers_mean() -> None:
    expected = durations.costs(
        {"tests/acceptance/test_new.py": 2, "tests/unit/test_new.py": 2, "tests/x.py": 1},
        KNOWN,
    )
    assert expected["tests/acceptance/test_new.py"] == pytest.approx(2 * 330 / 6)
    assert expected["tests/unit/test_new.py"] == pytest.approx(2 * 0.01)
    assert expected["tests/x.py"] == pytest.approx(331 / 106)  # no tier: the suite's mean
    # so a new acceptance file of two tests goes before the recorded quick one
    items = [Node("tests/acceptance/test_quick.py::t"), Node("tests/acceptance/test_new.py::t")]
    assert files(durations.longest_first(items, KNOWN))[0] == "tests/acceptance/test_new.py"


def test_nothing_recorded_keeps_the_collection_order(tmp_path: Path) -> None:
    known = durations.read(tmp_path / "absent.json")
    assert known == {}
    items = [Node("tests/unit/test_b.py::t"), Node("tests/acceptance/test_c.py::t")]
    assert durations.longest_first(items, known) == items


@dataclass
class Report:
    nodeid: str
    duration: float


def test_a_recording_reads_back_as_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the controller writes
    out = tmp_path / "durations.json"
    recorder = durations.Recorder(out)
    for nodeid, when in [("tests/unit/test_a.py::t", 0.5), ("tests/unit/test_b.py::t", 2.0)]:
        for phase in (when, 0.25, 0.25):  # setup, call, teardown
            recorder.pytest_runtest_logreport(Report(nodeid, phase))  # type: ignore[arg-type]
    recorder.pytest_sessionfinish(None)  # type: ignore[arg-type]
    known = durations.read(out)
    assert known == {
        "tests/unit/test_a.py": {"seconds": 1.0, "tests": 1},
        "tests/unit/test_b.py": {"seconds": 2.5, "tests": 1},
    }
    items = [Node("tests/unit/test_a.py::t"), Node("tests/unit/test_b.py::t")]
    assert files(durations.longest_first(items, known)) == [
        "tests/unit/test_b.py",
        "tests/unit/test_a.py",
    ]
