"""Glob matching (fetch:template, fs:delete) and entry-point discovery."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from falsework.actions import ActionRegistry
from falsework.globs import matches, matches_or_under


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.png", "logo.png", True),
        ("*.png", "img/logo.png", False),  # from the root, as globby
        ("**/*.png", "img/deep/logo.png", True),
        ("**/*.png", "logo.png", True),
        (".github/workflows/*", ".github/workflows/ci.yaml", True),
        (".github/workflows/*", ".github/workflows/sub/ci.yaml", False),
        ("./docs/**", "docs/a/b.md", True),
        ("src/{a,b}.py", "src/b.py", True),
        ("src/{a,b}.py", "src/c.py", False),
        ("file[0-9].txt", "file7.txt", True),
        ("file[!0-9].txt", "file7.txt", False),
        ("?.md", "a.md", True),
        ("?.md", "ab.md", False),
    ],
)
def test_glob(pattern: str, path: str, expected: bool) -> None:
    assert matches(path, [pattern]) is expected


def test_a_matched_folder_covers_its_contents() -> None:
    assert matches_or_under(".github/workflows/ci.yaml", [".github"])
    assert not matches_or_under("src/.github.txt", [".github"])
    assert not matches_or_under("anything", [])


def test_entry_point_actions_are_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fw_plugin_demo.py").write_text(
        "from falsework.actions import ActionContext, ActionInput, action\n"
        "class In(ActionInput):\n    pass\n"
        "@action(id='demo:hello', description='Says hello.', input=In)\n"
        "async def hello(ctx: ActionContext[In]) -> None:\n    ctx.output('said', 'hello')\n"
    )
    dist = tmp_path / "fw_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fw-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[falsework.actions]\nhello = fw_plugin_demo:hello\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    registry = ActionRegistry.default()
    assert registry.get("demo:hello").description == "Says hello."
    assert "fetch:template" in registry
