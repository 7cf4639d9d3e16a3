"""`falsework run` off a terminal goes through ``cli/quickrun.py`` (no Typer,
Click or Rich): the same words on stdout and stderr, the same exit code and the
same files as the Typer command, which reads anything the quick door declines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from falsework.cli import main as cli_main
from falsework.cli.quickrun import Args, parse
from support.paths import EXAMPLES
from support.serve import clean_env

HELLO = EXAMPLES / "hello-world"
HEAVY = ("typer", "click", "rich", "pydantic_settings")

# Run the command through one front door; the modules imported go to MODULES_TO.
PROBE = """
import json, os, sys
from falsework.cli import main as cli
sys.argv = ['falsework', *json.loads(os.environ['ARGV'])]
try:
    cli.main() if os.environ['DOOR'] == 'quick' else cli.app()
finally:
    with open(os.environ['MODULES_TO'], 'w') as f:
        json.dump(sorted(sys.modules), f)
"""

MESSAGES = [
    "plain",
    "trailing spaces   ",
    "",
    "a\ttab",
    "ends in a line break\n",
    "two\nlines\n\n",
    "\x1b[1mbold\x1b[0m and \x1b[31mred\x1b[39m",
    "\x1b]8;;https://example.com\x1b\\a link\x1b]8;;\x1b\\",
    "bell\x07 and cr\r here",
    "[bold]not markup[/bold] :smile:",
    "unicode: é ✓ 漢字 \u00a0nbsp",
]


def _template(root: Path) -> Path:
    steps: list[dict[str, Any]] = [
        {"id": f"s{i}", "name": f"Step {i}", "action": "debug:log", "input": {"message": m}}
        for i, m in enumerate(MESSAGES)
    ]
    steps.append(
        {
            "id": "fetch",
            "name": "Fetch",
            "action": "fetch:plain",
            "input": {"url": "./skeleton"},
        }
    )
    doc = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "echo"},
        "spec": {
            "parameters": [
                {
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
                }
            ],
            "steps": steps,
            "output": {
                "links": [{"title": "Home [x]", "url": "https://e.com/${{ parameters.name }}"}],
                "text": [{"title": "Said", "content": "${{ parameters.name }}\tend"}],
            },
        },
    }
    folder = root / "echo"
    (folder / "skeleton").mkdir(parents=True)
    (folder / "skeleton" / "a.txt").write_text("a\n")
    (folder / "template.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def _both(argv: list[str], cwd: Path) -> dict[str, Any]:
    """What each door printed and returned, and the files it wrote under out/."""
    seen: dict[str, Any] = {}
    for door in ("quick", "typer"):
        shutil.rmtree(cwd / "out", ignore_errors=True)
        # no FALSEWORK_* of the test run's own (FALSEWORK_TEST_DURATIONS when the
        # durations are recorded): with one that is no setting, `run` rightly reads
        # the full Settings, and the quick door's imports are not what is compared
        env = {**clean_env(), "ARGV": json.dumps(argv), "DOOR": door}
        env["MODULES_TO"] = str(cwd / f"modules-{door}.json")
        env["FALSEWORK_DATA_DIR"] = str(cwd / ".fw")
        for name in ("FALSEWORK_CONFIG", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            env.pop(name, None)
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        out = cwd / "out"
        files = {
            str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
        }
        modules = json.loads((cwd / f"modules-{door}.json").read_text())
        seen[door] = (done.returncode, done.stdout, done.stderr, files, modules)
    return seen


def _same(seen: dict[str, Any], *, typer: bool = False, rich: bool = False) -> tuple[int, str, str]:
    """The quick door's exit code, stdout and stderr, the same as Typer's; it
    imported Typer only when it declined, Rich only for a line with a tab, a
    bell or an escape other than a colour."""
    quick = seen["quick"]
    assert quick[:4] == seen["typer"][:4]
    allowed = {"rich"} if rich else set()
    heavy = [m for m in quick[4] if m.split(".")[0] in set(HEAVY) - allowed]
    if not typer:
        assert heavy == []
    return quick[0], quick[1], quick[2]


def test_hello_world_prints_and_writes_the_same(tmp_path: Path) -> None:
    seen = _both(["run", str(HELLO), "--set", "name=x", "-o", "out"], tmp_path)
    code, out, _ = _same(seen)
    assert code == 0 and "Hello, x!" in out and "Done." in out


def test_every_kind_of_log_line_prints_the_same(tmp_path: Path) -> None:
    folder = _template(tmp_path)
    seen = _both(["run", str(folder), "--set=name=ab", "--set", "n=3", "-oout"], tmp_path)
    code, out, _ = _same(seen, rich=True)
    assert code == 0, seen["quick"][2]
    assert "not markup" in out and "bold and red" in out and "\x1b" not in out
    assert seen["quick"][3] == {"a.txt": b"a\n"}


def test_a_dry_run_prints_the_same(tmp_path: Path) -> None:
    folder = _template(tmp_path)
    code, out, _ = _same(
        _both(["run", str(folder), "--set", "name=ab", "--dry-run"], tmp_path), rich=True
    )
    assert code == 0 and "Files:" in out


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--set", "n=3"], 2),  # the required name missing
        (["--set", "name=a", "--set", "n=notanumber"], 2),
        (["--set", "noequals"], 2),
        (["--set", "name=a", "--secret", "novalue"], 2),
        (["--set", "name=a", "--values", "missing.yaml"], 2),
    ],
)
def test_errors_print_the_same(tmp_path: Path, argv: list[str], code: int) -> None:
    folder = _template(tmp_path)
    got, _, err = _same(_both(["run", str(folder), *argv], tmp_path))
    assert got == code and err


def test_a_failed_step_and_an_unknown_template_print_the_same(tmp_path: Path) -> None:
    folder = _template(tmp_path)
    shutil.rmtree(folder / "skeleton")
    got, _, err = _same(_both(["run", str(folder), "--set", "name=a"], tmp_path), rich=True)
    assert got == 1 and "Failed:" in err
    got, _, err = _same(_both(["run", "template:default/nope"], tmp_path))
    assert got == 2 and "not found" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--nope", "x"],
        ["x", "y"],
        [],
        ["x", "--set"],
        ["x", "-o", "--dry-run"],
        ["x", "--dry-run=1"],
        ["x", "--", "y"],
        ["-", "--set", "a=b"],
        ["x", "-v"],
    ],
)
def test_what_the_quick_door_declines_typer_reads(tmp_path: Path, argv: list[str]) -> None:
    assert parse(argv) is None
    seen = _both(["run", *argv], tmp_path)
    _same(seen, typer=True)


@pytest.mark.parametrize(
    "argv",
    [
        ["tpl"],
        ["tpl", "--set", "a=1", "--set=b=2", "--secret", "T=x", "--secret=U=y"],
        ["--values", "v.yaml", "tpl", "--output", "o1", "-o", "o2"],
        ["tpl", "-oo3", "--output=o4", "--dry-run", "--defaults"],
        ["tpl", "-o=o5", "--values=w.yaml", "--values", "z.yaml"],
        ["", "--set", "a="],
    ],
)
def test_the_quick_door_reads_arguments_as_click_does(argv: list[str]) -> None:
    args = parse(argv)
    assert isinstance(args, Args)
    params = cli_main.load("run").make_context("run", list(argv)).params
    assert params["template"] == args.template
    assert (params["sets"] or []) == args.sets
    assert (params["secrets"] or []) == args.secrets
    assert params["values_file"] == args.values_file
    assert params["output"] == args.output
    assert params["dry_run"] == args.dry_run
