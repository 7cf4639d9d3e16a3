"""A bad ``FALSEWORK_*`` value is one clear line, the same under ``falsework
serve`` (pydantic-settings) and ``falsework run`` (the settings read without
pydantic, which leave what they do not take to Settings): the setting, what is
wrong and the value given; no traceback, no pydantic links, exit 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from falsework.cli.main import app
from falsework.config import EXAMPLES_DIR

HELLO = str(EXAMPLES_DIR / "hello-world")

CASES = {
    "FALSEWORK_MAX_EACH=0": "max_each: input should be greater than or equal to 1 (given '0')",
    "FALSEWORK_RENDER_TIMEOUT=abc": "render_timeout: input should be a valid number",
    "FALSEWORK_LOG_FORMAT=xml": "log_format: input should be 'text' or 'json' (given 'xml')",
    "FALSEWORK_CONCURRENCY=-1": "concurrency: input should be greater than or equal to 0",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No other FALSEWORK_* variable (run's own reader then takes the environment),
    no ./falsework.yaml."""
    for key in list(os.environ):
        if key.lower().startswith("falsework_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _invoke(args: list[str], variable: str) -> tuple[int, list[str]]:
    name, _, value = variable.partition("=")
    result = CliRunner().invoke(app, args, env={name: value})
    return result.exit_code, result.output.splitlines()


@pytest.mark.parametrize("variable", sorted(CASES))
@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_bad_variable_is_one_line(command: str, variable: str, tmp_path: Path) -> None:
    args = ["serve", "--port", "0"] if command == "serve" else ["run", HELLO, "-o", "out"]
    code, lines = _invoke(args, variable)
    assert code == 2, lines
    assert len(lines) == 1, lines
    prefix = "error: " if command == "serve" else "Error: "
    assert lines[0].startswith(f"{prefix}invalid settings: {CASES[variable]}"), lines
    assert "pydantic" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_both_commands_say_the_same() -> None:
    variable = "FALSEWORK_MAX_TASK_LOG=10"
    _, served = _invoke(["serve", "--port", "0"], variable)
    _, ran = _invoke(["run", HELLO, "-o", "out"], variable)
    assert served[0].removeprefix("error: ") == ran[0].removeprefix("Error: ")


def test_a_secret_setting_is_not_repeated() -> None:
    code, lines = _invoke(
        ["serve", "--port", "0"], 'FALSEWORK_INTEGRATIONS={"git": [{"host": "h"}]}'
    )
    assert code == 2
    assert lines == [
        "error: invalid settings: integrations.git host 'h': give token_env or token "
        "(http/https) or ssh_key_file (ssh)"
    ]


@pytest.mark.parametrize("args", [["templates", "ls"], ["workers", "ls"], ["db", "upgrade"]])
def test_every_command_says_it_in_one_line(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that reads the settings without its own handling of the error
    (falsework.cli.main catches it for them)."""
    from falsework.cli.main import main

    monkeypatch.setenv("FALSEWORK_MAX_EACH", "0")
    monkeypatch.setattr(sys, "argv", ["falsework", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: invalid settings: {CASES['FALSEWORK_MAX_EACH=0']}"]
