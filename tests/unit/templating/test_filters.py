"""Every filter, test and global a template can use, with Nunjucks' behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from falsework.errors import TemplateRenderError, TemplateSyntaxError
from falsework.templating import Renderer


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # dump / jsonify: JSON.stringify
        ("${{ parameters.tags | dump }}", '["b","a","c"]'),
        ("${{ parameters.labels | dump(2) }}", '{\n  "app": "web",\n  "tier": "front"\n}'),
        ("${{ parameters.labels | dump(40) | length }}", 53),  # indent capped at 10
        ("${{ 'é\"' | dump }}", '"é\\""'),
        ("${{ parameters.missing | dump }}", None),  # undefined: nothing, as JSON.stringify
        ("${{ parameters.nothing | dump }}", "null"),
        ("${{ parameters.flag | dump }}", "true"),
        ("${{ parameters.count | jsonify }}", "3"),
        # strings
        ("${{ 'AbC' | lower }}", "abc"),
        ("${{ 'AbC' | upper }}", "ABC"),
        ("${{ 'hello world' | capitalize }}", "Hello world"),
        ("${{ 'hello big world' | title }}", "Hello Big World"),
        ("${{ 'hELLO my-world' | title }}", "Hello My-world"),
        ("${{ '  x  ' | trim }}", "x"),
        ("${{ 'a-b-c' | replace('-', '_') }}", "a_b_c"),
        ("${{ 'a-b-c' | replace('-', '_', 1) }}", "a_b-c"),
        ("${{ 'abc' | replace('', '.') }}", ".a.b.c."),
        ("${{ 'the quick brown fox' | truncate(9) }}", "the quick..."),
        ("${{ 'the quick brown fox' | truncate(7) }}", "the..."),
        ("${{ 'the quick brown fox' | truncate(7, true) }}", "the qui..."),
        ("${{ 'the quick brown fox' | truncate(7, true, '!') }}", "the qui!"),
        ("${{ 'short' | truncate(10) }}", "short"),
        ("${{ 'a\nb' | indent }}", "a\n  b"),
        ("${{ 'a\nb' | indent(4) }}", "a\n    b"),
        ("${{ 'a\nb' | indent(2, true) }}", "  a\n  b"),
        ("${{ 'ab' | center(6) }}", "  ab  "),
        ("${{ 'a b&c/d' | urlencode }}", "a%20b%26c%2Fd"),
        ("${{ parameters.labels | urlencode }}", "app=web&tier=front"),
        ("${{ 'a\nb' | nl2br }}", "a<br />\nb"),
        ("${{ '<b>x</b>' | striptags }}", "x"),
        ("${{ '<b>' | escape }}", "&lt;b&gt;"),
        ("${{ 'one two  three' | wordcount }}", 3),
        ("${{ 'abc' | reverse }}", "cba"),
        ("${{ 'abc' | first }}", "a"),
        ("${{ 'abc' | last }}", "c"),
        ("${{ 'abc' | length }}", 3),
        ("${{ '<b>' | safe }}", "<b>"),
        # conversions
        ("${{ '42' | int }}", 42),
        ("${{ '4.7' | int }}", 4),
        ("${{ 'x' | int }}", 0),
        ("${{ 'x' | int(7) }}", 7),
        ("${{ '2.5' | float }}", 2.5),
        ("${{ parameters.count | string }}", "3"),
        ("${{ parameters.flag | string }}", "true"),
        ("${{ 2.567 | round(1) }}", 2.6),
        ("${{ -3 | abs }}", 3),
        # lists
        ("${{ parameters.tags | length }}", 3),
        ("${{ parameters.labels | length }}", 2),
        ("${{ parameters.missing | length }}", 0),
        ("${{ parameters.tags | join }}", "bac"),  # Nunjucks: nothing between
        ("${{ parameters.tags.join() }}", "b,a,c"),  # JavaScript: a comma
        ("${{ parameters.tags | join('-') }}", "b-a-c"),
        ("${{ parameters.people | join(', ', 'name') }}", "ann, bob"),
        ("${{ parameters.tags | first }}", "b"),
        ("${{ parameters.tags | last }}", "c"),
        ("${{ parameters.tags | sort }}", ["a", "b", "c"]),
        ("${{ parameters.tags | sort(true) }}", ["c", "b", "a"]),
        (
            "${{ parameters.people | sort(attribute='age') | map(attribute='name') | list }}",
            ["bob", "ann"],
        ),
        ("${{ parameters.tags | reverse }}", ["c", "a", "b"]),
        ("${{ parameters.people | selectattr('admin') | map(attribute='name') | list }}", ["ann"]),
        ("${{ parameters.people | rejectattr('admin') | map(attribute='name') | join }}", "bob"),
        (
            "${{ parameters.people | selectattr('name', 'equalto', 'bob') | first }}",
            {"name": "bob", "admin": False, "age": 30},
        ),
        ("${{ parameters.people | selectattr('age', 'gt', 35) | list | length }}", 1),
        ("${{ [1, 2, 3, 4] | select('odd') | list }}", [1, 3]),
        ("${{ [1, 2, 3, 4] | reject('even') | list }}", [1, 3]),
        ("${{ [0, 1, '', 'x'] | select('truthy') | list }}", [1, "x"]),
        ("${{ [0, 1, '', 'x'] | select('falsy') | list }}", [0, ""]),
        ("${{ [1, 2, 3] | sum }}", 6),
        ("${{ [3, 1, 2] | min }}", 1),
        ("${{ [3, 1, 2] | max }}", 3),
        ("${{ [1, 1, 2] | unique | list }}", [1, 2]),
        ("${{ [1, 2, 3, 4, 5] | batch(2) | list }}", [[1, 2], [3, 4], [5]]),
        ("${{ [1, 2, 3] | batch(2, 0) | list }}", [[1, 2], [3, 0]]),
        ("${{ [1, 2, 3, 4, 5] | slice(2) }}", [[1, 2, 3], [4, 5]]),
        ("${{ parameters.labels | dictsort | first }}", ["app", "web"]),
        ("${{ parameters.labels | items | list | length }}", 2),
        ("${{ parameters.people | groupby('admin') | length }}", 2),
        (
            "${{ parameters.people | groupby('admin') | dump }}",
            '{"true":[{"name":"ann","admin":true,"age":40}],'
            '"false":[{"name":"bob","admin":false,"age":30}]}',
        ),
        (
            "{% for admin, people in parameters.people | groupby('admin') %}"
            "${{ admin }}=${{ people | join(',', 'name') }};{% endfor %}",
            "true=ann;false=bob;",
        ),
        ("${{ parameters.tags | list }}", ["b", "a", "c"]),
        ("${{ {'a': 1, 'b': 2} | items }}", [["a", 1], ["b", 2]]),
        ("{% for k, v in {'a': 1} | items %}${{ k }}=${{ v }}{% endfor %}", "a=1"),
        ("${{ parameters.count | length }}", None),  # a number has no length
        ("${{ parameters.nothing | length }}", 0),
        ("${{ parameters.tags | random in parameters.tags }}", True),
        # default
        ("${{ parameters.missing | default('d') }}", "d"),
        ("${{ parameters.missing | d('d') }}", "d"),
        ("${{ parameters.name | default('d') }}", "my-svc"),
        ("${{ parameters.nothing | default('d') }}", None),
        ("${{ parameters.empty | default('d', true) }}", "d"),
    ],
)
def test_builtin_filters(
    renderer: Renderer, ctx: dict[str, Any], source: str, expected: Any
) -> None:
    assert renderer.render(source, ctx) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "${{ 'github.com?owner=acme&repo=svc' | parseRepoUrl }}",
            {"host": "github.com", "owner": "acme", "repo": "svc"},
        ),
        (
            "${{ 'gitlab.example.com?owner=g%2Fsub&repo=svc' | parseRepoUrl }}",
            {"host": "gitlab.example.com", "owner": "g/sub", "repo": "svc"},
        ),
        (
            "${{ 'bitbucket.org?workspace=w&project=p&repo=r' | parseRepoUrl }}",
            {"host": "bitbucket.org", "workspace": "w", "project": "p", "repo": "r"},
        ),
        (
            "${{ 'dev.azure.com?organization=o&project=p&repo=r' | parseRepoUrl }}",
            {"host": "dev.azure.com", "organization": "o", "project": "p", "repo": "r"},
        ),
        ("${{ (parameters.repoUrl | parseRepoUrl).repo }}", "my-svc"),
        ("${{ parameters.repoUrl | parseRepoUrl | pick('owner') }}", "acme"),
        ("${{ parameters.repoUrl | projectSlug }}", "acme/my-svc"),
        (
            "${{ 'component:ns/name' | parseEntityRef }}",
            {"kind": "component", "namespace": "ns", "name": "name"},
        ),
        (
            "${{ 'Group:team' | parseEntityRef }}",
            {"kind": "Group", "namespace": "default", "name": "team"},
        ),
        (
            "${{ 'team' | parseEntityRef({'defaultKind': 'group', 'defaultNamespace': 'org'}) }}",
            {"kind": "group", "namespace": "org", "name": "team"},
        ),
        (
            '${{ parameters.owner | parseEntityRef({ defaultKind:"group", '
            'defaultNamespace:"another-namespace" }) }}',
            {"kind": "group", "namespace": "default", "name": "team-a"},
        ),
        (
            "${{ 'techdocs' | parseEntityRef({ defaultKind:\"group\", "
            'defaultNamespace:"another-namespace" }) }}',
            {"kind": "group", "namespace": "another-namespace", "name": "techdocs"},
        ),
        (
            "${{ 'ns/team' | parseEntityRef({'defaultKind': 'group'}) }}",
            {"kind": "group", "namespace": "ns", "name": "team"},
        ),
        ("${{ (parameters.owner | parseEntityRef).name }}", "team-a"),
        (
            "${{ 'url:default/http://x' | parseEntityRef }}",
            {"kind": "url", "namespace": "default", "name": "http://x"},
        ),
        ("${{ parameters | pick('labels.app') }}", "web"),
        ("${{ parameters | pick('people[1].name') }}", "bob"),
        ("${{ parameters | pick('labels.nope') }}", None),
        ("${{ parameters | pick('tags') }}", ["b", "a", "c"]),
    ],
)
def test_backstage_filters(
    renderer: Renderer, ctx: dict[str, Any], source: str, expected: Any
) -> None:
    assert renderer.render(source, ctx) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("${{ 'github.com?owner=o' | parseRepoUrl }}", "missing repo"),
        ("${{ 'github.com?repo=r' | parseRepoUrl }}", "missing owner"),
        ("${{ 'bitbucket.org?project=p&repo=r' | parseRepoUrl }}", "missing workspace"),
        ("${{ 'dev.azure.com?organization=o&repo=r' | parseRepoUrl }}", "missing project"),
        ("${{ '' | parseRepoUrl }}", "Invalid repo URL"),
        ("${{ 'github.com?repo=r' | projectSlug }}", "missing owner"),
        ("${{ 'name' | parseEntityRef }}", "missing or empty kind"),
        ("${{ 'a:' | parseEntityRef }}", "was not on the form"),
        ("${{ '' | parseEntityRef }}", "must not be empty"),
    ],
)
def test_backstage_filter_errors(
    renderer: Renderer, ctx: dict[str, Any], source: str, message: str
) -> None:
    with pytest.raises(TemplateRenderError, match=message):
        renderer.render(source, ctx)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("${{ parameters.missing is defined }}", False),
        ("${{ parameters.name is defined }}", True),
        ("${{ parameters.missing is undefined }}", True),
        ("${{ parameters.nothing is null }}", True),
        ("${{ parameters.nothing is none }}", True),
        ("${{ parameters.name is string }}", True),
        ("${{ parameters.count is number }}", True),
        ("${{ parameters.count is odd }}", True),
        ("${{ parameters.count is divisibleby(3) }}", True),
        ("${{ parameters.labels is mapping }}", True),
        ("${{ parameters.tags is iterable }}", True),
        ("${{ parameters.name is truthy }}", True),
        ("${{ parameters.empty is falsy }}", True),
        ("${{ parameters.name is equalto('my-svc') }}", True),
    ],
)
def test_tests(renderer: Renderer, ctx: dict[str, Any], source: str, expected: Any) -> None:
    assert renderer.render(source, ctx) is expected


def test_range_global(renderer: Renderer, ctx: dict[str, Any]) -> None:
    assert renderer.render("${{ range(3) | list }}", ctx) == [0, 1, 2]
    assert renderer.render("${{ range(1, 7, 2) | join(',') }}", ctx) == "1,3,5"
    assert renderer.render("{% for i in range(3) %}${{ i }}{% endfor %}", ctx) == "012"


@pytest.mark.parametrize("name", ["format", "pprint", "xmlattr", "filesizeformat", "wordwrap"])
def test_python_only_filters_are_gone(renderer: Renderer, ctx: dict[str, Any], name: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=f"No filter named '{name}'"):
        renderer.render(f"${{{{ parameters.name | {name} }}}}", ctx)
