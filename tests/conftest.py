"""Fixtures shared by every test module.

``database_url`` is parametrised over a fresh SQLite file and a fresh PostgreSQL
database (each a copy of a migrated template made once per session; the Postgres
one dropped after the test), so every engine test runs on both.
Postgres databases come from tests/support/postgres.py (FALSEWORK_TEST_DATABASE_URL;
unreachable is a failure, never a skip).
The files run longest first (tests/support/durations.py), and
FALSEWORK_TEST_DURATIONS=<file> records each file's time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support import cov_save, durations
from support.postgres import create_database, drop_database, fresh_database, url_of
from support.sqlite import copy_database


def pytest_configure(config: pytest.Config) -> None:
    recorded = os.environ.get(durations.RECORD)
    if recorded:
        config.pluginmanager.register(durations.Recorder(Path(recorded)), "falsework-durations")
    cov_save.register(config)  # a worker that dies keeps its coverage (tests/support/cov_save.py)
    if not hasattr(config, "workerinput"):  # once, in the process that starts the others
        _byte_compile()


def _byte_compile() -> None:
    """Compile falsework's modules to byte code once, for every process the tests
    start (`falsework serve`, the CLI, xdist's workers): with PYTHONDONTWRITEBYTECODE
    set no process writes what it compiled, so each compiled every module it imports
    again (0.1-0.2 s of CPU per process). Reading .pyc files is not affected."""
    import compileall

    import falsework

    compileall.compile_dir(Path(falsework.__file__).parent, quiet=2)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under xdist, a failure's report as soon as it arrives (the summary comes
    only at the end, and a run stopped before its end, as by CI's time limit,
    would print none): the test and the last lines of its report; a failure
    that is run again (the Makefile's RERUNS) too, which the summary names only."""
    if _TERMINAL is None or not (report.failed or report.outcome == "rerun"):
        return
    lines = str(report.longrepr).splitlines()[-_SHOWN_LINES:]
    kind = "FAILED" if report.failed else "FAILED, TO RUN AGAIN"
    _TERMINAL.write_line("")
    _TERMINAL.write_sep("!", f"{kind} ({report.when}) {report.nodeid}", red=True)
    for line in lines:
        _TERMINAL.write_line(line)
    _TERMINAL.write_sep("!", red=True)


_SHOWN_LINES = 40
_TERMINAL: pytest.TerminalReporter | None = None


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Failures are shown at once in the process that starts xdist's workers."""
    global _TERMINAL
    config = session.config
    if not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("dsession"):
        _TERMINAL = config.pluginmanager.get_plugin("terminalreporter")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`make test`'s ``--dist loadfile``, made to survive a worker that dies
    (tests/support/xdist_crash.py)."""
    from support.xdist_crash import make_scheduler

    return make_scheduler(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first (tests/support/durations.py: the two workers of
    `make test` then finish together)."""
    items[:] = durations.longest_first(items, durations.read())


def _migrate(url: str) -> None:
    """Create the engine's tables in ``url`` (on a thread of its own: no test's
    event loop is disturbed)."""
    import asyncio

    from falsework.engine.factory import open_store

    async def main() -> None:
        store = await open_store(url)
        try:
            await store.migrate()
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per test session; each test's database is a copy."""
    name = create_database("fw_tpl")
    try:
        _migrate(url_of(name))
        yield name
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per test session; each test's file is a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "falsework.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A new PostgreSQL database for this test, already migrated: a copy of the
    session's template (CREATE DATABASE … TEMPLATE), not a migration per test."""
    with fresh_database("fw_t", template=postgres_template) as url:
        yield url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A new SQLite database file for this test, already migrated: a copy of the
    session's template, not a migration per test."""
    return copy_database(sqlite_template, tmp_path / "falsework.db")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each dialect: every engine test runs on both."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))
