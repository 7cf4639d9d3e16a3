from __future__ import annotations

import os
from pathlib import Path

import pytest

from falsework.actions import resolve_safe_path
from falsework.errors import UnsafePathError

ESCAPES = ["../x", "../../../etc/passwd", "a/../../x", "/etc/passwd", "./../x", "a/b/../../../x"]


@pytest.mark.parametrize("bad", ESCAPES)
def test_escapes_are_refused_naming_the_path(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        resolve_safe_path(tmp_path, bad)
    assert repr(bad) in str(info.value)


def test_inside_paths_resolve(tmp_path: Path) -> None:
    root = Path(os.path.realpath(tmp_path))
    assert resolve_safe_path(tmp_path, "") == root
    assert resolve_safe_path(tmp_path, "./") == root
    assert resolve_safe_path(tmp_path, "a/../b/c.txt") == root / "b" / "c.txt"


def test_symlink_leaving_the_workspace_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "out").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        resolve_safe_path(ws, "out/secret.txt")


def test_symlink_inside_is_kept_as_spelled(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert resolve_safe_path(tmp_path, "link").name == "link"
