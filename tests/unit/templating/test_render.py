"""The Renderer's contract: types kept, undefined handling, deep rendering,
Nunjucks syntax, whole files, checks."""

from __future__ import annotations

from typing import Any

import pytest

from falsework.errors import TemplateRenderError, TemplateSyntaxError
from falsework.templating import Renderer, is_truthy


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("${{ parameters.name }}", "my-svc"),
        ("${{ parameters.count }}", 3),
        ("${{ parameters.ratio }}", 1.5),
        ("${{ parameters.flag }}", True),
        ("${{ parameters.off }}", False),
        ("${{ parameters.tags }}", ["b", "a", "c"]),
        ("${{ parameters.labels }}", {"app": "web", "tier": "front"}),
        ("${{ parameters.nothing }}", None),
        ("${{ parameters.count + 1 }}", 4),
        ("${{ [parameters.count, parameters.name] }}", [3, "my-svc"]),
        ("${{ {'a': parameters.count} }}", {"a": 3}),
        ("${{ {a: parameters.count, self: 1} }}", {"a": 3, "self": 1}),
        ("${{parameters.count}}", 3),
        ("${{- parameters.count -}}", 3),
    ],
)
def test_lone_expression_keeps_its_type(
    renderer: Renderer, ctx: dict[str, Any], source: str, expected: Any
) -> None:
    result = renderer.render(source, ctx)
    assert result == expected
    assert type(result) is type(expected)


def test_lone_empty_string_stays_a_string_as_in_backstage(
    renderer: Renderer, ctx: dict[str, Any]
) -> None:
    # Backstage renders a lone expression through `| dump` and parses it back:
    # only an undefined value disappears, an empty string stays.
    assert renderer.render("${{ parameters.empty }}", ctx) == ""
    assert renderer.render("${{ parameters.missing | lower }}", ctx) == ""


@pytest.mark.parametrize(
    "source",
    [
        "${{ parameters.missing }}",
        "${{ parameters.a.b.c }}",
        "${{ nope.a.b }}",
        "${{ steps.never.output.x }}",
    ],
)
def test_undefined_renders_none(renderer: Renderer, ctx: dict[str, Any], source: str) -> None:
    assert renderer.render(source, ctx) is None


def test_text_rendering_empty_is_none(renderer: Renderer, ctx: dict[str, Any]) -> None:
    assert renderer.render("${{ parameters.empty }}${{ parameters.missing }}", ctx) is None
    assert renderer.render("{% if parameters.off %}x{% endif %}", ctx) is None
    assert renderer.render("a${{ parameters.a.b.c }}", ctx) == "a"


def test_text_prints_values_as_nunjucks_does(renderer: Renderer, ctx: dict[str, Any]) -> None:
    assert renderer.render("v=${{ parameters.flag }}", ctx) == "v=true"
    assert renderer.render("v=${{ parameters.off }}", ctx) == "v=false"
    assert renderer.render("v=${{ parameters.tags }}", ctx) == "v=b,a,c"
    assert renderer.render("v=${{ parameters.nothing }}", ctx) == "v="
    assert renderer.render("v=${{ 2.0 }}", ctx) == "v=2"
    assert renderer.render("v=${{ parameters.labels }}", ctx) == 'v={"app":"web","tier":"front"}'


def test_deep_render_walks_dicts_and_lists(renderer: Renderer, ctx: dict[str, Any]) -> None:
    value = {
        "url": "./skeleton",
        "values": {"name": "${{ parameters.name }}", "n": "${{ parameters.count }}"},
        "list": ["${{ parameters.flag }}", "x-${{ parameters.name }}", 7, None, True],
        "gone": "${{ parameters.missing }}",
        "${{ keys }}": "are not rendered",
    }
    assert renderer.render(value, ctx) == {
        "url": "./skeleton",
        "values": {"name": "my-svc", "n": 3},
        "list": [True, "x-my-svc", 7, None, True],
        "${{ keys }}": "are not rendered",
    }  # an undefined value leaves its key out, as Backstage does


