"""Nunjucks regular-expression literals ``r/…/flags``, as real skeletons use them."""

from __future__ import annotations

from typing import Any

import pytest

from falsework.errors import TemplateRenderError, TemplateSecurityError, TemplateSyntaxError
from falsework.templating import Renderer

CTX: dict[str, Any] = {
    "parameters": {
        "name": "My Service-1",
        "domain": "domain:finance",
        "email": "bob@example",
        "identifier": "sales.orders-v2",
        "count": 8,
        "long": "a" * 30 + "b",
    }
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # JavaScript's String.replace: the first match, or all of them with g
        ('${{ parameters.name | replace(r/[- ]/g, "_") }}', "My_Service_1"),
        ('${{ parameters.name | replace(r/[- ]/, "_") }}', "My_Service-1"),
        ('${{ parameters.name | replace(r/s/gi, "z") }}', "My zervice-1"),
        # shapes seen in published skeletons
        ('${{ parameters.domain | replace(r/domain:| |-/, "") }}', "finance"),
        (
            '{%- set d = parameters.identifier.split(".")[1] | replace(r/[^\\w]/g, "") %}${{ d }}',
            "ordersv2",
        ),
        ('${{ parameters.name | replace(r/\\s+/g, "-") | lower }}', "my-service-1"),
        # replacement patterns: groups, named groups, the match, a literal $
        ('${{ parameters.email | replace(r/(\\w+)@(\\w+)/, "$2 at $1") }}', "example at bob"),
        ('${{ parameters.email | replace(r/(?<u>\\w+)@/, "$<u> @ ") }}', "bob @ example"),
        ('${{ parameters.email | replace(r/b/g, "[$&]") }}', "[b]o[b]@example"),
        ('${{ "a" | replace(r/a/, "$$1") }}', "$1"),
        ('${{ "abc" | replace(r/b/, "$`$\'") }}', "aacc"),
        # the string method form, and .test() in conditions
        ('${{ parameters.name.replace(r/e/g, "E") }}', "My SErvicE-1"),
        ("${{ r/^[A-Z]/.test(parameters.name) }}", True),
        ("{% if r/^my/i.test(parameters.name) %}yes{% else %}no{% endif %}", "yes"),
        ("{% if r/^my/.test(parameters.name) %}yes{% else %}no{% endif %}", "no"),
        ("${{ r/^\\d+$/m.test('x\\n42') }}", True),
        ('${{ r/a\\/b/.test("a/b") }}', True),
        ("${{ r/x/g.source }}", "x"),
        ("${{ r/x/g }}", "/x/g"),
        # not a literal: inside a string, a division, plain text
        ('${{ "r/x/" }}', "r/x/"),
        ("${{ parameters.count/2 }}", 4.0),
        ("${{ parameters.count / 2 }}", 4.0),
        ("r/x/ ${{ parameters.count }}", "r/x/ 8"),
    ],
)
def test_regex_literals(renderer: Renderer, source: str, expected: Any) -> None:
    assert renderer.render(source, CTX) == expected


def test_a_bad_pattern_or_flag_is_a_syntax_error_found_by_check(renderer: Renderer) -> None:
    with pytest.raises(TemplateSyntaxError, match=r"regular expression /\(/: missing \)"):
        renderer.render('${{ r/(/.test("a") }}', CTX)
    with pytest.raises(TemplateSyntaxError, match="flag 'y' is not supported"):
        renderer.render('${{ parameters.name | replace(r/a/y, "") }}', CTX)
    problems = renderer.check({"a": '${{ r/(/.test("a") }}', "b": "${{ r/ok/.test('ok') }}"})
    assert problems == ["a: regular expression /(/: missing ) at position 1"]


def test_a_backtracking_pattern_is_stopped(renderer: Renderer) -> None:
    # (a|a)* on 30 a's and a b takes 2^30 steps: only the per-call limit ends it
    with pytest.raises(TemplateRenderError, match="backtracks too much"):
        renderer.render('${{ parameters.long | replace(r/^(a|a)*$/, "") }}', CTX)


@pytest.mark.parametrize(
    "source",
    ["${{ r/x/._compiled }}", "${{ r/x/['_compiled'] }}", "${{ r/x/.__class__ }}"],
)
def test_the_regex_object_exposes_no_internals(renderer: Renderer, source: str) -> None:
    with pytest.raises(TemplateSecurityError):
        renderer.render(source, CTX)


def test_the_output_limit_applies(ctx: dict[str, Any]) -> None:
    small = Renderer(max_output=1_000)
    with pytest.raises(TemplateSecurityError, match="over the limit"):
        small.render('${{ ("a" * 900) | replace(r/a/g, "aa") }}', ctx)
