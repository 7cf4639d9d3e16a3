"""`make test` runs the example templates' own cases, as a template repository's
CI would: a real `falsework templates test --ci` process, output to a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from falsework.config import EXAMPLES_DIR

FALSEWORK = Path(sys.executable).with_name("falsework")


def test_the_example_templates_pass_their_cases_in_ci(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    done = subprocess.run(
        [str(FALSEWORK), "templates", "test", str(EXAMPLES_DIR), "--ci", "--run-checks",
         "--junit", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # one line per case, a summary; plain text on a pipe
    assert sum(line.startswith("PASS ") for line in lines) >= 10
    for template in ("fail", "hello-world", "python-service", "wait"):
        assert any(line.startswith(f"PASS   {template}/") for line in lines), template
    assert lines[-1].startswith("cases: ") and "failed" not in lines[-1]
    assert "\x1b[" not in done.stdout
    assert 'failures="0" errors="0"' in report.read_text()
