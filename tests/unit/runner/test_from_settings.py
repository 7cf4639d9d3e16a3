"""Settings.action_policies / falsework.wiring.workflow_runner: the folders, hosts and
credentials a server's tasks may use, given to the action families once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from falsework.actions.policies import (
    EgressPolicy,
    GitCredential,
    GitPolicy,
    PublishPolicy,
    SourcePolicy,
)
from falsework.config import Settings
from falsework.runner import WorkflowRunner
from falsework.updates.service import ScaffoldUpdates
from falsework.wiring import workflow_runner


def policy(settings: Settings, kind: type[Any], *, local: bool = False) -> Any:
    return next(p for p in settings.action_policies(local=local) if isinstance(p, kind))


def configured(runner: WorkflowRunner, action_id: str) -> Any:
    return runner.registry.get(action_id).settings


def test_remotes_folder_is_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", templates=str(tmp_path / "tpl"))
    runner = workflow_runner(settings)
    publish = configured(runner, "publish:git")
    assert publish.remotes_dir == tmp_path / "data" / "remotes"
    # a task reads its own template folder, never the other template folders
    assert configured(runner, "fetch:plain").roots == ()
    assert publish.roots == ()  # the template folders are for reading only
    assert configured(runner, "http:request") == policy(settings, EgressPolicy)
    assert not (tmp_path / "data").exists()  # nothing is created up front


def test_publish_roots_come_from_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALSEWORK_PUBLISH_ROOTS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    runner = workflow_runner(Settings(data_dir=tmp_path / "data"))
    assert configured(runner, "publish:git").roots == (tmp_path / "a", tmp_path / "b")


def test_relative_data_dir_is_fixed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = workflow_runner(Settings(data_dir=Path(".fw")))
    monkeypatch.chdir(os.sep)
    assert configured(runner, "publish:git").remotes_dir == tmp_path / ".fw" / "remotes"


def test_one_git_and_egress_policy_is_shared_by_every_family(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        git_timeout=7,
        git_allow_http=True,
        egress={"allow": ["10.1.0.0/16", "git.corp.example"], "deny": ["*.evil.example"]},
    )
    runner = workflow_runner(settings)
    egress = configured(runner, "http:request")
    assert egress.enforced
    assert [r.text for r in egress.allow] == ["10.1.0.0/16", "git.corp.example"]
    assert [r.text for r in egress.deny] == ["*.evil.example"]
    for action_id in ("fetch:plain", "fetch:template:file", "publish:git"):
        git = configured(runner, action_id).git
        assert git == GitPolicy(timeout=7, allow_http=True, egress=egress)
        assert git.isolated


def test_falsework_run_is_the_users_own_machine(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    runner = workflow_runner(settings, local=True)
    assert configured(runner, "fetch:plain").roots == (Path("/"),)
    assert configured(runner, "publish:git").roots == (Path("/"),)
    assert not configured(runner, "http:request").enforced
    git = configured(runner, "publish:git").git
    assert not git.egress.enforced and not git.isolated and git.allow_http
    assert policy(settings, SourcePolicy, local=True).git == git
    assert policy(settings, PublishPolicy).git.isolated  # a server is isolated


@pytest.mark.parametrize("entry", ["not a host!", "10.0.0.0/33", "127.1", ""])
def test_an_egress_entry_that_is_neither_a_network_nor_a_host_is_refused(
    tmp_path: Path, entry: str
) -> None:
    with pytest.raises(ValidationError, match="neither an address or network"):
        Settings(data_dir=tmp_path / "data", egress={"allow": [entry]})
    with pytest.raises(ValidationError, match="allwo"):
        Settings(data_dir=tmp_path / "data", egress={"allwo": ["10.0.0.0/8"]})


def test_git_credentials_come_from_the_config_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "falsework.yaml"
    config.write_text(
        "integrations:\n"
        "  git:\n"
        "    - host: GitHub.com\n"
        "      token_env: FW_TEST_GH_TOKEN\n"
        "      allowedOwners: [acme]\n"
        "    - host: git.example.com:8443\n"
        "      token: inline-token\n"
        "      username: bot\n"
        "      paths: ['platform/*', '**/templates']\n"
        "    - host: ssh.example.com\n"
        "      ssh_key_file: keys/deploy\n"
        "      allowed_owners: [ops]\n"
        "    - host: unset.example.com\n"
        "      token_env: FW_TEST_UNSET_TOKEN\n"
        "      paths: ['**']\n"
    )
    monkeypatch.setenv("FALSEWORK_CONFIG", str(config))
    monkeypatch.setenv("FW_TEST_GH_TOKEN", "gh-token")
    monkeypatch.delenv("FW_TEST_UNSET_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.git_credentials() == (
        GitCredential(host="github.com", token="gh-token", owners=("acme",)),
        GitCredential(
            host="git.example.com:8443",
            username="bot",
            token="inline-token",
            paths=("platform/*", "**/templates"),
        ),
        GitCredential(host="ssh.example.com", ssh_key=tmp_path / "keys/deploy", owners=("ops",)),
    )
    runner = workflow_runner(settings)
    assert configured(runner, "fetch:plain").git.credentials == settings.git_credentials()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("    - host: h\n      paths: ['**']\n", "give token_env or token"),
        (
            "    - host: h\n      token: a\n      token_env: B\n      paths: ['**']\n",
            "give token_env or token",
        ),
        (
            "    - host: h\n      token: a\n      ssh_key_file: k\n      paths: ['**']\n",
            "give token_env or token",
        ),
        ("    - host: h\n      token_env: B\n      tokenenv: C\n", "tokenenv"),
        # no scope: a server credential never goes to every repository by default
        ("    - host: h\n      token_env: B\n", "say which repositories"),
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


@pytest.mark.parametrize("local", [False, True])
def test_the_scaffold_actions_get_the_scaffold_service(tmp_path: Path, local: bool) -> None:
    # the actions cannot import falsework.updates (it runs them): the edge hands it over
    settings = Settings(data_dir=tmp_path / "data", templates=str(tmp_path / "tpl"))
    runner = workflow_runner(settings, local=local)
    publish = configured(runner, "publish:git")
    update = configured(runner, "scaffold:update")
    assert isinstance(publish.scaffolds, ScaffoldUpdates)
    assert isinstance(update.scaffolds, ScaffoldUpdates)
    # the same folders and rules as without it, only the service added
    plain = policy(settings, PublishPolicy, local=local)
    assert publish.remotes_dir == plain.remotes_dir and publish.roots == plain.roots
    assert plain.scaffolds is None


def test_a_plain_local_run_builds_the_same_policies_on_first_use(tmp_path: Path) -> None:
    from falsework.localconfig import read_local

    env = {"FALSEWORK_DATA_DIR": str(tmp_path / "data"), "FALSEWORK_GIT_TIMEOUT": "7"}
    local = read_local(env)
    assert local is not None
    runner = workflow_runner(local, local=True)
    full = workflow_runner(Settings(data_dir=tmp_path / "data", git_timeout=7), local=True)
    for action_id in ("fetch:template", "publish:git", "scaffold:update"):
        lazy, built = configured(runner, action_id), configured(full, action_id)
        assert type(lazy) is type(built)
    git = configured(runner, "fetch:template").git
    assert git.timeout == 7 and not git.isolated and not git.egress.enforced
    assert configured(runner, "publish:git").remotes_dir == (tmp_path / "data" / "remotes")
    assert isinstance(configured(runner, "publish:git").scaffolds, ScaffoldUpdates)