def test_render_copies_values_out_of_the_context(renderer: Renderer, ctx: dict[str, Any]) -> None:
    tags = renderer.render("${{ parameters.tags }}", ctx)
    tags.append("z")
    assert ctx["parameters"]["tags"] == ["b", "a", "c"]


def test_non_strings_pass_through(renderer: Renderer, ctx: dict[str, Any]) -> None:
    assert renderer.render(5, ctx) == 5
    assert renderer.render(None, ctx) is None
    assert renderer.render("plain text", ctx) == "plain text"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("${{ parameters.name === 'my-svc' }}", True),
        ("${{ parameters.name !== 'my-svc' }}", False),
        ("${{ parameters.count === 3 and parameters.flag }}", True),
        ("${{ 'a===b' }}", "a===b"),
        ('${{ "x!==y" == "x!==y" }}', True),
        ("${{ 'it\\'s === ok' }}", "it's === ok"),
        ("{% if parameters.name === 'my-svc' %}yes{% endif %}", "yes"),
        ("a === b ${{ 1 === 1 }}", "a === b true"),
        ("{# a === b #}${{ 1 !== 2 }}", True),
        ("{% raw %}${{ 1 === 1 }}{% endraw %}", "${{ 1 === 1 }}"),
    ],
)
def test_strict_equality_is_rewritten_outside_strings_only(
    renderer: Renderer, ctx: dict[str, Any], source: str, expected: Any
) -> None:
    assert renderer.render(source, ctx) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("${{ parameters.name + '-' + parameters.count }}", "my-svc-3"),
        ("${{ 'v' + 1.0 }}", "v1"),
        ("${{ 'on: ' + parameters.flag }}", "on: true"),
        ("${{ 'x' + parameters.missing }}", "x"),
        ("${{ parameters.count + 2 }}", 5),
        ("${{ parameters.tags + ['d'] }}", ["b", "a", "c", "d"]),
        ("${{ parameters.name ~ 1 ~ true }}", "my-svc1true"),
        ("${{ true and not false }}", True),
        ("${{ parameters.missing or 'fallback' }}", "fallback"),
        ("${{ 'a' if parameters.flag else 'b' }}", "a"),
        ("${{ 'b' in parameters.tags }}", True),
        ("${{ 'z' not in parameters.tags }}", True),
        ("${{ null }}", None),
        ("${{ none is none }}", True),
        ("${{ 7 // 2 }}", 3),
        ("${{ 7 % 4 }}", 3),
        ("${{ 2 ** 10 }}", 1024),
        ("${{ parameters.name.length }}", 6),
        ("${{ parameters.tags.length }}", 3),
        ("${{ parameters.name.toUpperCase() }}", "MY-SVC"),
        ("${{ parameters.name.startsWith('my') }}", True),
        ("${{ parameters.name.endsWith('svc') }}", True),
        ("${{ parameters.name.includes('-') }}", True),
        ("${{ parameters.name.indexOf('s') }}", 3),
        ("${{ parameters.name.substring(0, 2) }}", "my"),
        ("${{ parameters.name.split('-') }}", ["my", "svc"]),
        ("${{ ' x '.trim() }}", "x"),
        ("${{ parameters.tags.includes('a') }}", True),
        ("${{ parameters.tags.join('+') }}", "b+a+c"),
        ("${{ parameters.values }}", "a parameter named like a dict method"),
        ("${{ steps['fetch-base'].output.remoteUrl }}", "https://example.com/r.git"),
        ("${{ steps.fetch.output.files }}", 2),
        ("${{ user.entity.metadata.name }}", "ann"),
        ("${{ context.task.id }}", "t-1"),
    ],
)
def test_nunjucks_expressions(
    renderer: Renderer, ctx: dict[str, Any], source: str, expected: Any
) -> None:
    assert renderer.render(source, ctx) == expected


