"""An xdist worker's coverage written to its data file as the run goes.

pytest-cov's worker writes its data file once, at its session's end, and the
process that started the workers combines every data file in the folder. A
worker that dies (a test past its timeout, ``os._exit``, a crash: xdist's "node
down") never reaches that end, so the lines of every test it had run were lost
and one dead worker could pull the total under the Makefile's
``--cov-fail-under``, though the test it died on passed when run again. Here a
worker writes what it has measured so far (``Coverage.save``, which coverage
supports while measuring) after a test, at most every ``INTERVAL_S`` seconds:
a dead worker loses at most that interval's lines. The combine at the end
already takes its file, whatever became of the worker, as long as nobody erased
it: pytest-cov erases every data file in the folder when a process of the run
starts unless ``--cov-append`` is given, and xdist starts a new worker in place
of a dead one, so the Makefile passes ``--cov-append`` and erases the data
before the run instead (tests/integration/test_cov_save.py).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

INTERVAL = "FALSEWORK_TEST_COV_SAVE_S"  # seconds between two writes; 0 writes after every test
INTERVAL_S = 20.0


class Saver:
    def __init__(self, config: pytest.Config, interval: float) -> None:
        self._config = config
        self._interval = interval
        self._last = time.monotonic()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str, location: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        coverage = _worker_coverage(self._config)
        if coverage is not None:
            coverage.save()
        self._last = time.monotonic()


def _worker_coverage(config: pytest.Config) -> Any:
    """The coverage object of pytest-cov's worker controller, once it has started
    (at the worker's session start); None without ``--cov``."""
    plugin = config.pluginmanager.get_plugin("_cov")
    controller = getattr(plugin, "cov_controller", None)
    return getattr(controller, "cov", None)


def register(config: pytest.Config) -> None:
    """In an xdist worker of a run with coverage; elsewhere nothing to do."""
    if not hasattr(config, "workerinput") or config.pluginmanager.get_plugin("_cov") is None:
        return
    interval = float(os.environ.get(INTERVAL, INTERVAL_S))
    config.pluginmanager.register(Saver(config, interval), "falsework-cov-save")
