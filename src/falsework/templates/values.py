"""Parameter values: defaults applied, then checked against every page's JSON Schema.

Errors come in the shape Backstage's API returns (that of the ``jsonschema``
npm package): ``{path, property, message, schema, instance, name, argument,
stack}`` — one per failing field, across all pages at once (Backstage stops at
the first failing page).

Bounded in time and memory, and safe to call from a worker thread (the API runs
it in one, off its event loop): the values' nesting and size are checked before
anything walks them, the whole check runs under the render watchdog's time
limit, and ``pattern``, ``patternProperties`` (with ``additionalProperties``)
and ``format: regex`` use the ``regex`` package with the size check and the
per-match time limit of template regular expressions, never Python's ``re``
(which cannot be interrupted: one catastrophic pattern would hold the process).
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from falsework.errors import InputError, TemplateError
from falsework.templates.plainschema import (
    error_object,
    js,
    message,
    plain_errors,
    required,
)
from falsework.templates.template import Template
from falsework.templating import regex as rx
from falsework.templating.watchdog import WATCHDOG, RenderTimeout

if TYPE_CHECKING:
    # imported where used: a plain schema is checked without them (plainschema)
    import jsonschema
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

VALIDATION_TIMEOUT = 3.0
"""Seconds one ``validate_values`` call may take (defaults, every page)."""
PATTERN_TIMEOUT = 0.25
"""Seconds one ``pattern`` may take on one value. The regex package counts the
process's CPU time, the whole check's limit wall time: kept well apart, a busy
machine still gets the precise answer (this field's pattern) first."""
MAX_VALUE_DEPTH = 64
"""The deepest nesting of objects and lists a value may have."""
MAX_VALUES_SIZE = 10_000_000
"""The most characters (strings and keys, plus one per item) the values may hold."""
QUICK_VALUES_SIZE = 4_096
"""The most characters ``quick_values`` takes on: a check it is sure costs
microseconds."""


class ParameterValidationError(InputError):
    """The parameter values do not match the template's parameter schema."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        shown = "; ".join(e["stack"] for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"Invalid parameter values: {shown}{more}")


def validator_for(schema: Mapping[str, Any]) -> Validator:
    """A validator of the draft the schema names in ``$schema`` (draft 7 if none),
    whose regular expressions are bounded (see the module's docstring)."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    bounded, checker = _bounded(cls)
    return bounded(schema, format_checker=checker)  # type: ignore[no-any-return]


def validate_values(
    template: Template,
    values: Mapping[str, Any] | None,
    *,
    timeout: float = VALIDATION_TIMEOUT,
    max_depth: int = MAX_VALUE_DEPTH,
    max_size: int = MAX_VALUES_SIZE,
) -> dict[str, Any]:
    """``values`` with the schema defaults filled in; raises ParameterValidationError
    listing every failing field, InputError when the values are nested too deep,
    too large or take longer than ``timeout`` seconds to check, TemplateError when
    the template's schema is broken. Safe to call from any thread."""
    check_shape(values or {}, max_depth=max_depth, max_size=max_size)
    token = WATCHDOG.start(timeout)
    _deadline.value = time.monotonic() + timeout
    try:
        return _validate(template, values)
    except RenderTimeout:
        raise InputError(
            f"checking the values against {template.ref}'s parameter schema took longer than "
            f"the limit of {timeout:g}s"
        ) from None
    finally:
        _deadline.value = None
        WATCHDOG.stop(token)


def quick_values(template: Template, values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What ``validate_values`` returns or raises, when that is sure to take
    microseconds: small values (at most ``QUICK_VALUES_SIZE`` characters, nested no
    deeper than the limit) against pages of the plain kind (``plainschema``: no
    pattern, no ``$ref``, no condition). None in every other case: the caller then
    runs ``validate_values`` (off its event loop).

    The API's create takes this on its event loop: handing the check to a thread
    and back cost more than the check of a typical create (issue 17, target 3)."""
    try:
        check_shape(values or {}, max_depth=MAX_VALUE_DEPTH, max_size=QUICK_VALUES_SIZE)
    except InputError:
        return None
    if not template.plain_pages:
        return None
    pages = template.parameters
    result = _with_defaults(template, values)
    errors: list[dict[str, Any]] = []
    for page in pages:
        found = plain_errors(page, result)
        if found is None:
            return None
        errors.extend(found)
    if errors:
        raise ParameterValidationError(errors)
    return result


def _with_defaults(template: Template, values: Mapping[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {k: json_copy(v) for k, v in (values or {}).items()}
    for page in template.parameters:
        result = apply_defaults(page, result, page)
    return result


def _validate(template: Template, values: Mapping[str, Any] | None) -> dict[str, Any]:
    # (A Template's patterns were size-checked when it was loaded, and each is
    # checked again by the regex cache before it compiles.)
    result = _with_defaults(template, values)
    errors: list[dict[str, Any]] = []
    for index, page in enumerate(template.parameters):
        found = plain_errors(page, result)
        if found is not None:  # jsonschema would find the very same
            errors.extend(found)
            continue
        import jsonschema
        from jsonschema.exceptions import UnknownType
        from referencing.exceptions import Unresolvable

        try:
            validator = validator_for(page)
            for error in validator.iter_errors(result):
                errors.extend(backstage_errors(error))
        except (jsonschema.SchemaError, UnknownType, Unresolvable) as exc:
            raise _broken(template, index, exc) from None
    if errors:
        raise ParameterValidationError(errors)
    return result


def json_copy(value: Any) -> Any:
    """A deep copy of ``value``: JSON's kinds (a dict, a list, a scalar: what a
    request body parses to) copied without ``copy.deepcopy``'s memo and dispatch,
    which cost a create more than the rest of its values' check; anything else (a
    subclass, a tuple) by ``copy.deepcopy``."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if kind is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if kind is list:
        return [json_copy(v) for v in value]
    return copy.deepcopy(value)


def check_shape(values: Any, *, max_depth: int, max_size: int) -> None:
    """InputError naming the place when ``values`` nest deeper than ``max_depth``
    or hold more than ``max_size`` characters; walks without recursion."""
    size = 0
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(values, 0, ())]
    while stack:
        value, depth, path = stack.pop()
        size += 1
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, Mapping | list | tuple):
            if depth >= max_depth:
                raise InputError(
                    f"values{_dotted(path)}: nested deeper than the limit of {max_depth} levels"
                )
            if isinstance(value, Mapping):
                for key, item in value.items():
                    size += len(str(key))
                    stack.append((item, depth + 1, (*path, str(key))))
            else:
                stack.extend((item, depth + 1, (*path, i)) for i, item in enumerate(value))
        if size > max_size:
            raise InputError(f"the values hold more than the limit of {max_size:,} characters")


