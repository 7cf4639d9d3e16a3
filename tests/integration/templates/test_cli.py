"""`falsework templates validate` and `falsework templates ls`, through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from falsework.cli.main import app
from falsework.config import EXAMPLES_DIR
from support.templates import WriteTemplate, template_doc

runner = CliRunner()


def test_validate_the_examples_is_clean() -> None:
    result = runner.invoke(app, ["templates", "validate", str(EXAMPLES_DIR)])
    assert result.exit_code == 0, result.output
    assert "ok " in result.output
    assert "python-service" in result.output


def test_validate_reports_problems_and_fails(write_template: WriteTemplate) -> None:
    good = write_template("good")
    bad = write_template(
        "bad",
        template_doc(
            "bad",
            steps=[{"id": "a", "action": "fetch:tmplate"}, {"id": "a", "action": "debug:log"}],
        ),
    )
    result = runner.invoke(app, ["templates", "validate", str(good), str(bad)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{bad}:" in result.output
    assert any(
        "spec.steps[0].action: unknown action 'fetch:tmplate' (did you mean fetch:template?)"
        in line
        for line in lines
    )
    assert any("spec.steps[1].id: duplicate step id 'a'" in line for line in lines)
    assert f"ok {good}" in result.output
    assert "2 problem(s) in 1 of 2 file(s)" in result.output


def test_validate_json_output(write_template: WriteTemplate, tmp_path: Path) -> None:
    bad = write_template("bad", template_doc("bad", steps=[{"id": "a", "action": "nope:nope"}]))
    result = runner.invoke(
        app, ["templates", "validate", "--json", str(bad), str(tmp_path / "missing.yaml")]
    )
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data[0] == {
        "file": str(bad),
        "line": data[0]["line"],
        "path": "spec.steps[0].action",
        "message": "unknown action 'nope:nope'",
    }
    assert data[1]["message"] == "no such file"


def test_validate_an_empty_folder_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["templates", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "no templates found" in result.output


def test_ls_lists_the_configured_folders(
    write_template: WriteTemplate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_template("alpha")
    write_template("broken", "kind: Template\nmetadata: [\n")
    monkeypatch.setenv("FALSEWORK_TEMPLATES", str(tmp_path / "templates"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["templates", "ls", "--long"])
    assert result.exit_code == 0, result.output
    assert "template:default/alpha" in result.output
    assert "The alpha template" in result.output
    assert "templates/alpha/template.yaml" in result.output
    assert "skipped:" in result.output and "not valid YAML" in result.output

    result = runner.invoke(app, ["templates", "ls", "--json"])
    (entry,) = json.loads(result.output)
    assert entry["ref"] == "template:default/alpha"
    assert entry["path"] == str((tmp_path / "templates/alpha/template.yaml").resolve())


def test_ls_shows_the_examples_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALSEWORK_TEMPLATES", raising=False)
    monkeypatch.delenv("FALSEWORK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["templates", "ls"])
    assert result.exit_code == 0, result.output
    for name in ("hello-world", "python-service", "wait", "fail"):
        assert f"template:default/{name}" in result.output
