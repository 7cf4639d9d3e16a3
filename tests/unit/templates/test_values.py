"""Parameter values: defaults, every failing field at once, Backstage's error shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from falsework.errors import InputError, TemplateError
from falsework.templates import ParameterValidationError, Template, validate_values
from support.templates import template_doc


def make(parameters: Any) -> Template:
    return Template.from_document(
        template_doc("t", parameters=parameters), Path("/t/template.yaml")
    )


FETCH_TEMPLATE_PAGE = {
    "title": "Input",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "title": "Name"},
        "description": {
            "type": "string",
            "title": "Description",
            "default": "An example component",
        },
    },
}


def errors_of(template: Template, values: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ParameterValidationError) as info:
        validate_values(template, values)
    assert isinstance(info.value, InputError)
    return info.value.errors


def test_wrong_type_error_is_backstages(tmp_path: Path) -> None:
    # error.invalid-values.json, captured from Backstage
    template = make([FETCH_TEMPLATE_PAGE])
    assert errors_of(template, {"name": 42}) == [
        {
            "path": ["name"],
            "property": "instance.name",
            "message": "is not of a type(s) string",
            "schema": {"type": "string", "title": "Name"},
            "instance": 42,
            "name": "type",
            "argument": ["string"],
            "stack": "instance.name is not of a type(s) string",
        }
    ]


def test_missing_required_error_is_backstages() -> None:
    # error.missing-required.json, captured from Backstage; the schema in the
    # error is the page (defaults applied do not show in it)
    template = make([FETCH_TEMPLATE_PAGE])
    assert errors_of(template, {}) == [
        {
            "path": [],
            "property": "instance",
            "message": 'requires property "name"',
            "schema": FETCH_TEMPLATE_PAGE,
            "instance": {"description": "An example component"},
            "name": "required",
            "argument": "name",
            "stack": 'instance requires property "name"',
        }
    ]


def test_every_failing_field_on_every_page_is_listed() -> None:
    template = make(
        [
            {
                "required": ["name", "owner"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 3},
                    "owner": {"type": "string", "ui:field": "OwnerPicker"},
                    "count": {"type": "integer", "minimum": 1, "maximum": 5},
                },
            },
            {
                "required": ["repoUrl"],
                "properties": {
                    "repoUrl": {"type": "string", "ui:field": "RepoUrlPicker"},
                    "size": {"enum": ["s", "m"]},
                    "email": {"type": "string", "format": "email"},
                    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                    "weird-key": {"type": "number", "exclusiveMinimum": 0},
                },
                "additionalProperties": False,
            },
        ]
    )
    values = {
        "name": "A",
        "count": 9,
        "size": "xl",
        "email": "nope",
        "tags": ["a", "a", 3],
        "weird-key": 0,
        "extra": 1,
    }
    found = {(e["property"], e["name"]): e for e in errors_of(template, values)}
    assert set(found) == {
        ("instance.name", "pattern"),
        ("instance.name", "minLength"),
        ("instance", "required"),
        ("instance.count", "maximum"),
        ("instance", "additionalProperties"),
        ("instance.size", "enum"),
        ("instance.email", "format"),
        ("instance.tags", "uniqueItems"),
        ("instance.tags[2]", "type"),
        ('instance["weird-key"]', "exclusiveMinimum"),
    }
    messages = {key: e["message"] for key, e in found.items()}
    assert messages[("instance.name", "pattern")] == 'does not match pattern "^[a-z]+$"'
    assert messages[("instance.name", "minLength")] == "does not meet minimum length of 3"
    assert messages[("instance.count", "maximum")] == "must be less than or equal to 5"
    assert messages[("instance.size", "enum")] == "is not one of enum values: s,m"
    assert messages[("instance.email", "format")] == 'does not conform to the "email" format'
    assert messages[("instance", "additionalProperties")] == (
        'is not allowed to have the additional property "extra"'
    )
    assert found[("instance.tags[2]", "type")]["path"] == ["tags", 2]
    for error in found.values():
        assert error["stack"] == f"{error['property']} {error['message']}"
        assert list(error) == [
            "path", "property", "message", "schema", "instance", "name", "argument", "stack"
        ]  # fmt: skip
    # both required fields of page one and the one of page two
    required = [e for e in errors_of(template, {}) if e["name"] == "required"]
    assert [e["argument"] for e in required] == ["name", "owner", "repoUrl"]


def test_all_missing_required_fields_are_listed() -> None:
    template = make([{"required": ["a", "b"]}, {"required": ["c"]}])
    assert [e["argument"] for e in errors_of(template, {})] == ["a", "b", "c"]


def test_defaults_are_applied_without_touching_the_input() -> None:
    template = make(
        [
            {"properties": {"name": {"type": "string", "default": "svc"}}},
            {
                "properties": {
                    "tags": {"type": "array", "default": ["a"]},
                    "db": {
                        "type": "object",
                        "properties": {
                            "engine": {"type": "string", "default": "postgres"},
                            "port": {"type": "integer", "default": 5432},
                        },
                    },
                    "given": {"type": "string", "default": "no"},
                }
            },
        ]
    )
    values = {"given": "yes", "db": {"port": 1}}
    result = validate_values(template, values)
    assert result == {
        "name": "svc",
        "tags": ["a"],
        "db": {"engine": "postgres", "port": 1},
        "given": "yes",
    }
    assert values == {"given": "yes", "db": {"port": 1}}
    result["tags"].append("b")
    assert validate_values(template, {})["tags"] == ["a"]
    assert validate_values(template, {})["db"] == {"engine": "postgres", "port": 5432}


def test_the_values_come_back_as_a_copy_as_deep_as_they_go() -> None:
    class Tagged(dict[str, Any]):
        pass

    template = make([{"properties": {"extra": {"type": "object", "default": {"k": [1]}}}}])
    values: dict[str, Any] = {
        "deep": {"list": [{"a": 1}, [2, 3]], "text": "t", "n": None, "f": 1.5, "b": True},
        "pair": (1, [2]),
        "tagged": Tagged(x=[1]),
    }
    result = validate_values(template, values)
    assert result == {**values, "extra": {"k": [1]}}
    result["deep"]["list"][0]["a"] = 2
    result["deep"]["list"][1].append(4)
    result["pair"][1].append(3)
    result["tagged"]["x"].append(2)
    result["extra"]["k"].append(2)
    assert values["deep"]["list"] == [{"a": 1}, [2, 3]]
    assert values["pair"] == (1, [2])
    assert values["tagged"] == {"x": [1]}
    # what is not JSON's own kind keeps its type (copied as copy.deepcopy copies it)
    assert type(result["pair"]) is tuple
    assert type(result["tagged"]) is Tagged
    assert validate_values(template, {})["extra"] == {"k": [1]}


def test_required_fields_with_defaults_are_satisfied() -> None:
    template = make([FETCH_TEMPLATE_PAGE | {"required": ["name", "description"]}])
    assert validate_values(template, {"name": "x"}) == {
        "name": "x",
        "description": "An example component",
    }


def test_defaults_in_dependencies_if_then_and_items() -> None:
    template = make(
        [
            {
                "properties": {
                    "kind": {"type": "string", "enum": ["db", "web"], "default": "db"},
                    "servers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"port": {"type": "integer", "default": 80}},
                        },
                    },
                    "mode": {"type": "string"},
                },
                "dependencies": {
                    "kind": {
                        "oneOf": [
                            {
                                "properties": {
                                    "kind": {"const": "db"},
                                    "engine": {"type": "string", "default": "postgres"},
                                },
                                "required": ["engine"],
                            },
                            {
                                "properties": {
                                    "kind": {"const": "web"},
                                    "framework": {"type": "string", "default": "fastapi"},
                                }
                            },
                        ]
                    }
                },
                "if": {"properties": {"mode": {"const": "fast"}}, "required": ["mode"]},
                "then": {"properties": {"workers": {"type": "integer", "default": 8}}},
                "else": {"properties": {"workers": {"type": "integer", "default": 1}}},
            }
        ]
    )
    assert validate_values(template, {}) == {"kind": "db", "engine": "postgres", "workers": 1}
    assert validate_values(
        template, {"kind": "web", "mode": "fast", "servers": [{}, {"port": 1}]}
    ) == {
        "kind": "web",
        "framework": "fastapi",
        "mode": "fast",
        "workers": 8,
        "servers": [{"port": 80}, {"port": 1}],
    }


def test_local_refs_are_followed_for_defaults() -> None:
    template = make(
        {
            "definitions": {"port": {"type": "integer", "default": 8080}},
            "properties": {"port": {"$ref": "#/definitions/port"}},
        }
    )
    assert validate_values(template, {}) == {"port": 8080}
    assert errors_of(template, {"port": "x"})[0]["message"] == "is not of a type(s) integer"


def test_draft_2020_12_is_used_when_named() -> None:
    template = make(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "properties": {
                "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
            },
            "dependentRequired": {"a": ["b"]},
        }
    )
    assert validate_values(template, {"pair": ["x", 1]}) == {"pair": ["x", 1]}
    names = {e["name"] for e in errors_of(template, {"pair": [1, "x"], "a": 1})}
    assert names == {"type", "dependentRequired"}


def test_ui_keys_are_ignored() -> None:
    template = make(
        {
            "ui:order": ["b", "a"],
            "properties": {
                "a": {"type": "string", "ui:widget": "textarea", "ui:options": {"rows": 5}},
                "b": {"type": "string", "ui:field": "RepoUrlPicker", "ui:help": "x"},
            },
        }
    )
    assert validate_values(template, {"a": "x", "b": "y"}) == {"a": "x", "b": "y"}


def test_no_parameters_accepts_anything() -> None:
    template = make(None)
    assert validate_values(template, {"x": 1}) == {"x": 1}
    assert validate_values(template, None) == {}


@pytest.mark.parametrize(
    ("page", "detail"),
    [
        ({"properties": {"a": {"type": "strin"}}}, "Unknown type 'strin'"),
        ({"properties": {"a": {"$ref": "#/definitions/nope"}}}, "/definitions/nope"),
    ],
)
def test_a_broken_schema_is_a_template_error(page: dict[str, Any], detail: str) -> None:
    template = make([{"properties": {}}, page])
    with pytest.raises(
        TemplateError, match=r"spec\.parameters\[1\] is not a valid JSON Schema"
    ) as info:
        validate_values(template, {"a": "x"})
    assert detail in info.value.message
    assert not isinstance(info.value, ParameterValidationError)


def test_error_message_summarises() -> None:
    template = make([{"required": ["a", "b", "c", "d", "e", "f", "g"]}])
    with pytest.raises(ParameterValidationError) as info:
        validate_values(template, {})
    assert info.value.message.startswith('Invalid parameter values: instance requires property "a"')
    assert info.value.message.endswith("(and 2 more)")
    assert info.value.status_code == 400
