"""Files that differ only in their plain text share one compiled template (the
Renderer's shapes): each renders exactly as if compiled on its own, errors
included, and a changed tag compiles anew."""

from __future__ import annotations

from typing import Any

import pytest

from falsework.errors import TemplateError
from falsework.templating import Renderer
from falsework.templating.renderer import _Compiler

CTX: dict[str, Any] = {
    "values": {"name": "svc", "port": 8080, "on": True, "off": False, "tags": ["a", "b"]},
}

# (source, a second source of the same tags with other text), in Falsework's
# syntax; the second of each pair is rendered through the first's shape
PAIRS = [
    ("# ${{ values.name }}\nline\n", "// ${{ values.name }}\nother line\n\n"),
    ("a ${{ values.port }} b ${{ values.name }} c", "x ${{ values.port }} y ${{ values.name }} z"),
    (
        "{% if values.on %}yes\n{% else %}no\n{% endif %}tail",
        "{% if values.on %}oui\n{% else %}non\n{% endif %}fin",
    ),
    (
        "{% for t in values.tags %}  - ${{ t }}\n{% else %}none{% endfor %}\nend\n",
        "{% for t in values.tags %}\t* ${{ t }};\n{% else %}rien{% endfor %}\nfin\n\n",
    ),
    (
        "a  {%- if values.on -%}  b  {%- endif -%}  c",
        "x  {%- if values.on -%}  y  {%- endif -%}  z",
    ),
    ("{# note #}text{# more #}", "{# note #}other{# more #}"),
    ("{% raw %}${{ kept }} {{ too }}{% endraw %}!", "{% raw %}${{ other }}{% endraw %}?"),
    (
        "{% macro m(x) %}<${{ x }}>{% endmacro %}${{ m(values.name) }} and ${{ m('y') }}",
        "{% macro m(x) %}[${{ x }}]{% endmacro %}${{ m(values.name) }} or ${{ m('y') }}",
    ),
    (
        "{% set block %}in ${{ values.name }} set{% endset %}${{ block | upper }}",
        "{% set block %}dans ${{ values.name }} ens{% endset %}${{ block | upper }}",
    ),
    (
        "{% filter upper %}text ${{ values.name }}{% endfilter %} after",
        "{% filter upper %}mots ${{ values.name }}{% endfilter %} apres",
    ),
    ("{{ not ours }} ${{ values.name }} {{ also text }}", "{{ x }} ${{ values.name }} {{ y }}"),
    ("${{ values.name }}", "${{ values.name }}"),
    ("a\r\nb ${{ values.name }}\r\n", "c\r\n${{ values.name }}\rd"),
    ("only text {% if values.off %}hidden{% endif %}", "other {% if values.off %}gone{% endif %}"),
    (
        "{% macro m() %}<${{ caller() }}>{% endmacro %}"
        "{% call m() %}in ${{ values.name }}{% endcall %}",
        "{% macro m() %}[${{ caller() }}]{% endmacro %}"
        "{% call m() %}im ${{ values.name }}{% endcall %}",
    ),
    (
        "{% for t in values.tags %}{% for u in values.tags %}"
        "${{ t }}-${{ u }} {% endfor %}|{% endfor %}",
        "{% for t in values.tags %}{% for u in values.tags %}"
        "${{ t }}+${{ u }};{% endfor %}/{% endfor %}",
    ),
]


def _alone(renderer: Renderer, source: str, trim: bool = False, lstrip: bool = False) -> str:
    """``source`` rendered by a renderer that compiles every file on its own."""
    alone = Renderer()
    for key in ((False, False), (True, False), (False, True), (True, True)):
        alone._compiler(*key).shape = lambda source: None  # type: ignore[method-assign]
    return alone.render_string(source, CTX, trim_blocks=trim, lstrip_blocks=lstrip)


@pytest.mark.parametrize(("first", "second"), PAIRS)
@pytest.mark.parametrize(("trim", "lstrip"), [(False, False), (True, True)])
def test_files_of_one_shape_render_as_each_alone(
    first: str, second: str, trim: bool, lstrip: bool
) -> None:
    renderer = Renderer()
    compiler = renderer._compiler(trim, lstrip)
    for source in (first, second):
        got = renderer.render_string(source, CTX, trim_blocks=trim, lstrip_blocks=lstrip)
        assert got == _alone(renderer, source, trim, lstrip)
    # the second found the first's compiled template
    assert len(compiler._shapes) == 1
    shaped = compiler.shape(second)
    assert shaped is not None and shaped.text is not None