def _dotted(path: tuple[str | int, ...] | list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


# -- bounded regular expressions ----------------------------------------------

_deadline = threading.local()


def _matches(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches in ``text``; None when it ran out of time."""
    deadline: float | None = getattr(_deadline, "value", None)
    budget = PATTERN_TIMEOUT
    if deadline is not None:
        budget = min(budget, deadline - time.monotonic())
    try:
        with WATCHDOG.uninterruptible():
            return rx.search(pattern, text, timeout=budget)
    except TimeoutError:
        return None
    except ValueError as exc:
        import jsonschema

        raise jsonschema.SchemaError(str(exc)) from None


def _too_slow(pattern: str) -> ValidationError:
    from jsonschema.exceptions import ValidationError

    return ValidationError(
        f"could not be checked against {pattern!r} within the limit of "
        f"{PATTERN_TIMEOUT:g}s (the pattern backtracks too much)",
        cause=TimeoutError(),
    )


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    found = _matches(pattern, instance)
    if found is None:
        yield _too_slow(pattern)
    elif not found:
        from jsonschema.exceptions import ValidationError

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            found = _matches(pattern, key)
            if found is None:
                yield _too_slow(pattern)
            elif found:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _extras(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The properties neither ``properties`` nor ``patternProperties`` name (a key
    whose check ran out of time counts as not named)."""
    props = schema.get("properties") or {}
    patterns = schema.get("patternProperties") or {}
    return [
        str(key)
        for key in instance
        if key not in props and not any(_matches(p, str(key)) for p in patterns)
    ]


def _additional_properties(
    validator: Any, allowed: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = _extras(instance, schema)
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        listed = ", ".join(repr(e) for e in sorted(extras))
        verb = "was" if len(extras) == 1 else "were"
        from jsonschema.exceptions import ValidationError

        yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


def _is_regex(instance: object) -> bool:
    """``format: regex``: a pattern the server would agree to compile."""
    if not isinstance(instance, str):
        return True
    try:
        rx.compile_pattern(instance)
    except rx.PatternError:
        return False
    return True


@functools.cache
def _bounded(cls: Any) -> tuple[Any, jsonschema.FormatChecker]:
    """``cls`` with the bounded regular-expression keywords, and its format checker
    with a bounded ``regex`` format (made once per draft)."""
    import jsonschema

    keywords = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    }
    bounded = jsonschema.validators.extend(cls, keywords)  # type: ignore[no-untyped-call]
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = {**cls.FORMAT_CHECKER.checkers, "regex": (_is_regex, ())}
    return bounded, checker


def _broken(template: Template, index: int, exc: Exception) -> TemplateError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TemplateError(
        f"{template.ref}: spec.parameters[{index}] is not a valid JSON Schema ({first_line}); "
        "`falsework templates validate` shows the details"
    )


# -- defaults ---------------------------------------------------------------


def _resolve(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follow a local ``$ref`` (``#/definitions/x``, ``#/$defs/x``)."""
    seen = 0
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < 32:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return schema
        target: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                return schema
            target = target[part]
        schema = target
        seen += 1
    return schema


def _loosely_valid(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether a branch fits the value, ignoring ``required`` (the fields a branch
    requires may be the very ones its defaults are about to fill)."""
    loose = {k: v for k, v in schema.items() if k != "required"}
    import jsonschema

    try:
        return bool(validator_for(loose).is_valid(value))
    except jsonschema.SchemaError:
        return False


def _branch_for(branches: Any, value: Any, trigger: str | None, root: Mapping[str, Any]) -> Any:
    if not isinstance(branches, list):
        return None
    for branch in branches:
        branch = _resolve(branch, root)
        if not isinstance(branch, Mapping):
            continue
        props = branch.get("properties")
        if trigger is not None and isinstance(props, Mapping) and trigger in props:
            # A dependency's oneOf picks its branch by the triggering field, as
            # the form does.
            if isinstance(value, Mapping) and _loosely_valid(
                _resolve(props[trigger], root), value.get(trigger)
            ):
                return branch
        elif _loosely_valid(branch, value):
            return branch
    return None


def apply_defaults(schema: Any, value: Any, root: Mapping[str, Any]) -> Any:
    """Fill ``default``s into ``value`` (a copy is not made here): object
    properties, nested objects, array items, ``allOf``, ``dependencies`` and
    ``if``/``then``/``else``."""
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, Mapping):
            for name, sub in props.items():
                sub = _resolve(sub, root)
                if not isinstance(sub, Mapping):
                    continue
                if name not in value:
                    if "default" in sub:
                        value[name] = json_copy(sub["default"])
                    elif isinstance(sub.get("properties"), Mapping):
                        nested = apply_defaults(sub, {}, root)
                        if nested:
                            value[name] = nested
                if name in value:
                    value[name] = apply_defaults(sub, value[name], root)
        for part in schema.get("allOf") or []:
            value = apply_defaults(part, value, root)
        deps = schema.get("dependencies")
        if isinstance(deps, Mapping):
            for trigger, dep in deps.items():
                dep = _resolve(dep, root)
                if trigger not in value or not isinstance(dep, Mapping):
                    continue
                value = apply_defaults(
                    {k: v for k, v in dep.items() if k not in ("oneOf", "anyOf")}, value, root
                )
                for key in ("oneOf", "anyOf"):
                    branch = _branch_for(dep.get(key), value, trigger, root)
                    if branch is not None:
                        value = apply_defaults(branch, value, root)
        for key in ("oneOf", "anyOf"):
            branch = _branch_for(schema.get(key), value, None, root)
            if branch is not None:
                value = apply_defaults(branch, value, root)
        condition = schema.get("if")
        if isinstance(condition, Mapping | bool):
            fits = validator_for(_as_schema(condition)).is_valid(value)
            chosen = "then" if fits else "else"
            if isinstance(schema.get(chosen), Mapping):
                value = apply_defaults(schema[chosen], value, root)
    elif isinstance(value, list):
        items = _resolve(schema.get("items"), root)
        if isinstance(items, Mapping):
            value = [apply_defaults(items, item, root) for item in value]
    return value


def _as_schema(condition: Mapping[str, Any] | bool) -> Mapping[str, Any]:
    if isinstance(condition, bool):
        return {} if condition else {"not": {}}
    return condition


# -- Backstage's error shape ------------------------------------------------


def _required_name(error: ValidationError) -> str:
    suffix = " is a required property"
    if error.message.endswith(suffix):
        try:
            return str(ast.literal_eval(error.message[: -len(suffix)]))
        except (ValueError, SyntaxError):
            pass
    return error.message


def _extra_properties(error: ValidationError) -> list[str]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    return _extras(instance, schema)


# the keywords whose messages plainschema makes, for both paths
_SHARED = frozenset(
    {"type", "enum", "minLength", "minItems", "maxLength", "maxItems", "minimum", "maximum"}
)


def _message(name: str, arg: Any, error: ValidationError) -> tuple[str, Any]:
    if name in _SHARED:
        return message(name, arg)
    if name == "const":
        return f"does not exactly match expected constant: {js(arg)}", arg
    if name == "pattern":
        if isinstance(error.cause, TimeoutError):
            return f"could not be checked against pattern {json.dumps(arg)} in time", arg
        return f"does not match pattern {json.dumps(arg)}", arg
    if name == "format":
        return f'does not conform to the "{arg}" format', arg
    if name == "exclusiveMinimum":
        return f"must be greater than {arg}", arg
    if name == "exclusiveMaximum":
        return f"must be less than {arg}", arg
    if name == "multipleOf":
        return f"is not a multiple of (divisible by) {arg}", arg
    if name == "uniqueItems":
        return "contains duplicate item", arg
    if name in ("minProperties", "maxProperties"):
        word = "minimum" if name == "minProperties" else "maximum"
        return f"does not meet {word} property length of {arg}", arg
    if name == "oneOf":
        return "is not exactly one from the allowed schemas", [
            f"[subschema {i}]" for i in range(len(arg))
        ]
    if name == "anyOf":
        return "is not any of the allowed schemas", [f"[subschema {i}]" for i in range(len(arg))]
    if name == "not":
        return "is of prohibited type", arg
    return error.message, arg


def backstage_errors(error: ValidationError) -> list[dict[str, Any]]:
    """One python-jsonschema error as Backstage's error objects (an
    ``additionalProperties`` error becomes one per extra property)."""
    path = list(error.absolute_path)
    name = str(error.validator)
    found: list[tuple[str, Any]] = []
    if name == "required":
        missing = _required_name(error)
        found.append((required(missing), missing))
    elif name == "additionalProperties" and error.validator_value is False:
        for extra in _extra_properties(error) or [""]:
            found.append((f'is not allowed to have the additional property "{extra}"', extra))
    elif name in ("dependencies", "dependentRequired"):
        found.append((error.message, error.validator_value))
    else:
        found.append(_message(name, error.validator_value, error))
    return [
        error_object(path, name, text, argument, error.schema, error.instance)
        for text, argument in found
    ]
