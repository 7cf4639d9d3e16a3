"""The pytest plugin, used as a template team would: a real pytest run in a
temporary project that asserts on `render_template`'s result."""

from __future__ import annotations

import shutil
from pathlib import Path

from falsework.config import EXAMPLES_DIR
from support.template_runs import run_pytest

TESTS = """
import pytest


def test_a_service(render_template):
    result = render_template(
        "templates/python-service",
        [
            {"name": "payments", "owner": "group:default/team", "docker": False},
            {"repoUrl": "github.com?owner=acme&repo=payments"},
        ],
        secrets={"GIT_TOKEN": "t0ken-value"},
    )
    assert result.status == "completed"
    assert "Dockerfile" not in result.files
    assert result.files["README.md"].text.startswith("# payments")
    assert result.output["links"][0]["url"] == "payments.git#main"
    assert [s["status"] for s in result.steps] == ["completed"] * 4
    (push,) = result.calls
    assert push["action"] == "publish:git" and push["input"]["token"] == "***"
    assert any("Would push" in e.get("message", "") for e in result.events)


def test_a_refused_answer(render_template):
    result = render_template("templates/python-service", {"name": "Bad Name", "owner": "x"})
    assert result.status == "invalid"
    assert result.invalid.page == 1
    assert result.invalid.messages == [
        'instance.name does not match pattern "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"'
    ]


async def test_from_an_async_test(render_template):
    result = render_template("templates/fail/template.yaml", {"failure": "outside-workspace"})
    assert result.status == "failed"
    assert result.error["step"] == "delete-outside"


def test_a_failing_assert(render_template):
    result = render_template("templates/hello-world", {"name": "Ada"})
    assert result.output["text"][0]["content"] == "Hello, Grace!"
"""


def test_the_fixture_in_a_real_pytest_run(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES_DIR, tmp_path / "templates")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    run = run_pytest(tmp_path, "test_templates.py", TESTS)
    assert run.code == 1, run.out
    assert "1 failed, 3 passed" in run.out
    assert "FAILED test_templates.py::test_a_failing_assert" in run.out
    assert "'Hello, Ada!' == 'Hello, Grace!'" in run.out