def test_a_changed_tag_compiles_anew_and_changed_text_does_not() -> None:
    renderer = Renderer()
    compiler = renderer._main
    assert renderer.render_string("a ${{ values.name }}\n", CTX) == "a svc\n"
    assert renderer.render_string("b ${{ values.name }}\n", CTX) == "b svc\n"
    assert len(compiler._shapes) == 1
    assert renderer.render_string("a ${{ values.port }}\n", CTX) == "a 8080\n"
    assert len(compiler._shapes) == 2
    # the same file again: the compile cache, by content
    hits = compiler.cache_info().hits
    assert renderer.render_string("a ${{ values.port }}\n", CTX) == "a 8080\n"
    assert compiler.cache_info().hits == hits + 1


def test_text_inside_autoescape_is_never_shaped() -> None:
    renderer = Renderer()
    source = "{% autoescape true %}<b>${{ values.name }}</b>{% endautoescape %}"
    assert renderer._main.shape(source) is None
    assert renderer.render_string(source, CTX) == "<b>svc</b>"


def test_the_text_variable_is_not_reachable_from_a_template() -> None:
    renderer = Renderer()
    # a template naming it compiles on its own, where it is undefined
    assert renderer._main.shape("x ${{ falsework_text }} y") is None
    assert renderer.render_string("x ${{ falsework_text }} y", CTX) == "x  y"
    assert renderer.render_string("x ${{ falsework_text | length }}", CTX) == "x 0"


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_a_shapes_text_is_written_without_the_sandbox(first: str, second: str) -> None:
    # Its pieces are plain strings: written as they are, not looked up through the
    # sandbox's getitem nor passed to the finalize (what a template's own
    # expressions still are).
    renderer = Renderer()
    env = renderer._main.environment
    calls: list[Any] = []
    getitem, finalize = env.getitem, env.finalize
    env.getitem = lambda obj, arg: calls.append(arg) or getitem(obj, arg)  # type: ignore[method-assign]
    # (a plain function: the generated code then calls it with the value alone)
    env.finalize = lambda value: calls.append(value) or finalize(env, value)
    for source in (first, second):
        calls.clear()
        got = renderer.render_string(source, CTX)
        assert got == _alone(renderer, source)
        shaped = renderer._main.shape(source)
        if shaped is not None and shaped.text:
            assert not any(piece in calls for piece in shaped.text if piece.strip()), calls


@pytest.mark.parametrize(
    "source",
    [
        "a ${{ values.name \n",  # unclosed
        "{% if values.on %}never closed",
        "{% include 'x' %}",  # refused by the checks
        "${{ values.__class__ }}",
        "line\n{% for %}\n",
    ],
)
def test_errors_are_the_ones_of_a_file_compiled_alone(source: str) -> None:
    renderer = Renderer()
    with pytest.raises(TemplateError) as shaped:
        renderer.render_string("first text\n" + source, CTX)
    with pytest.raises(TemplateError) as alone:
        _alone(renderer, "first text\n" + source)
    assert type(shaped.value) is type(alone.value)
    assert shaped.value.message == alone.value.message


def test_the_shapes_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("falsework.templating.renderer._SHAPES", 3)
    renderer = Renderer()
    for n in range(6):
        source = f"${{{{ values.name }}}} {n} {{% if values.on %}}x{n}{{% endif %}}" + (
            "${{ values.port }}" * n
        )
        assert renderer.render_string(source, CTX).startswith(f"svc {n} x{n}")
    compiler: _Compiler = renderer._main
    assert len(compiler._shapes) == 3


# One renderer, these in turn: each renders (or fails) as if compiled alone,
# whichever shape it meets first (the plain shapes are tried before the lexer).
SEQUENCE = [
    "a ${{ values.name }} b",
    "c ${{ values.name }} d",
    "a ${{ values.name }} b ${{ values.port }}",
    "a ${{ values.name }} b {{ not a tag }} {% if values.on %}y{% endif %}",
    "e ${{ values.name }} f",
    "e ${{ values.name }}",
    "${{ values.name }} f",
    "${{ values.name }}${{ values.port }}",
    "g ${{- values.name }} h",
    "g ${{ values.name -}} h",
    "i ${{ values.name }} {% raw %}${{ kept }}{% endraw %}",
    "j ${{ values.name }} {%- if values.on %} k{% endif %}",
    "q ${{ '}}' }} r ${{ values.name }}",
    "q ${{ '}}' }} r ${{ values.name }}${{ values.name }}",
    's ${{ "${{" }} t',
    's ${{ "${{" }} ${{ values.port }}',
    "u\r\n${{ values.name }}\r\nv",
    "w {# a comment #} x ${{ values.name }}",
    "w {# other words #} x ${{ values.name }}",
    "{% if values.on %}open",
    "y {% if values.on %}${{ values.nope.deeper }}{% endif %}",
    "z ${{ values.name }} z",
    "{% autoescape true %}<b>${{ values.name }}</b>{% endautoescape %}",
    "{% autoescape true %}<i>${{ values.name }}</i>{% endautoescape %}",
    "<b>${{ values.name }}</b>",
]