def test_blocks_loops_and_elseif(renderer: Renderer, ctx: dict[str, Any]) -> None:
    source = (
        "{% for t in parameters.tags %}${{ loop.index }}:${{ t }}"
        "{% if not loop.last %},{% endif %}{% endfor %}"
    )
    assert renderer.render(source, ctx) == "1:b,2:a,3:c"
    assert renderer.render(
        "{% for k, v in parameters.labels %}${{ k }}=${{ v }};{% endfor %}", ctx
    ) == ("app=web;tier=front;")
    elseif = "{% if parameters.off %}a{% elseif parameters.flag %}b{% else %}c{% endif %}"
    assert renderer.render(elseif, ctx) == "b"
    assert renderer.render("{%- if parameters.flag %}yes{% endif -%}", ctx) == "yes"
    assert renderer.render("{% set x = parameters.count * 2 %}${{ x }}", ctx) == "6"
    assert renderer.render("a{# comment #}b", ctx) == "ab"
    looped = "{% for p in parameters.people %}${{ loop.index0 }}${{ p.name }}{% endfor %}"
    assert renderer.render(looped, ctx) == "0ann1bob"


def test_evaluate_and_is_truthy(renderer: Renderer, ctx: dict[str, Any]) -> None:
    assert renderer.evaluate("${{ parameters.flag }}", ctx) is True
    assert renderer.evaluate("${{ parameters.count > 5 }}", ctx) is False
    assert renderer.evaluate(True, ctx) is True
    for falsy in (False, "", 0, None, [], {}):
        assert not is_truthy(falsy)
    for truthy in (True, "false", 1, [0], {"a": 1}, "x"):
        assert is_truthy(truthy)
    assert not is_truthy(renderer.evaluate("${{ parameters.missing }}", ctx))


def test_always_and_failure_read_the_run_status(renderer: Renderer, ctx: dict[str, Any]) -> None:
    assert renderer.evaluate("${{ always() }}", ctx) is True
    assert renderer.evaluate("${{ failure() }}", ctx) is False
    assert renderer.evaluate("${{ success() }}", ctx) is True
    failed = {**ctx, "__status": "failed"}
    assert renderer.evaluate("${{ failure() }}", failed) is True
    assert renderer.evaluate("${{ success() }}", failed) is False
    assert renderer.evaluate("${{ always() }}", failed) is True


def test_render_string_keeps_trailing_newlines_and_trims_on_request(
    renderer: Renderer, ctx: dict[str, Any]
) -> None:
    assert renderer.render_string("name: ${{ parameters.name }}\n\n", ctx) == "name: my-svc\n\n"
    assert renderer.render_string("", ctx) == ""
    source = "a\n  {% if parameters.flag %}\nb\n  {% endif %}\nc\n"
    assert renderer.render_string(source, ctx) == "a\n  \nb\n  \nc\n"
    assert renderer.render_string(source, ctx, trim_blocks=True) == "a\n  b\n  c\n"
    assert renderer.render_string(source, ctx, trim_blocks=True, lstrip_blocks=True) == "a\nb\nc\n"
    # a whole file is always text, even when it is one lone expression
    assert renderer.render_string("${{ parameters.count }}", ctx) == "3"
    assert renderer.render_string("${{ parameters.missing }}", ctx) == ""


def test_github_expressions_in_templated_files_need_raw(
    renderer: Renderer, ctx: dict[str, Any]
) -> None:
    # ${{ github.sha }} in a *templated* file renders empty, as in Backstage;
    # copyWithoutTemplating or {% raw %} keeps it.
    assert renderer.render_string("sha: ${{ github.sha }}\n", ctx) == "sha: \n"
    assert (
        renderer.render_string("{% raw %}${{ github.sha }}{% endraw %}", ctx) == "${{ github.sha }}"
    )


