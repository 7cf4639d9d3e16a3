"""A real xdist worker that dies mid-run keeps the coverage of the tests it ran
before (tests/support/cov_save.py, as tests/conftest.py installs it), and the
worker that replaces it erases nobody's data (the Makefile's ``--cov-append``),
so a dead worker no longer takes the total below the Makefile's gate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import coverage

from support.paths import TESTS

MODULE = "def a():\n    return 1\ndef b():\n    return 2\ndef c():\n    return 3\n"
DEFS = {1, 3, 5}  # measured by every worker that imports mod (its tests' collection)
A_BODY, C_BODY = 2, 6  # the return lines of a() and c(); b()'s (4) is never run

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import pytest
from support import cov_save
from support.xdist_crash import make_scheduler

def pytest_configure(config):
    if {{saver}}:
        cov_save.register(config)

@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return make_scheduler(config, log)
"""

FILES = {
    "mod.py": MODULE,
    # a() runs only in the worker that then dies
    "test_a.py": (
        "import os\nimport mod\ndef test_a(): assert mod.a() == 1\ndef test_dies(): os._exit(1)\n"
    ),
    "test_c.py": "import mod\ndef test_c(): assert mod.c() == 3\n",
}


def covered_lines(folder: Path, *, saver: bool) -> set[int]:
    """Run the files on two workers with coverage of ``mod``; the lines of mod.py
    in the combined data file."""
    (folder / "conftest.py").write_text(CONFTEST.replace("{saver}", str(saver)))
    for name, text in FILES.items():
        (folder / name).write_text(text)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE", "COVERAGE"))
    }
    env["FALSEWORK_TEST_COV_SAVE_S"] = "0"  # after every test
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile"]
    command += ["-p", "no:cacheprovider", "-o", "addopts=", "--cov=mod", "--cov-report="]
    command += ["--cov-append"]  # as the Makefile's COV
    done = subprocess.run(
        command,
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert "crashed while running 'test_a.py::test_dies'" in done.stdout, done.stdout
    assert "1 failed, 2 passed" in done.stdout, done.stdout
    data = coverage.CoverageData(basename=str(folder / ".coverage"))
    data.read()
    return set(data.lines(str(folder / "mod.py")) or [])


def test_a_dead_workers_lines_are_in_the_total(tmp_path: Path) -> None:
    """test_c's worker wrote its file before the replacement started, test_a's
    before it died: both are combined."""
    lines = covered_lines(tmp_path, saver=True)
    assert DEFS | {A_BODY, C_BODY} == lines


def test_without_the_saver_a_dead_worker_loses_its_lines(tmp_path: Path) -> None:
    """The case the saver is for: pytest-cov alone drops the dead worker's data."""
    lines = covered_lines(tmp_path, saver=False)
    assert DEFS <= lines  # the live workers' data is there (test_c may have died with A)
    assert A_BODY not in lines
