"""falsework.templates.plainschema: where it answers, it answers as jsonschema does
(the same error objects, messages and order)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import jsonschema

from falsework.errors import InputError, TemplateError
from falsework.localconfig import EXAMPLES_DIR
from falsework.templates import (
    ParameterValidationError,
    Template,
    TemplateCatalog,
    apply_defaults,
    quick_values,
    validate_values,
)
from falsework.templates.plainschema import CHECKED, DRAFT7, plain_errors, plain_schema
from falsework.templates.values import (
    MAX_VALUE_DEPTH,
    QUICK_VALUES_SIZE,
    backstage_errors,
    validator_for,
)

SCHEMAS: list[Any] = [
    {},
    {"type": "string"},
    {"type": "integer"},
    {"type": "number"},
    {"type": "boolean"},
    {"type": "null"},
    {"type": "array"},
    {"type": "object"},
    {"type": ["string", "null"]},
    {"type": "strng"},
    {"type": "string", "minLength": 2, "maxLength": 3},
    {"type": "string", "minLength": 2.5},
    {"maxLength": None},
    {"type": "number", "minimum": 1, "maximum": 2.5},
    {"minimum": "1"},
    {"enum": ["a", "b"]},
    {"enum": [1, True, None]},
    {"const": "a"},
    {"type": "string", "pattern": "^a"},
    {"type": "string", "format": "email"},
    {"type": "string", "ui:widget": "textarea", "enumNames": ["A"], "title": "T"},
    {"required": ["a"], "properties": {"a": {"type": "string"}}},
    {"required": "a"},
    {"required": ["a"], "properties": {"a": {"type": "object", "required": ["b"]}}},
    {"properties": {"a": {"type": "integer", "minimum": 0}}, "additionalProperties": False},
    {"properties": {"a": True}},
    {"properties": {"a": {"$ref": "#/definitions/x"}}, "definitions": {"x": {"type": "string"}}},
    {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
    {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    {"if": {"type": "string"}, "then": {"minLength": 1}},
    {"minLength": 3, "type": "integer", "enum": ["abcd", "x"], "maxLength": 1},
    {"maximum": 0, "type": ["integer", "string"], "minimum": 2, "enum": ["a"]},
    {
        "properties": {"a": {"type": "string", "minLength": 2}, "b": {"type": "integer"}},
        "required": ["b", "a", "c"],
        "type": "object",
    },
    {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {
                "type": "object",
                "properties": {"b": {"enum": ["y"]}, "x y": {"maximum": 1}},
                "required": ["x y", "b"],
            }
        },
    },
    {"properties": {"a": {"pattern": "^x"}}, "required": ["z"]},
]
VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    1.5,
    2,
    3,
    -1,
    "",
    "a",
    "ab",
    "abcd",
    "c",
    [],
    ["a"],
    {},
    {"a": "x"},
    {"a": 1},
    {"a": {}},
    {"a": {"b": 1}},
    {"a": None, "c": 1},
    {"b": "x"},
    {"a": {"b": "y", "x y": 2}},
    {"a": {"x y": 0.5}},
    {"a": "abc", "b": True},
    {"b": 1, "c": None},
]


def _errors(schema: Any, value: Any) -> list[str]:
    return [e.message for e in validator_for(schema).iter_errors(value)]


def _backstage(schema: Any, value: Any) -> list[dict[str, Any]]:
    """The errors the jsonschema path reports."""
    return [b for e in validator_for(schema).iter_errors(value) for b in backstage_errors(e)]


def test_the_draft7_keywords_are_jsonschemas() -> None:
    assert set(jsonschema.Draft7Validator.VALIDATORS) == DRAFT7
    assert CHECKED <= DRAFT7
    # the bounded keywords the values are checked with are draft 7's too
    assert set(type(validator_for({})).VALIDATORS) == DRAFT7


def test_where_it_answers_it_answers_as_jsonschema() -> None:
    answered = failing = 0
    for schema, value in itertools.product(SCHEMAS, VALUES):
        found = plain_errors(schema, value)
        if found is not None:
            answered += 1
            failing += bool(found)
            assert found == _backstage(schema, value), (schema, value)
    # and it answers often enough to be worth having, failures included
    assert answered > 300
    assert failing > 100


def test_it_passes_up_what_it_does_not_check() -> None:
    for schema in (
        {"type": "string", "pattern": "^a"},
        {"type": "strng"},
        {"type": "string", "minLength": 2.5},
        {"minimum": "1"},
        {"enum": [1, True, None]},
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
        {"required": "a"},
    ):
        assert plain_errors(schema, "a") is None, schema
    # a keyword it does not check under a property the value has; not when it has not
    schema = {"properties": {"a": {"format": "email"}}, "required": ["b"]}
    assert plain_errors(schema, {"a": "x", "b": 1}) is None
    assert plain_errors(schema, {"c": 1}) == _backstage(schema, {"c": 1})


def test_it_answers_for_the_examples_pages_with_their_defaults() -> None:
    said = 0
    for template in TemplateCatalog([EXAMPLES_DIR]).list():
        values: dict[str, Any] = {}
        for page in template.parameters:
            values = apply_defaults(page, values, page)
        for page in template.parameters:
            found = plain_errors(page, values)
            if found is not None:
                said += 1
                assert found == _backstage(page, values)
    assert said >= 3


def test_hello_world_is_checked_without_jsonschema() -> None:
    template = TemplateCatalog([EXAMPLES_DIR]).get("hello-world")
    assert all(plain_errors(page, {"name": "x"}) == [] for page in template.parameters)
    assert validate_values(template, {"name": "x"}) == {"name": "x"}
    # a failing value: the same error jsonschema finds
    assert _errors(template.parameters[0], {"name": 3}) == ["3 is not of type 'string'"]
    found = plain_errors(template.parameters[0], {"name": 3})
    assert found is not None and [e["stack"] for e in found] == [
        "instance.name is not of a type(s) string"
    ]
    assert found == _backstage(template.parameters[0], {"name": 3})


def _template(pages: list[Any]) -> Template:
    doc = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "t"},
        "spec": {"parameters": pages, "steps": []},
    }
    return Template.from_document(doc, Path("/t/template.yaml"))


def test_quick_values_answers_as_validate_values_or_not_at_all() -> None:
    # every page with every value: the quick answer, when there is one, is the
    # full check's (defaults filled in, or the same errors raised)
    answered = refused = 0
    for schema, value in itertools.product(SCHEMAS, VALUES):
        pages = [{"properties": {"v": schema}}, {"properties": {"d": {"default": [1]}}}]
        template = _template(pages)
        values = {"v": value}
        quick: Any
        try:
            quick = quick_values(template, values)
        except ParameterValidationError as exc:
            quick = exc.errors
            refused += 1
        try:
            full: Any = validate_values(template, values)
        except ParameterValidationError as exc:
            full = exc.errors
            # and the full check's errors are jsonschema's
            assert full == [e for page in pages for e in _backstage(page, {**values, "d": [1]})]
        except (InputError, TemplateError, TypeError) as exc:  # TypeError: a broken bound
            full = exc
        if quick is not None:
            answered += 1
            assert quick == full, (schema, value)
            assert values == {"v": value}  # the input untouched
        elif isinstance(full, dict | list):
            # a page it passes up is not plain, or has a keyword it cannot judge
            assert not plain_schema(schema) or plain_errors(schema, value) is None
    assert answered > 300
    assert refused > 100


def test_quick_values_passes_up_what_could_take_long() -> None:
    plain = _template([{"properties": {"name": {"type": "string"}}}])
    assert quick_values(plain, {"name": "x"}) == {"name": "x"}
    assert quick_values(plain, None) == {}
    # values past the quick size, or nested past the limit: the full check's
    assert quick_values(plain, {"name": "x" * QUICK_VALUES_SIZE}) is None
    deep: Any = "x"
    for _ in range(MAX_VALUE_DEPTH + 1):
        deep = [deep]
    assert quick_values(plain, {"name": deep}) is None
    # a pattern, a $ref, a condition anywhere in a page: the full check's too
    for page in (
        {"properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}},
        {"properties": {"o": {"properties": {"name": {"format": "regex"}}}}},
        {"properties": {"name": {"$ref": "#/definitions/n"}}, "definitions": {"n": {}}},
        {"if": {"required": ["name"]}, "then": {"properties": {"x": {"default": 1}}}},
        {"$schema": "https://json-schema.org/draft/2020-12/schema"},
    ):
        assert not plain_schema(page), page
        assert quick_values(_template([page]), {"name": "aaa"}) is None, page
    # the hello-world example's pages are plain: its creates are checked quickly
    hello = TemplateCatalog([EXAMPLES_DIR]).get("hello-world")
    assert quick_values(hello, {"name": "x"}) == validate_values(hello, {"name": "x"})


def test_a_templates_plainness_follows_its_pages() -> None:
    # found once per page list (the create asks it every time): another list is
    # looked at again, whichever way it goes
    template = _template([{"properties": {"name": {"type": "string"}}}])
    assert template.plain_pages
    assert quick_values(template, {"name": "aaa"}) == {"name": "aaa"}
    template.parameters = [{"properties": {"name": {"type": "string", "pattern": "^a+$"}}}]
    assert not template.plain_pages
    assert quick_values(template, {"name": "aaa"}) is None
    template.parameters = [{"properties": {"name": {"type": "string"}}}]
    assert template.plain_pages
    assert _template([]).plain_pages
