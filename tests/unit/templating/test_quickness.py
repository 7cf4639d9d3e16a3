"""``Renderer.quickness``: the one walk that tells the runner whether a value has
nothing to render, renders quickly inline, or goes to the render threads; and
``render(..., plain=True)`` gives what ``render`` gives for a plain value."""

from __future__ import annotations

from typing import Any

import pytest

from falsework.templating import PLAIN, QUICK, Renderer
from falsework.templating.renderer import SLOW

CTX = {"parameters": {"name": "ada", "tags": ["b", "a"]}}


@pytest.mark.parametrize(
    "value",
    [
        "hello",
        "",
        {"message": "hello", "empty": "", "n": 3, "none": None},
        ["a", "", None, {"deep": ["x", {"y": ""}]}],
        {"text": "a {{ b }} c", "braces": "{ not: a template }"},  # no ${{
        7,
        None,
    ],
)
def test_a_plain_value_renders_the_same_without_the_walk(renderer: Renderer, value: Any) -> None:
    assert renderer.quickness(value) == PLAIN
    assert renderer.renders_quickly(value)
    plain = renderer.render(value, CTX, plain=True)
    assert plain == renderer.render(value, CTX)
    if isinstance(value, dict | list):
        assert plain is not value  # a fresh copy, as render gives


def test_quickness_is_the_worst_of_a_value_s_strings(renderer: Renderer) -> None:
    quick, slow = "${{ parameters.name }}", "${{ parameters.tags | sort }}"
    # never compiled: a first compile may be slow
    assert renderer.quickness({"a": "x", "b": [quick]}) == SLOW
    renderer.render(quick, CTX)
    renderer.render(slow, CTX)
    assert renderer.quickness(quick) == QUICK
    assert renderer.quickness({"a": "x", "b": [quick], "c": 1}) == QUICK
    assert renderer.quickness(["x", {"b": [quick, slow]}]) == SLOW
    assert renderer.quickness(slow) == SLOW
    assert not renderer.renders_quickly({"a": [quick, slow]})
    assert renderer.renders_quickly({"a": [quick, "plain"]})