@pytest.mark.parametrize(("trim", "lstrip"), [(False, False), (True, True)])
def test_a_renderer_gives_each_file_what_it_alone_gives(trim: bool, lstrip: bool) -> None:
    renderer = Renderer()
    for source in SEQUENCE * 2:
        try:
            got: Any = renderer.render_string(source, CTX, trim_blocks=trim, lstrip_blocks=lstrip)
        except TemplateError as exc:
            got = (type(exc), exc.message)
        try:
            alone: Any = _alone(renderer, source, trim, lstrip)
        except TemplateError as exc:
            alone = (type(exc), exc.message)
        assert got == alone, source


def test_plain_shapes_are_tried_before_the_lexer() -> None:
    renderer = Renderer()
    compiler = renderer._main
    renderer.render_string("a ${{ values.name }} b\n", CTX)
    assert len(compiler._plain_shapes) == 1
    lexed: list[str] = []
    lexer = compiler.environment.lexer
    original = lexer.tokeniter

    def counting(source: str, *args: Any, **kwargs: Any) -> Any:
        lexed.append(source)
        return original(source, *args, **kwargs)

    lexer.tokeniter = counting  # type: ignore[method-assign]
    assert renderer.render_string("other ${{ values.name }} text\n", CTX) == "other svc text\n"
    assert lexed == []
    # whitespace control is never matched as plain text: the lexer decides
    assert renderer.render_string("x ${{- values.name }} y", CTX) == "xsvc y"
    assert renderer.render_string("z ${{- values.name }} w", CTX) == "zsvc w"
    assert [t for t in lexed if t] == ["x ${{- values.name }} y", "z ${{- values.name }} w"]


# (source, what it renders to without and with trimBlocks + lstripBlocks): the
# text between tags keeps its line breaks as written, as Nunjucks keeps them
# (Jinja's lexer alone makes every one an LF); a value keeps its own.
LINE_BREAKS = [
    ("a\r\nname: ${{ values.name }}\r\n", "a\r\nname: svc\r\n", "a\r\nname: svc\r\n"),
    ("lf\ncrlf\r\ncr\r${{ values.name }}", "lf\ncrlf\r\ncr\rsvc", "lf\ncrlf\r\ncr\rsvc"),
    ("${{ values.name }}\r\n\r\n", "svc\r\n\r\n", "svc\r\n\r\n"),
    ("no newline at the end ${{ values.name }}", "no newline at the end svc", None),
    (
        "x\r\n  {% if values.on %}\r\n  on ${{ values.name }}\r\n  {% endif %}\r\nend\r\n",
        "x\r\n  \r\n  on svc\r\n  \r\nend\r\n",
        "x\r\n  on svc\r\nend\r\n",
    ),
    (
        "{% for t in values.tags %}\r\n- ${{ t }}\r\n{% endfor %}\r\n",
        "\r\n- a\r\n\r\n- b\r\n\r\n",
        "- a\r\n- b\r\n",
    ),
    ("k:  {%- if values.on %}\r\n v\r\n{%- endif %}\r\n", "k:\r\n v\r\n", "k: v"),
    ("{# a\r\n note #}\r\nA\r\n${{ values.name }}", "\r\nA\r\nsvc", "A\r\nsvc"),
    (
        "{% raw %}${{ x }}\r\n{% endraw %}\r\n${{ values.name }}",
        "${{ x }}\r\n\r\nsvc",
        "${{ x }}\r\nsvc",
    ),
    ("t: ${{ values.name\r\n }}\r\n${{ values.multi }}\r\n", "t: svc\r\nx\ny\r\n", None),
    # compiled on its own (it names the text variable): the same
    ("${{ falsework_text }}a\r\n${{ values.name }}\r\n", "a\r\nsvc\r\n", None),
]


@pytest.mark.parametrize(("source", "plain", "trimmed"), LINE_BREAKS)
def test_line_breaks_between_tags_are_kept_as_written(
    source: str, plain: str, trimmed: str | None
) -> None:
    ctx = {"values": {**CTX["values"], "multi": "x\ny"}}
    for trim, expected in ((False, plain), (True, trimmed if trimmed is not None else plain)):
        renderer = Renderer()
        alone = Renderer()
        alone._compiler(trim, trim).shape = lambda source: None  # type: ignore[method-assign]
        for which in (renderer, renderer, alone):  # a shape, the compile cache, alone
            got = which.render_string(source, ctx, trim_blocks=trim, lstrip_blocks=trim)
            assert got == expected, (trim, which is alone)
        if not trim and "\r" in source:
            # another file of the same tags, through the plain shape: its own breaks
            other = source.replace("\r\n", "\n").replace("\r", "\n")
            want = plain.replace("\r\n", "\n").replace("\r", "\n")
            assert renderer.render_string(other, ctx) == want
