"""Plain parameter schemas checked without ``jsonschema`` (issue 17): the API's
create checks them on its event loop, ``falsework run`` starts without importing it.

``plain_errors(schema, value)`` is the one fast check: for a schema whose every
keyword is one checked here (``type``, ``required``, ``properties``, ``enum`` of
strings, ``minLength``/``maxLength``, ``minimum``/``maximum``) or none of draft 7's
(an annotation such as ``ui:widget`` or ``enumNames``, which the validator ignores
too), it returns exactly the errors ``falsework.templates.values`` reports through
``jsonschema`` - the same objects, messages and order. Any other keyword
(``$schema``, ``$ref``, ``pattern``, ``format``, ``oneOf``, ``if``, ...) met on the
way, or any doubt (an unknown type, a bound that is not a number), gives None, and
the caller asks ``jsonschema``: its errors (and a broken schema's) are then the
ones reported.

The error objects have the shape Backstage's API returns (that of the
``jsonschema`` npm package): ``{path, property, message, schema, instance, name,
argument, stack}``; ``error_object`` and ``message`` are the one place they are
made, for both paths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

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

Path = list[str | int]


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


def _plain_keys(schema: object) -> bool:
    return (
        isinstance(schema, Mapping)
        and "$schema" not in schema
        and not any(key in DRAFT7 and key not in CHECKED for key in schema)
    )


def plain_schema(schema: object) -> bool:
    """True when ``schema`` and every schema under its ``properties`` use no draft-7
    keyword but those checked here: filling its defaults and checking a value
    against it then cost time linear in the two, with no regular expression."""
    if not _plain_keys(schema):
        return False
    assert isinstance(schema, Mapping)
    props = schema.get("properties", {})
    return isinstance(props, Mapping) and all(plain_schema(sub) for sub in props.values())


def plain_errors(schema: object, value: object) -> list[dict[str, Any]] | None:
    """The errors of ``value`` against ``schema`` (none: it passes), exactly as the
    ``jsonschema`` path reports them; None when this check cannot tell."""
    found: list[dict[str, Any]] = []
    return found if _check(schema, value, [], found) else None


def _check(schema: object, value: object, path: Path, found: list[dict[str, Any]]) -> bool:
    """Appends the errors to ``found`` in jsonschema's order (the schema's keys');
    False as soon as a keyword is not one checked here."""
    if not _plain_keys(schema):
        return False
    assert isinstance(schema, Mapping)
    for key, arg in schema.items():
        if key not in CHECKED:
            continue  # an annotation
        failed = False
        if key == "type":
            names = arg if isinstance(arg, list) else [arg]
            fits = [_is_type(value, name) for name in names]
            if None in fits:
                return False
            failed = not any(fits)
        elif key == "enum":
            if not isinstance(arg, list) or not all(isinstance(e, str) for e in arg):
                return False
            failed = not (isinstance(value, str) and value in arg)
        elif key in ("minLength", "maxLength"):
            if not isinstance(arg, int) or isinstance(arg, bool):
                return False
            if isinstance(value, str):
                failed = len(value) < arg if key == "minLength" else len(value) > arg
        elif key in ("minimum", "maximum"):
            if not _number(arg):
                return False
            if _number(value):
                assert isinstance(value, int | float)
                failed = value < arg if key == "minimum" else value > arg
        elif key == "required":
            if not isinstance(arg, list) or not all(isinstance(r, str) for r in arg):
                return False
            if isinstance(value, dict):
                for name in arg:
                    if name not in value:
                        found.append(error_object(path, key, required(name), name, schema, value))
        elif key == "properties":
            if not isinstance(arg, Mapping):
                return False
            if isinstance(value, dict):
                for name, sub in arg.items():
                    if name in value and not _check(sub, value[name], [*path, name], found):
                        return False
        if failed:
            text, argument = message(key, arg)
            found.append(error_object(path, key, text, argument, schema, value))
    return True


# -- Backstage's error shape ------------------------------------------------

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def property_of(path: Path) -> str:
    """``instance.a["b c"][0]``: where an error is, as Backstage names it."""
    out = "instance"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(str(part)):
            out += f".{part}"
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def js(value: Any) -> str:
    """A value as JavaScript prints it in a message."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def required(name: str) -> str:
    return f'requires property "{name}"'


def message(name: str, arg: Any) -> tuple[str, Any]:
    """The message and argument of a failed keyword checked here (and of a few
    more, for the ``jsonschema`` path)."""
    if name == "type":
        types = arg if isinstance(arg, list) else [arg]
        return f"is not of a type(s) {','.join(map(str, types))}", types
    if name == "enum":
        return f"is not one of enum values: {','.join(js(v) for v in arg)}", arg
    if name in ("minLength", "minItems"):
        return f"does not meet minimum length of {arg}", arg
    if name in ("maxLength", "maxItems"):
        return f"does not meet maximum length of {arg}", arg
    if name == "minimum":
        return f"must be greater than or equal to {arg}", arg
    if name == "maximum":
        return f"must be less than or equal to {arg}", arg
    raise KeyError(name)


def error_object(
    path: Path, name: str, text: str, argument: Any, schema: Any, instance: Any
) -> dict[str, Any]:
    prop = property_of(path)
    return {
        "path": list(path),
        "property": prop,
        "message": text,
        "schema": schema,
        "instance": instance,
        "name": name,
        "argument": argument,
        "stack": f"{prop} {text}",
    }
