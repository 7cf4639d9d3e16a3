"""The two readers of the settings agree: ``falsework.localconfig`` (``falsework
run``, without pydantic) and ``Settings`` both take the scalar settings from
``falsework.settingtable``, every ``FALSEWORK_*`` variable the first takes gives
the value ``Settings`` gives, and whatever it is not sure of goes to ``Settings``."""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from falsework import localconfig
from falsework.config import Settings
from falsework.localconfig import LocalSettings, read_local
from falsework.settingtable import ANNOTATIONS, SCALARS, Scalars
from falsework.wiring import run_limits

FIELDS = SCALARS

SECTIONS = {
    "config",
    "egress",
    "auth",
    "integrations",
    "scaffolder",
    "backstage",
    "entities",
    "webhooks",
    "allowed_hosts",
}
KINDS = {str: "str", Path: "path", bool: "bool", int: "int", float: "float"}

PROBES = {
    "int": [
        *("0", "1", "-1", "2", "3", "4", "7", "8", "12", "20", "30", "63", "64", "65", "79"),
        *("80", "200", "201", "999", "1000", "1024", "10000", "10001", "100000", "100001"),
        *("007", "1.0", " 3", "3 ", "1e3", "+5", "1_000", "abc", "", "99999999999999999999"),
    ],
    "float": [
        *("0", "0.0", "1", "1.5", "-1", "-0.5", "0.05", "2", "120", "3600", "86400.0"),
        *("1e3", " 2", "2 ", "inf", "nan", "abc", "", "00.5", ".5", "5.", "1_0"),
    ],
    "bool": [
        *("true", "false", "TRUE", "True", "1", "0", "yes", "no", "on", "off", "t", "f"),
        *("y", "n", "2", "", "maybe", " true", "Yes"),
    ],
    "str": ["", "x", "sqlite:///a.db", " spaced ", "null", "None", "a:b::c"],
    "path": ["", ".", "a/b", "/abs", "~/x", "null", " x "],
    "choice": ["text", "json", "TEXT", "xml", ""],
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.lower().startswith("falsework_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no ./falsework.yaml


def _full(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings | None:
    with monkeypatch.context() as m:
        for key, value in env.items():
            m.setenv(key, value)
        try:
            return Settings()
        except ValidationError:
            return None


def _kind(annotation: Any) -> tuple[str, bool]:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return KINDS[inner[0]], True
    if typing.get_origin(annotation) is typing.Literal:
        return "choice", False
    return KINDS[annotation], False


def test_settings_makes_its_scalar_fields_of_the_table() -> None:
    full = Settings()
    assert set(FIELDS) | SECTIONS == set(Settings.model_fields)
    assert not set(FIELDS) & SECTIONS
    assert issubclass(LocalSettings, Scalars)
    for name, field in FIELDS.items():
        declared = Settings.model_fields[name]
        assert declared.annotation == ANNOTATIONS[name], name
        assert declared.description == field.description, name
        assert (field.kind, field.optional) == _kind(declared.annotation), name
        assert field.default == getattr(full, name), name
        bounds = {
            key: getattr(item, key)
            for item in declared.metadata
            for key in ("ge", "gt", "le")
            if getattr(item, key, None) is not None
        }
        mine = {k: getattr(field, k) for k in ("ge", "gt", "le") if getattr(field, k) is not None}
        assert mine == bounds, name


def test_without_variables_both_agree() -> None:
    fast = read_local({})
    assert fast is not None
    full = Settings()
    for name in FIELDS:
        assert fast.values[name] == getattr(full, name)
    _same_runner_settings(fast, full)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_each_variable_means_what_it_means_to_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    field = FIELDS[name]
    taken = 0
    for text in [*PROBES[field.kind], *([str(field.default)] if field.default is not None else [])]:
        env = {f"FALSEWORK_{name.upper()}": text}
        fast = read_local(env)
        full = _full(monkeypatch, env)
        if fast is None:
            continue  # left to Settings, whatever it says
        taken += 1
        assert full is not None, f"{name}={text!r}: taken here, refused by Settings"
        value = getattr(full, name)
        assert fast.values[name] == value, f"{name}={text!r}"
        assert type(fast.values[name]) is type(value), f"{name}={text!r}"
        _same_runner_settings(fast, full)
    assert taken >= 2, f"{name}: the fast path takes almost nothing"


def _same_runner_settings(fast: LocalSettings, full: Settings) -> None:
    for name in FIELDS:
        assert getattr(fast, name) == getattr(full, name), name
    assert fast.resolved_work_dir == full.resolved_work_dir
    assert fast.template_dirs == full.template_dirs
    assert fast.default_environment() == full.default_environment()
    assert run_limits(fast) == run_limits(full)
    assert fast.action_policies(local=True) == full.action_policies(local=True)


def test_names_are_read_whatever_their_case() -> None:
    fast = read_local({"falsework_step_timeout": "5", "FaLsEwOrK_MAX_EACH": "3"})
    assert fast is not None
    assert (fast.step_timeout, fast.max_each) == (5.0, 3)
    # the same setting twice: which one Settings takes is its business
    assert read_local({"falsework_max_each": "3", "FALSEWORK_MAX_EACH": "4"}) is None


@pytest.mark.parametrize(
    "env",
    [
        {"FALSEWORK_CONFIG": "elsewhere.yaml"},
        {"FALSEWORK_INTEGRATIONS": '{"git": []}'},
        {"FALSEWORK_SCAFFOLDER": "{}"},
        {"FALSEWORK_ALLOWED_HOSTS": '["a"]'},
        {"FALSEWORK_NO_SUCH_SETTING": "1"},
        {"FALSEWORK_MAX_EACH": "0"},  # out of bounds: Settings says why
        {"FALSEWORK_RENDER_TIMEOUT": "1e3"},
    ],
)
def test_what_it_is_not_sure_of_goes_to_settings(env: dict[str, str]) -> None:
    assert read_local(env) is None


def test_a_config_file_here_goes_to_settings(tmp_path: Path) -> None:
    assert read_local({}) is not None
    (tmp_path / "falsework.yaml").write_text("max_each: 3\n", encoding="utf-8")
    assert read_local({}) is None
    assert Settings().max_each == 3


def test_other_variables_are_not_read() -> None:
    assert read_local({"HOME": "/x", "FALSEWORKS": "1", "PATH": "/bin"}) is not None


def test_the_examples_are_where_they_were() -> None:
    from falsework import config

    assert config.EXAMPLES_DIR == localconfig.EXAMPLES_DIR
    assert (localconfig.EXAMPLES_DIR / "hello-world").is_dir()
