"""falsework.templates.plainschema: its quick yes is never a no of jsonschema."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import jsonschema

from falsework.errors import InputError, TemplateError
from falsework.localconfig import EXAMPLES_DIR
from falsework.templates import (
    Template,
    TemplateCatalog,
    apply_defaults,
    quick_values,
    validate_values,
)
from falsework.templates.plainschema import CHECKED, DRAFT7, plain_schema, plainly_valid
from falsework.templates.values import (
    MAX_VALUE_DEPTH,
    QUICK_VALUES_SIZE,
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
]


def _errors(schema: Any, value: Any) -> list[str]:
    return [e.message for e in validator_for(schema).iter_errors(value)]


def test_the_draft7_keywords_are_jsonschemas() -> None:
    assert set(jsonschema.Draft7Validator.VALIDATORS) == DRAFT7
    assert CHECKED <= DRAFT7
    # the bounded keywords the values are checked with are draft 7's too
    assert set(type(validator_for({})).VALIDATORS) == DRAFT7


def test_a_quick_yes_is_never_a_no_of_jsonschema() -> None:
    yes = 0
    for schema, value in itertools.product(SCHEMAS, VALUES):
        if plainly_valid(schema, value):
            yes += 1
            assert _errors(schema, value) == [], (schema, value)
    assert yes > 50  # and it says yes often enough to be worth having


def test_it_says_yes_to_the_examples_pages_with_their_defaults() -> None:
    said = 0
    for template in TemplateCatalog([EXAMPLES_DIR]).list():
        values: dict[str, Any] = {}
        for page in template.parameters:
            values = apply_defaults(page, values, page)
        for page in template.parameters:
            if plainly_valid(page, values):
                said += 1
                assert _errors(page, values) == []
    assert said >= 3


def test_hello_world_is_checked_without_jsonschema() -> None:
    template = TemplateCatalog([EXAMPLES_DIR]).get("hello-world")
    assert all(plainly_valid(page, {"name": "x"}) for page in template.parameters)
    assert validate_values(template, {"name": "x"}) == {"name": "x"}
    assert not plainly_valid(template.parameters[0], {"name": 3})
    # and then jsonschema says what is wrong, as before
    assert _errors(template.parameters[0], {"name": 3}) == ["3 is not of type 'string'"]


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
    # full check's (defaults filled in), and a value the full check refuses never
    # gets one
    answered = 0
    for schema, value in itertools.product(SCHEMAS, VALUES):
        pages = [{"properties": {"v": schema}}, {"properties": {"d": {"default": [1]}}}]
        template = _template(pages)
        values = {"v": value}
        quick = quick_values(template, values)
        try:
            full: Any = validate_values(template, values)
        except (InputError, TemplateError, TypeError) as exc:  # TypeError: a broken bound
            full = exc
        if quick is not None:
            answered += 1
            assert quick == full, (schema, value)
            assert quick is not values and values == {"v": value}  # the input untouched
        elif plain_schema(schema) and isinstance(full, dict):
            # a plain page it passes up is one whose value fails the quick yes
            assert not plainly_valid(schema, value), (schema, value)
    assert answered > 50


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
