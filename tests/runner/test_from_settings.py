"""WorkflowRunner.from_settings: the folders a server's tasks may touch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

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


def test_git_credentials_come_from_the_config_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "falsework.yaml"
    config.write_text(
        "integrations:\n"
        "  git:\n"
        "    - host: GitHub.com\n"
        "      token_env: FW_TEST_GH_TOKEN\n"
        "    - host: git.example.com:8443\n"
        "      token: inline-token\n"
        "      username: bot\n"
        "    - host: unset.example.com\n"
        "      token_env: FW_TEST_UNSET_TOKEN\n"
    )
    monkeypatch.setenv("FALSEWORK_CONFIG", str(config))
    monkeypatch.setenv("FW_TEST_GH_TOKEN", "gh-token")
    monkeypatch.delenv("FW_TEST_UNSET_TOKEN", raising=False)
    runner = WorkflowRunner.from_settings(Settings(data_dir=tmp_path / "data"))
    assert runner.git_credentials == {
        "github.com": ("x-access-token", "gh-token"),
        "git.example.com:8443": ("bot", "inline-token"),
    }


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("    - host: h\n", "give token_env or token"),
        ("    - host: h\n      token: a\n      token_env: B\n", "give token_env or token"),
        ("    - host: h\n      token_env: B\n      tokenenv: C\n", "tokenenv"),
    ],
)
def test_a_git_credential_needs_exactly_one_token_and_known_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, problem: str
) -> None:
    config = tmp_path / "falsework.yaml"
    config.write_text("integrations:\n  git:\n" + entry)
    monkeypatch.setenv("FALSEWORK_CONFIG", str(config))
    with pytest.raises(ValidationError, match=problem):
        Settings(data_dir=tmp_path / "data")
