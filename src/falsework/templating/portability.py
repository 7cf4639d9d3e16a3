"""What a template does differently on Backstage: ``templates validate --portable``.

Falsework accepts more than Backstage's Nunjucks (its sandbox is Jinja's, and
some of Jinja's and Python's conveniences stay available). A template that uses
them works here and fails, or renders otherwise, on a Backstage instance. This
module reads a parsed template (never runs it) and says where, so that authors
who share templates with Backstage know before they publish. Each note was
checked against the real Backstage 4.3.0 (tests/compat).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jinja2 import nodes

from falsework.templating.environment import STR_METHODS

# The filters and tests of Backstage's template engine (nunjitsu 0.7 in
# plugin-scaffolder-backend 4.3.0) and Backstage's own filters.
BACKSTAGE_FILTERS = frozenset(
    {
        "abs", "batch", "capitalize", "center", "d", "default", "dictsort", "dump", "e",
        "escape", "first", "float", "forceescape", "groupby", "indent", "int", "join",
        "last", "length", "list", "lower", "nl2br", "random", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort",
        "string", "striptags", "sum", "title", "trim", "truncate", "upper", "urlencode",
        "urlize", "wordcount",
        "parseRepoUrl", "parseEntityRef", "pick", "projectSlug",
    }
)  # fmt: skip
BACKSTAGE_TESTS = frozenset(
    {
        "callable", "defined", "divisibleby", "escaped", "eq", "equalto", "even", "falsy",
        "ge", "greaterthan", "gt", "iterable", "le", "lessthan", "lower", "lt", "mapping",
        "ne", "null", "number", "odd", "sameas", "string", "truthy", "undefined", "upper",
    }
)  # fmt: skip
# Filters Backstage refuses on anything but a string ("Filter input must be a string").
STRING_FILTERS = frozenset({"lower", "upper", "capitalize", "title", "trim"})
# Methods a template may call here that Backstage's values do not have.
_JS_STRING_METHODS = frozenset({"split"})
PYTHON_METHODS = (STR_METHODS - _JS_STRING_METHODS) | {"keys", "items", "values", "get"}
_INTERNAL = ("nunjucks_",)  # Falsework's own spellings of Nunjucks syntax
_LITERAL_TYPES = {str: "string", bool: "boolean", int: "number", float: "number"}


@dataclass(frozen=True)
class Note:
    line: int
    message: str


def notes(
    tree: nodes.Template,
    tokens: Iterable[tuple[int, str, str]],
    parameter_types: Mapping[str, str],
) -> list[Note]:
    """The notes for one parsed template; ``tokens`` are its lexer tokens (for
    spellings the parser erases), ``parameter_types`` the JSON Schema ``type`` of
    each parameter the form asks for."""
    found: list[Note] = []
    for line, kind, value in tokens:
        if kind == "name" and value in ("True", "False", "None"):
            spelling = "null" if value == "None" else value.lower()
            found.append(
                Note(line, f"{value} is undefined on Backstage (Nunjucks spells it {spelling})")
            )
    for node in tree.find_all(nodes.Node):
        note = _note(node, parameter_types)
        if note is not None:
            found.append(Note(node.lineno, note))
    found.sort(key=lambda n: n.line)
    return found


def _parameter(node: nodes.Node) -> str | None:
    """``x`` of ``parameters.x`` / ``parameters['x']``."""
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return node.attr if node.node.name == "parameters" else None
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "parameters"
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    return None


def _type_of(node: nodes.Node, parameter_types: Mapping[str, str]) -> str | None:
    if isinstance(node, nodes.Const):
        return _LITERAL_TYPES.get(type(node.value))
    if isinstance(node, nodes.List):
        return "array"
    if isinstance(node, nodes.Dict):
        return "object"
    name = _parameter(node)
    if name is not None:
        kind = parameter_types.get(name)
        return "number" if kind == "integer" else kind
    return None


def _note(node: nodes.Node, parameter_types: Mapping[str, str]) -> str | None:
    if isinstance(node, nodes.Filter):
        if node.name.startswith(_INTERNAL):
            return None
        if node.name not in BACKSTAGE_FILTERS:
            return f"'{node.name}' is not a filter on Backstage: the template fails there"
        kind = _type_of(node.node, parameter_types) if node.node is not None else None
        if node.name in STRING_FILTERS and kind not in (None, "string"):
            return (
                f"'{node.name}' of a {kind} fails on Backstage (its input must be a string): "
                f"write | string | {node.name}"
            )
    elif isinstance(node, nodes.Test) and node.name not in BACKSTAGE_TESTS:
        return f"'is {node.name}' is not a test on Backstage: the template fails there"
    elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        method = node.node.attr
        if method in PYTHON_METHODS:
            return (
                f".{method}() is Python's: Backstage's values have no such method "
                "(use a filter, or the JavaScript method)"
            )
        if method == "reverse" and not node.args:
            return ".reverse() reverses the list itself on Backstage (here: a reversed copy)"
    elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        if node.node.name == "nunjucks_regex":
            return (
                "a regular-expression literal runs on Python's regex module here and on "
                "JavaScript's RegExp on Backstage: beyond the common syntax (lookbehind, "
                "Unicode classes and properties, named groups, flags) they can match otherwise"
            )
    elif isinstance(node, nodes.Getitem) and _negative(node.arg):
        return (
            "a negative index is undefined on Backstage (JavaScript counts from the start "
            "only): write | last, or .at(-1)"
        )
    elif isinstance(node, nodes.For) and not isinstance(node.target, nodes.Tuple):
        if _type_of(node.iter, parameter_types) == "object":
            return (
                "a loop with one variable over an object renders nothing on Backstage "
                "(here: its keys): write {% for key, value in ... %}"
            )
    elif isinstance(node, nodes.Compare):
        return _loose_compare(node, parameter_types)
    return None


def _negative(node: nodes.Node) -> bool:
    if isinstance(node, nodes.Const) and isinstance(node.value, int | float):
        return not isinstance(node.value, bool) and node.value < 0
    return isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const)


def _loose_compare(node: nodes.Compare, parameter_types: Mapping[str, str]) -> str | None:
    left = node.expr
    for operand in node.ops:
        if operand.op in ("eq", "ne"):
            kinds = {_type_of(left, parameter_types), _type_of(operand.expr, parameter_types)}
            if kinds == {"string", "number"}:
                return (
                    "== between a string and a number is true on Backstage when they read "
                    "the same ('3' == 3), false here: compare values of one type"
                )
        left = operand.expr
    return None
