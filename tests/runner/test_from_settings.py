"""WorkflowRunner.from_settings: the folders a server's tasks may touch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from falsework.config import Settings
from falsework.runner import WorkflowRunner


def test_remotes_folder_is_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", templates=str(tmp_path / "tpl"))
    runner = WorkflowRunner.from_settings(settings)
    assert runner.remotes_dir == tmp_path / "data" / "remotes"
    assert runner.allowed_roots == (tmp_path / "tpl",)
    assert runner.publish_roots == ()  # the template folders are for reading only
    assert not (tmp_path / "data").exists()  # nothing is created up front


def test_publish_roots_come_from_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALSEWORK_PUBLISH_ROOTS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    runner = WorkflowRunner.from_settings(Settings(data_dir=tmp_path / "data"))
    assert runner.publish_roots == (tmp_path / "a", tmp_path / "b")


def test_relative_data_dir_is_fixed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = WorkflowRunner.from_settings(Settings(data_dir=Path(".fw")))
    monkeypatch.chdir(os.sep)
    assert runner.remotes_dir == tmp_path / ".fw" / "remotes"
