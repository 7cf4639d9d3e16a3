"""Input nested 10,000 deep (a template's schema, a ``--set`` or ``--values``
value) is one clear error of ``falsework run`` and ``templates validate``: PyYAML
composes recursively, so unbounded it ends in a RecursionError traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from falsework.cli.main import app
from falsework.config import EXAMPLES_DIR
from falsework.templates import load_templates
from falsework.templates.syntax import MAX_YAML_DEPTH, load_value
from falsework.templates.values import MAX_VALUE_DEPTH

DEEP = 10_000
runner = CliRunner()


def _template(folder: Path, levels: int) -> Path:
    """A template whose parameter ``a`` is an object ``levels`` deep (two YAML
    mappings a level: the schema and its ``properties``)."""
    schema = '{"type": "object", "properties": {"a": ' * levels
    schema += '{"type": "string"}' + "}}" * levels
    folder.mkdir()
    (folder / "template.yaml").write_text(
        "apiVersion: scaffolder.backstage.io/v1beta3\n"
        "kind: Template\n"
        "metadata: {name: deep}\n"
        "spec:\n"
        "  owner: group:default/platform\n"
        "  type: service\n"
        "  parameters:\n"
        "    - properties:\n"
        f"        a: {schema}\n"
        "  steps:\n"
        "    - {id: greet, action: debug:log, input: {message: hi}}\n",
        encoding="utf-8",
    )
    return folder


def test_a_schema_10000_deep_is_a_clear_error(tmp_path: Path) -> None:
    folder = _template(tmp_path / "deep", DEEP)
    result = runner.invoke(app, ["run", str(folder), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, RecursionError)
    assert f"nested deeper than the limit of {MAX_YAML_DEPTH} levels" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["templates", "validate", str(folder)])
    assert result.exit_code == 1, result.output
    assert f"template.yaml:9: not valid YAML: nested deeper than the limit of {MAX_YAML_DEPTH}" in (
        result.output
    )


def test_a_schema_as_deep_as_allowed_still_runs(tmp_path: Path) -> None:
    levels = (MAX_YAML_DEPTH - 6) // 2  # the document's own levels above `a`
    (template,) = load_templates(_template(tmp_path / "deep", levels) / "template.yaml")
    out = tmp_path / "out"
    args = ["run", str(template.path), "--set", "a.a.a.a.a={}", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Done. Workspace written" in result.output


@pytest.mark.parametrize("how", ["--set", "--values"])
def test_a_value_10000_deep_is_a_clear_error(how: str, tmp_path: Path) -> None:
    deep = "[" * DEEP + "]" * DEEP
    hello = str(EXAMPLES_DIR / "hello-world")
    if how == "--set":
        args = ["--set", f"extra={deep}"]
    else:
        (tmp_path / "values.yaml").write_text(f"extra: {deep}\n", encoding="utf-8")
        args = ["--values", str(tmp_path / "values.yaml")]
    result = runner.invoke(app, ["run", hello, *args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, RecursionError)
    assert f"nested deeper than the limit of {MAX_VALUE_DEPTH} levels" in result.output
    assert not (tmp_path / "out").exists()


def test_a_value_one_level_too_deep_is_named_by_check_shape(tmp_path: Path) -> None:
    """Within the parse's bound, the values' own check (check_shape) says where."""
    deep = "[" * MAX_VALUE_DEPTH + "]" * MAX_VALUE_DEPTH
    hello = str(EXAMPLES_DIR / "hello-world")
    result = runner.invoke(app, ["run", hello, "--set", f"extra={deep}", "-o", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "values.extra[0][0]" in result.output
    assert f"nested deeper than the limit of {MAX_VALUE_DEPTH} levels" in result.output


def test_load_value_bounds_the_nesting_it_composes() -> None:
    assert load_value("[" * 5 + "]" * 5, max_depth=5) == [[[[[]]]]]
    with pytest.raises(yaml.YAMLError, match="deeper than the limit of 4 levels"):
        load_value("[" * 5 + "]" * 5, max_depth=4)
    assert load_value("{a: {b: [1, {c: yes}]}}") == {"a": {"b": [1, {"c": True}]}}
    with pytest.raises(yaml.YAMLError, match="deeper than the limit"):
        load_value("a: " + "[" * DEEP + "]" * DEEP)


def test_update_set_bounds_a_value_10000_deep_too() -> None:
    """`falsework update --set` reads its values as run's --set does."""
    import typer

    from falsework.cli.update import _overrides

    assert _overrides(["a=[1, {b: 2}]", "s=007"], {"s": "x"}) == {"a": [1, {"b": 2}], "s": "007"}
    with pytest.raises(
        typer.BadParameter, match=f"--set v: nested deeper than the limit of {MAX_VALUE_DEPTH}"
    ):
        _overrides(["v=" + "[" * DEEP + "]" * DEEP], {})
