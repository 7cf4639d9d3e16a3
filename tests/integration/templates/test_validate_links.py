"""`falsework templates validate` refuses symbolic links that point outside the
template folder or outside a skeleton that fetch:* copies (fetch refuses them at
run time); links that stay inside are fine."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from falsework.cli.main import app
from support.templates import WriteTemplate, template_doc

runner = CliRunner()

FETCH = [
    {"id": "fetch", "action": "fetch:template", "input": {"url": "./skeleton"}},
    {"id": "plain", "action": "fetch:plain", "input": {"url": "./plain"}},
]


def test_links_leaving_a_skeleton_or_the_template_folder_are_problems(
    write_template: WriteTemplate, tmp_path: Path
) -> None:
    path = write_template(
        "links",
        template_doc("links", steps=FETCH),
        files={"skeleton/README.md": "# ${{ values.name }}\n", "plain/a.txt": "a"},
    )
    folder = path.parent
    os.symlink("/etc", folder / "skeleton/foo")
    os.symlink("../template.yaml", folder / "skeleton/up")  # inside the folder, not the skeleton
    os.symlink("../../x", folder / "plain/away")
    os.symlink(str(tmp_path), folder / "shared")
    os.symlink("README.md", folder / "skeleton/readme")  # inside: fine
    result = runner.invoke(app, ["templates", "validate", str(path)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "skeleton/foo -> /etc: a symbolic link may not point outside the fetched folder" in out
    assert "skeleton/up -> ../template.yaml: a symbolic link may not point outside" in out
    assert "plain/away -> ../../x: a symbolic link may not point outside the fetched" in out
    assert out.count("skeleton/foo -> /etc") == 1  # once, for the fetch step
    assert f"shared -> {tmp_path}: a symbolic link may not point outside the template folder" in (
        out
    )
    assert "readme" not in out


def test_links_inside_the_skeleton_are_fine(write_template: WriteTemplate) -> None:
    path = write_template(
        "fine",
        template_doc("fine", steps=FETCH[:1]),
        files={"skeleton/docs/index.md": "d", "skeleton/README.md": "r"},
    )
    os.symlink("docs", path.parent / "skeleton/guide")
    os.symlink("../README.md", path.parent / "skeleton/docs/up")
    result = runner.invoke(app, ["templates", "validate", str(path)])
    assert result.exit_code == 0, result.output