def test_cookiecutter_compat(ctx: dict[str, Any]) -> None:
    compat = Renderer(cookiecutter_compat=True)
    values = {"values": {"name": "svc", "tags": ["a"]}}
    assert compat.render_string("{{ cookiecutter.name }}!", values) == "svc!"
    assert compat.render_string("{{ cookiecutter.tags | jsonify }}", values) == '["a"]'
    assert compat.render_string("{{ values.name }} ${{ x }}", values) == "svc $"
    assert compat.render_string("{{ cookiecutter.name }}", {"cookiecutter": {"name": "c"}}) == "c"


def test_syntax_errors_name_the_source(renderer: Renderer, ctx: dict[str, Any]) -> None:
    with pytest.raises(
        TemplateSyntaxError, match=r"cannot parse template '\$\{\{ parameters\.name \+ \}\}'"
    ):
        renderer.render("${{ parameters.name + }}", ctx)
    with pytest.raises(TemplateSyntaxError, match="No filter named 'nosuch'"):
        renderer.render("${{ parameters.name | nosuch }}", ctx)


def test_runtime_errors_are_render_errors(renderer: Renderer, ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateRenderError, match="cannot render"):
        renderer.render("${{ parameters.missing() }}", ctx)


def test_check_reports_every_unparsable_string_with_its_path(renderer: Renderer) -> None:
    value = {
        "ok": "${{ parameters.name }}",
        "bad": "${{ parameters.name + }}",
        "list": ["fine", "{% if %}"],
        "nested": {"deep": "${{ ''.__class__ }}"},
    }
    problems = renderer.check(value)
    assert len(problems) == 3
    assert problems[0].startswith("bad: cannot parse template")
    assert problems[1].startswith("list[1]: cannot parse template")
    assert problems[2].startswith("nested.deep: template expressions may not access '__class__'")
    assert renderer.check("${{ x( }}")[0].startswith("cannot parse template")
    assert renderer.check({"a": "${{ a === b }}", "b": 3}) == []


def test_compiles_each_source_once(renderer: Renderer, ctx: dict[str, Any]) -> None:
    source = "${{ parameters.count * 7 }}"
    compiler = renderer._main
    before = compiler.cache_info()
    for _ in range(5):
        assert renderer.render({"a": source, "b": source}, ctx) == {"a": 21, "b": 21}
    after = compiler.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 9


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("${{ parameters.missing > 3 }}", False),
        ("${{ 3 > parameters.missing }}", False),
        ("${{ parameters.missing <= 3 }}", False),
        ("${{ parameters.missing == null }}", True),
        ("${{ parameters.missing != null }}", False),
        ("${{ parameters.missing == 'x' }}", False),
        ("${{ 'a' in parameters.missing }}", False),
        ("${{ parameters.missing | length }}", 0),
        ("${{ parameters.missing | int }}", 0),
        ("${{ parameters.missing | int(5) }}", 5),
        ("${{ parameters.missing | float }}", 0.0),
        ("${{ parameters.missing[0] }}", None),
        ("${{ not parameters.missing }}", True),
    ],
)
def test_undefined_behaves_like_javascripts(
    renderer: Renderer, ctx: dict[str, Any], source: str, expected: Any
) -> None:
    assert renderer.render(source, ctx) == expected


def test_variables_lists_the_top_level_names_read(renderer: Renderer) -> None:
    source = (
        "${{ parameters.a }} {% for x in steps.s.output.l %}${{ x }}{% endfor %} ${{ secrets.T }}"
    )
    assert renderer.variables(source) == {"parameters", "steps", "secrets"}
    assert renderer.variables("${{ a === b }}") == {"a", "b"}
    assert renderer.variables("plain") == set()
    assert renderer.variables("${{ broken( }}") == set()


def test_dividing_by_zero_answers_as_javascript(renderer: Renderer, ctx: dict[str, Any]) -> None:
    assert renderer.render("${{ 1 / 0 }} ${{ -1 / 0 }} ${{ 0 / 0 }} ${{ 5 % 0 }}", ctx) == (
        "Infinity -Infinity NaN NaN"
    )
    assert renderer.render("${{ 7 // 0 }}", ctx) is None  # a lone Infinity: JSON's null
