"""The renderer's lookup path: a compiled string whose expressions are all plain
lookups (``${{ parameters.a.b }}``) renders by dict reads, with exactly what Jinja
gives: the same value, the same type, the same undefined handling and the same
errors. Everything else takes Jinja, as before.

The full path is reached through the public API by passing the context as a
read-only mapping (the lookup path takes plain dicts only)."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import pytest
from markupsafe import Markup

from falsework.errors import TemplateError
from falsework.templating import Renderer


def _strict(value: Any) -> Any:
    """``value`` with every type spelled out: ``True`` is not ``1``, ``2`` not ``2.0``."""
    if isinstance(value, dict):
        return ("dict", [(_strict(k), _strict(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_strict(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def _outcome(render: Any) -> Any:
    try:
        return ("ok", _strict(render()))
    except TemplateError as exc:
        return ("error", type(exc).__name__, exc.message)


def _both(renderer: Renderer, value: Any, context: dict[str, Any], **kw: Any) -> tuple[Any, Any]:
    full = MappingProxyType(context)
    slow = _outcome(lambda: renderer.render(value, full, **kw))
    renderer.render(value, full, **kw) if slow[0] == "ok" else None
    fast = _outcome(lambda: renderer.render(value, context, **kw))
    again = _outcome(lambda: renderer.render(value, full, **kw))
    assert again == slow  # (the full path itself did not change in between)
    return fast, slow


@pytest.fixture
def shapes() -> dict[str, Any]:
    return {
        "parameters": {
            "name": "my-svc",
            "empty": "",
            "count": 3,
            "zero": 0,
            "ratio": 1.5,
            "whole": 2.0,
            "nan": float("nan"),
            "inf": float("inf"),
            "flag": True,
            "off": False,
            "nothing": None,
            "tags": ["b", "", None, 2.0],
            "labels": {"app": "web", "tier": {"deep": "x"}, "none": None},
            "repo": {"owner": "acme", "name": "svc", "values": "a key like a method"},
            "values": "a parameter named like a dict method",
            "_private": "underscored",
            "markup": Markup("<b>"),
            "crlf": "a\r\nb",
            "big": "x" * 50,
        },
        "steps": {"fetch": {"output": {"path": "out", "files": 2}}},
        "secrets": {"token": "s3cr3t"},
        "user": {"ref": "user:default/ann", "entity": None},
        "each": {"value": "item", "key": 1},
        "listed": [{"a": 1}],
        "text": "plain",
    }


LONE = [
    "${{ parameters.name }}",
    "${{ parameters.empty }}",
    "${{ parameters.count }}",
    "${{ parameters.zero }}",
    "${{ parameters.ratio }}",
    "${{ parameters.whole }}",
    "${{ parameters.nan }}",
    "${{ parameters.inf }}",
    "${{ parameters.flag }}",
    "${{ parameters.off }}",
    "${{ parameters.nothing }}",
    "${{ parameters.tags }}",
    "${{ parameters.labels }}",
    "${{ parameters.labels.tier }}",
    "${{ parameters.labels.tier.deep }}",
    "${{ parameters.labels.none }}",
    "${{ parameters.labels.none.x }}",
    "${{ parameters.repo.values }}",
    "${{ parameters.values }}",
    "${{ parameters._private }}",
    "${{ parameters._missing }}",
    "${{ parameters.markup }}",
    "${{ parameters.missing }}",
    "${{ parameters.missing.deeper }}",
    "${{ parameters.items }}",
    "${{ parameters.keys }}",
    "${{ parameters.name.length }}",
    "${{ parameters.name.upper }}",
    "${{ parameters.tags.length }}",
    "${{ parameters.count.real }}",
    "${{ parameters.name.__class__ }}",
    "${{ steps.fetch.output.path }}",
    "${{ steps.fetch.output.files }}",
    "${{ steps.never.output.x }}",
    "${{ secrets.token }}",
    "${{ user.ref }}",
    "${{ user.entity.metadata }}",
    "${{ each.value }}",
    "${{ listed.a }}",
    "${{ text.length }}",
    "${{ nope.a }}",
    "${{ range.x }}",
    "${{ parameters }}",
    "${{ parameters.name | upper }}",
    "${{ parameters['name'] }}",
    "${{ parameters.count + 1 }}",
    "${{ parameters.name if parameters.flag }}",
    "${{ 'lit' }}",
    "${{parameters.name}}",
    "${{   parameters.name   }}",
    "${{- parameters.name -}}",
    "${{\nparameters.name\n}}",
    "  ${{ parameters.name }}",
    "${{ parameters.name }}\n",
]

TEXT = [
    "Hello ${{ parameters.name }}",
    "Hello ${{ parameters.name }}!",
    "${{ parameters.name }}/${{ parameters.repo.name }}",
    "${{ parameters.empty }}",
    "${{ parameters.empty }}${{ parameters.empty }}",
    "${{ parameters.empty }}${{ parameters.missing }}",
    "a${{ parameters.missing }}",
    "n=${{ parameters.count }}",
    "v=${{ parameters.flag }}",
    "v=${{ parameters.nothing }}",
    "v=${{ parameters.whole }}",
    "v=${{ parameters.tags }}",
    "v=${{ parameters.labels }}",
    "v=${{ parameters.markup }}",
    "v=${{ parameters.items }}",
    "v=${{ parameters.name.length }}",
    "v=${{ parameters.crlf }}",
    "line\r\n${{ parameters.name }}\r\nend",
    "line\n${{ parameters.name }}\rend\r\n",
    "x ${{- parameters.name -}} y",
    "${{ parameters.name }} ${{ parameters.name | lower }}",
    "${{ parameters.name }} {% if true %}x{% endif %}",
    "${{ parameters.name }} {# note #}",
    "${{ secrets.token }}@host",
    "${{ each.value }}-${{ each.key }}",
    "${{ parameters.big }}${{ parameters.big }}",
]


@pytest.mark.parametrize("source", LONE + TEXT)
def test_a_string_renders_as_jinja_renders_it(shapes: dict[str, Any], source: str) -> None:
    fast, slow = _both(Renderer(), source, shapes)
    assert fast == slow


@pytest.mark.parametrize("source", LONE + TEXT)
def test_inside_objects_and_lists_too(shapes: dict[str, Any], source: str) -> None:
    value = {"a": source, "b": [source, "plain", "", 1], "c": {"d": source}, "": ""}
    fast, slow = _both(Renderer(), value, shapes)
    assert fast == slow


def test_missing_for_what_renders_to_nothing(shapes: dict[str, Any]) -> None:
    renderer = Renderer()
    for source in ("${{ parameters.missing }}", "${{ parameters.empty }}${{ parameters.empty }}"):
        fast, slow = _both(renderer, source, shapes, missing="gone")
        assert fast == slow


@pytest.mark.parametrize("limit", [10, 60, 100, 101, 102, 200])
def test_the_output_limit_holds(shapes: dict[str, Any], limit: int) -> None:
    # "big" is 50 characters (52 as JSON): over some limits alone, others twice
    renderer = Renderer(max_output=limit)
    for source in (
        "${{ parameters.big }}",
        "${{ parameters.big }}${{ parameters.big }}",
        "${{ parameters.tags }}",
    ):
        fast, slow = _both(renderer, source, shapes)
        assert fast == slow


def test_cookiecutter_syntax(shapes: dict[str, Any]) -> None:
    renderer = Renderer(cookiecutter_compat=True)
    context = {**shapes, "values": {"name": "v"}}
    for source in ("{{ cookiecutter.name }}", "x {{ values.name }}", "{{ parameters.count }}"):
        fast, slow = _both(renderer, source, context)
        assert fast == slow


def test_a_plain_lookup_skips_jinja_once_compiled(
    shapes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    renderer = Renderer()
    value = {"message": "Hello ${{ parameters.name }}", "n": "${{ parameters.count }}"}
    assert renderer.render(value, shapes) == {"message": "Hello my-svc", "n": 3}

    def no_jinja(run: Any) -> Any:
        raise AssertionError("rendered with Jinja")

    monkeypatch.setattr(renderer, "_guarded", no_jinja)
    assert renderer.render(value, shapes) == {"message": "Hello my-svc", "n": 3}
    # what a lookup does not find, and anything but a lookup, still goes to Jinja
    for other in ("${{ parameters.missing }}", "${{ parameters.name | upper }}"):
        with pytest.raises(AssertionError, match="rendered with Jinja"):
            renderer.render(other, shapes)


@pytest.mark.parametrize(
    "name", ["self", "loop", "varargs", "kwargs", "caller", "super", "range", "undefined"]
)
def test_names_jinja_binds_itself(name: str) -> None:
    # a key of the context named like something Jinja or its globals provide
    context = {name: {"a": "from the context"}}
    for source in (f"${{{{ {name}.a }}}}", f"x ${{{{ {name}.a }}}}"):
        fast, slow = _both(Renderer(), source, context)
        assert fast == slow
