"""Running `falsework templates test` in-process, and pytest in a temporary
project (the plugin as a team uses it), for the tests of this folder."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from falsework.cli.main import app


@dataclass
class Run:
    code: int
    out: str


def run_cli(*args: str | Path) -> Run:
    result = CliRunner().invoke(app, ["templates", "test", *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.output)


def run_pytest(project: Path, name: str, tests: str) -> Run:
    """Write ``tests`` as ``project/name`` and run pytest on it there."""
    (project / name).write_text(tests)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(done.returncode, done.stdout + done.stderr)
