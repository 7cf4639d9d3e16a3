"""A quick yes for the plain parameter schemas most templates have, without
importing ``jsonschema`` (issue 17: ``falsework run`` starts ~10 % sooner).

``plainly_valid(schema, value)`` is True only when the draft-7 validator of
``falsework.templates.values`` would find no error: every keyword of the schema
is one checked here (``type``, ``required``, ``properties``, ``enum`` of strings,
``minLength``/``maxLength``, ``minimum``/``maximum``) or none of draft 7's (an
annotation such as ``ui:widget`` or ``enumNames``, which the validator ignores
too). Any other keyword (``$schema``, ``$ref``, ``pattern``, ``format``,
``oneOf``, ``if``, ...), any value that fails, or any doubt gives False, and the
caller asks ``jsonschema``: its errors (and a broken schema's) are the only
ones ever reported.
"""

from __future__ import annotations

from collections.abc import Mapping

# draft 7's keywords (jsonschema's Draft7Validator.VALIDATORS, which a test holds
# equal): one of these that is not checked here sends the schema to jsonschema
DRAFT7 = frozenset(
    {
        "$ref",
        "additionalItems",
        "additionalProperties",
        "allOf",
        "anyOf",
        "const",
        "contains",
        "dependencies",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "if",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "not",
        "oneOf",
        "pattern",
        "patternProperties",
        "properties",
        "propertyNames",
        "required",
        "type",
        "uniqueItems",
    }
)
# ``$schema`` picks another draft's validator
CHECKED = frozenset(
    {"type", "required", "properties", "enum", "minLength", "maxLength", "minimum", "maximum"}
)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_type(value: object, name: object) -> bool | None:
    """Draft 7's type check; None for a name it does not know."""
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "number":
        return _number(value)
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "null":
        return value is None
    if name == "array":
        return isinstance(value, list)
    return None


def plain_schema(schema: object) -> bool:
    """True when ``schema`` and every schema under its ``properties`` use no draft-7
    keyword but those checked here: filling its defaults and checking a value
    against it then cost time linear in the two, with no regular expression."""
    if not isinstance(schema, Mapping) or "$schema" in schema:
        return False
    if any(key in DRAFT7 and key not in CHECKED for key in schema):
        return False
    props = schema.get("properties", {})
    return isinstance(props, Mapping) and all(plain_schema(sub) for sub in props.values())


def plainly_valid(schema: object, value: object) -> bool:
    """True only if draft 7 finds no error of ``value`` against ``schema``."""
    if not isinstance(schema, Mapping) or "$schema" in schema:
        return False
    for key in schema:
        if key in DRAFT7 and key not in CHECKED:
            return False
    if "type" in schema:
        types = schema["type"]
        names = types if isinstance(types, list) else [types]
        fits = [_is_type(value, name) for name in names]
        if None in fits or not any(fits):
            return False
    if isinstance(value, dict):
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            return False
        if any(name not in value for name in required):
            return False
        props = schema.get("properties", {})
        if not isinstance(props, Mapping):
            return False
        for name, sub in props.items():
            if name in value and not plainly_valid(sub, value[name]):
                return False
    if "enum" in schema:
        enum = schema["enum"]
        if not isinstance(value, str) or not isinstance(enum, list) or value not in enum:
            return False
    if isinstance(value, str):
        for key in ("minLength", "maxLength"):
            if key in schema:
                bound = schema[key]
                if not isinstance(bound, int) or isinstance(bound, bool):
                    return False
                if len(value) < bound if key == "minLength" else len(value) > bound:
                    return False
    if _number(value):
        assert isinstance(value, int | float)
        for key in ("minimum", "maximum"):
            if key in schema:
                bound = schema[key]
                if not _number(bound):
                    return False
                if value < bound if key == "minimum" else value > bound:
                    return False
    return True
