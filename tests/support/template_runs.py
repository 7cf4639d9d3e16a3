"""Running `falsework templates test` in-process, for the tests of this folder."""

from __future__ import annotations

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
