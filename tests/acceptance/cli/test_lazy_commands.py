"""``falsework`` imports a command's module only when that command runs: the
listing comes from ``cli.main.COMMANDS``, which must stay true to the commands."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from falsework.cli import main as cli_main
from support.paths import EXAMPLES
from support.serve import clean_env

CLI = Path(cli_main.__file__).parent
HEAVY = ("fastapi", "sqlalchemy", "asyncpg", "aiosqlite", "jinja2", "httpx", "uvicorn")


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


@pytest.mark.parametrize("name", list(cli_main.COMMANDS))
def test_the_listing_says_what_the_command_says(name: str) -> None:
    command = cli_main.load(name)
    assert command.name == name
    assert _first_paragraph(command.help or "") == cli_main.COMMANDS[name][1]


def test_every_module_that_registers_commands_is_listed() -> None:
    listed = {module for module, _ in cli_main.COMMANDS.values()}
    for path in CLI.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        registers = any(
            isinstance(node, ast.FunctionDef) and node.name == "register" for node in tree.body
        )
        # templates_test registers under `templates` (templates.register calls it)
        if registers and path.stem != "templates_test":
            assert f"falsework.cli.{path.stem}" in listed, f"{path.name} is not in COMMANDS"


def test_help_lists_every_command_without_importing_the_stack() -> None:
    probe = (
        "import json, sys\n"
        "from falsework.cli.main import main\n"
        "sys.argv = ['falsework', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    help_text, _, modules_line = done.stdout.rstrip().rpartition("\n")
    modules = json.loads(modules_line)
    for name, (_, short) in cli_main.COMMANDS.items():
        assert f"  {name} " in help_text
        assert short.split()[0] in help_text
    loaded = [m for m in modules if m.split(".")[0] in HEAVY or m.startswith("falsework.engine")]
    assert loaded == []
    assert not [m for m in modules if m.startswith("falsework.cli.") and m != "falsework.cli.main"]


def test_a_command_runs_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    env_cmd = [sys.executable, "-m", "falsework.cli.main"]
    listing = subprocess.run(
        [*env_cmd, "actions", "ls"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert listing.returncode == 0, listing.stderr
    assert "fetch:template" in listing.stdout
    wrong = subprocess.run(
        [*env_cmd, "nope"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert wrong.returncode == 2
    assert "No such command 'nope'" in wrong.stderr


def test_run_help_prints_brackets_as_text() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "falsework.cli.main", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "gh:OWNER/REPO[/PATH][@REF]" in " ".join(done.stdout.split())


def test_run_of_a_debug_template_imports_no_forge_client_nor_server(tmp_path: Path) -> None:
    hello = EXAMPLES / "hello-world"
    out = tmp_path / "out"
    probe = (
        "import json, sys\n"
        "from falsework.cli.main import main\n"
        f"sys.argv = ['falsework', 'run', {str(hello)!r}, '--set', 'name=x', '-o', {str(out)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        # no FALSEWORK_* of this run's own (FALSEWORK_TEST_DURATIONS…): with one that is
        # no setting, `run` rightly falls back to the full Settings
        env=clean_env(),
    )
    code, modules = json.loads(done.stdout.rstrip().rpartition("\n")[2])
    assert code == 0, done.stderr
    assert "Hello, x!" in done.stdout
    tops = {m.split(".")[0] for m in modules}
    heavy = {"githubkit", "httpx", "httpcore", "regex", "fastapi", "uvicorn", "sqlalchemy"}
    assert not tops & heavy
    # its settings are read without pydantic-settings (falsework.localconfig), its
    # plain parameter schema checked without jsonschema (templates.plainschema)
    assert not tops & {"pydantic_settings", "jsonschema", "falsework.config"}
    assert "falsework.config" not in modules
    assert "falsework.actions.builtin.debug" in modules
    families = [m for m in modules if m.startswith("falsework.actions.builtin.")]
    assert families == ["falsework.actions.builtin.debug"]
    assert not [m for m in modules if m.startswith(("falsework.engine", "falsework.api"))]
