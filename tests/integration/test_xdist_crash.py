"""A real xdist worker that dies mid-run under ``--dist loadfile``: the test it
died on fails, the run ends, every other test passes once (the scheduler of
tests/support/xdist_crash.py, as tests/conftest.py installs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.paths import TESTS

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import pytest
from support.xdist_crash import make_scheduler

@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return make_scheduler(config, log)
"""

FILES = {
    # finished by the worker that dies later: must not be handed out again empty
    "test_a.py": "def test_a1(): pass\ndef test_a2(): pass\ndef test_a3(): pass\n",
    "test_b.py": (
        "import os\n"
        "from pathlib import Path\n"
        "def test_b_before(): pass\n"
        "def test_b_dies():\n"
        "    mark = Path(os.environ['DIED_ONCE'])\n"
        "    if not mark.exists() or os.environ.get('DIE_ALWAYS'):\n"
        "        mark.touch()\n"
        "        os._exit(1)\n"
        "def test_b_after(): pass\n"
    ),
    "test_c.py": "def test_c_alone(): pass\n",  # a one-test file for the replacement
    "test_d.py": "def test_d1(): pass\ndef test_d2(): pass\n",
    "test_e.py": "def test_e1(): pass\n",
}
TESTS_RUN = [
    "test_a.py::test_a1", "test_a.py::test_a2", "test_a.py::test_a3",
    "test_b.py::test_b_before", "test_b.py::test_b_after", "test_c.py::test_c_alone",
    "test_d.py::test_d1", "test_d.py::test_d2", "test_e.py::test_e1",
]  # fmt: skip


def run_suite(folder: Path, reruns: int, *, die_always: bool) -> str:
    (folder / "conftest.py").write_text(CONFTEST)
    for name, text in FILES.items():
        (folder / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["DIED_ONCE"] = str(folder / "died-once")
    if die_always:
        env["DIE_ALWAYS"] = "1"
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile"]
    command += ["-p", "no:cacheprovider", "-o", "addopts=", "--reruns", str(reruns), "-rA"]
    done = subprocess.run(
        [*command, str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,  # xdist's own scheduler can hang after a crash
    )
    return done.stdout


def passed(out: str) -> list[str]:
    return sorted(line.split()[1] for line in out.splitlines() if line.startswith("PASSED "))


def test_a_worker_dying_fails_its_test_and_the_run_ends(tmp_path: Path) -> None:
    out = run_suite(tmp_path, 0, die_always=True)
    assert "crashed while running 'test_b.py::test_b_dies'" in out, out
    assert passed(out) == sorted(TESTS_RUN), out
    assert "1 failed, 9 passed" in out, out


def test_the_test_a_worker_died_on_runs_once_more_with_reruns(tmp_path: Path) -> None:
    out = run_suite(tmp_path, 1, die_always=False)
    assert passed(out) == sorted([*TESTS_RUN, "test_b.py::test_b_dies"]), out
    assert "10 passed, 1 rerun" in out, out


def test_a_test_that_kills_its_worker_twice_fails_the_run(tmp_path: Path) -> None:
    out = run_suite(tmp_path, 1, die_always=True)
    assert passed(out) == sorted(TESTS_RUN), out
    assert "1 failed, 9 passed, 1 rerun" in out, out
