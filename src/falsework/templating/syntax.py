"""From Nunjucks source to a checked Jinja AST.

Two passes, both at compile time (so cached with the compiled template):

* :func:`to_jinja` rewrites the few Nunjucks spellings Jinja cannot parse —
  ``{% elseif %}`` and regular-expression literals ``r/…/flags`` (made
  ``nunjucks_regex("…", "flags")``, see ``regex.py``) — inside tags only,
  never inside string literals, comments or ``{% raw %}`` blocks, and never in
  plain text. :class:`NunjucksParser` reads ``===``/``!==`` (which Jinja's
  lexer gives as ``==``/``!=`` then ``=``) as JavaScript's strict comparisons.
* :func:`check_ast` refuses what a template must never do (dunder attributes,
  ``self``, file-reading tags, ...) before anything runs, and adapts two
  semantics: ``{% for k, v in obj %}`` iterates an object's pairs, bare keys of
  object literals are strings (``{ a: 1 }``), and ``~`` goes through a
  size-checked filter.
"""

from __future__ import annotations

import re
from typing import Any, cast

from jinja2 import nodes
from jinja2.parser import Parser

from falsework.errors import TemplateSecurityError
from falsework.templating.regex import compile_literal

# Names a template may not read: Jinja's own objects that lead back to Python.
# (``environment`` is not one: a template's names never reach Jinja's Environment,
# and Backstage templates read ``environment.parameters`` and loop with it.)
FORBIDDEN_NAMES = frozenset({"self", "cycler", "joiner", "namespace", "lipsum"})

_FILE_TAGS: dict[type[nodes.Node], str] = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
}

_RAW_START = re.compile(r"[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_ELSEIF = re.compile(r"^([-+]?\s*)elseif\b")


_STRICT = {"eq": "nunjucks_strict_eq", "ne": "nunjucks_strict_ne"}


class NunjucksParser(Parser):
    """Jinja's parser, reading ``a === b`` and ``a !== b`` as JavaScript's strict
    (in)equality, a filter call on the two operands. A chain holding one is read
    left to right, as JavaScript does (``a === b === c`` is ``(a === b) === c``)."""

    def parse_compare(self) -> nodes.Expr:
        lineno = self.stream.current.lineno
        expr = self.parse_math1()
        ops: list[tuple[str, nodes.Expr]] = []
        while True:
            current = self.stream.current
            if current.type in ("eq", "ne") and self.stream.look().type == "assign":
                self.stream.skip(2)
                ops.append((_STRICT[current.type], self.parse_math1()))
            elif current.type in ("eq", "ne", "gt", "gteq", "lt", "lteq"):
                next(self.stream)
                ops.append((current.type, self.parse_math1()))
            elif self.stream.skip_if("name:in"):
                ops.append(("in", self.parse_math1()))
            elif current.test("name:not") and self.stream.look().test("name:in"):
                self.stream.skip(2)
                ops.append(("notin", self.parse_math1()))
            else:
                break
            lineno = self.stream.current.lineno
        if not ops:
            return expr
        if not any(op in _STRICT.values() for op, _ in ops):
            return nodes.Compare(expr, [nodes.Operand(op, e) for op, e in ops], lineno=lineno)
        for op, right in ops:
            if op in _STRICT.values():
                expr = nodes.Filter(expr, op, [right], [], None, None, lineno=lineno)
            else:
                expr = nodes.Compare(expr, [nodes.Operand(op, right)], lineno=lineno)
        return expr


def to_jinja(source: str, variable_start: str) -> str:
    """Nunjucks-only tags and literals rewritten to their Jinja spelling."""
    if "elseif" not in source and "r/" not in source:
        return source
    out: list[str] = []
    i, n = 0, len(source)
    openers = (variable_start, "{%", "{#")
    while i < n:
        starts = [(source.find(op, i), op) for op in openers]
        found = [(pos, op) for pos, op in starts if pos != -1]
        if not found:
            out.append(source[i:])
            break
        pos, op = min(found)
        out.append(source[i:pos])
        body_start = pos + len(op)
        if op == "{#":
            end = source.find("#}", body_start)
            end = n if end == -1 else end + 2
            out.append(source[pos:end])
            i = end
            continue
        if op == "{%" and _RAW_START.match(source, body_start):
            match = _RAW_END.search(source, body_start)
            end = n if match is None else match.end()
            out.append(source[pos:end])
            i = end
            continue
        body, end = _scan_tag(source, body_start, "}}" if op == variable_start else "%}")
        if op == "{%":
            body = _ELSEIF.sub(r"\1elif", body, count=1)
        out.append(op + body)
        i = end
    return "".join(out)


def _scan_tag(source: str, start: int, close: str) -> tuple[str, int]:
    """The tag body from ``start`` through its closing delimiter (included), with
    regular-expression literals outside string literals made calls."""
    out: list[str] = []
    i, n = start, len(source)
    quote: str | None = None
    while i < n:
        ch = source[i]
        if quote is not None:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(source[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
        elif source.startswith(close, i):
            out.append(close)
            return "".join(out), i + len(close)
        elif ch == "r" and source.startswith("r/", i) and _starts_token(source, i, start):
            literal = _regex_literal(source, i + 2, close)
            if literal is not None:
                pattern, flags, i = literal
                compile_literal(pattern, flags)  # a bad pattern fails at compile time
                out.append(f'nunjucks_regex({_jinja_string(pattern)}, "{flags}")')
                continue
        out.append(ch)
        i += 1
    return "".join(out), n


def _starts_token(source: str, i: int, start: int) -> bool:
    """Whether the ``r`` at ``i`` begins a token (not the end of a name, not
    after a value where ``/`` would be a division)."""
    if i == start:
        return True
    before = source[i - 1]
    return not (before.isalnum() or before in "_.)]'\"")


def _regex_literal(source: str, i: int, close: str) -> tuple[str, str, int] | None:
    """The pattern, the flags and the end of a regex literal whose pattern starts
    at ``i``; None when no closing ``/`` comes before the tag's end (then it was
    a name ``r`` and a division, and is left alone)."""
    n = len(source)
    j = i
    while j < n:
        ch = source[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "/":
            break
        if ch == "\n" or source.startswith(close, j):
            return None
        j += 1
    else:
        return None
    k = j + 1
    while k < n and source[k].isalpha():
        k += 1
    return source[i:j], source[j + 1 : k], k


def _jinja_string(text: str) -> str:
    """``text`` as a Jinja string literal (Jinja unescapes backslashes in them)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_ast(tree: nodes.Template) -> None:
    """Refuse unsafe constructs; adapt ``for k, v in obj`` and ``~`` (in place).

    One walk over the tree: it runs on every compile, so it is kept cheap.
    """
    stack: list[nodes.Node] = [tree]
    while stack:
        node = stack.pop()
        _check_node(node)
        if isinstance(node, nodes.Pair) and isinstance(node.key, nodes.Name):
            # Nunjucks object literals are JavaScript's: `{ defaultKind: "group" }`
            # has the key "defaultKind", not the value of a variable.
            node.key = nodes.Const(node.key.name, lineno=node.key.lineno)
        if isinstance(node, nodes.For):
            target = node.target
            if isinstance(target, nodes.Tuple) and len(target.items) == 2:
                node.iter = _filter(cast(nodes.Expr, node.iter), "nunjucks_pairs", node.lineno)
        for field in node.fields:
            value: Any = getattr(node, field, None)
            if isinstance(value, nodes.Node):
                if isinstance(value, nodes.Concat):
                    value = _as_filter(value)
                    setattr(node, field, value)
                stack.append(value)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, nodes.Concat):
                        item = value[index] = _as_filter(item)
                    if isinstance(item, nodes.Node):
                        stack.append(item)


def _check_node(node: nodes.Node) -> None:
    if type(node) in _FILE_TAGS:
        raise TemplateSecurityError(
            f"{{% {_FILE_TAGS[type(node)]} %}} is not available: templates cannot load "
            "other templates"
        )
    if isinstance(node, nodes.Getattr) and node.attr.startswith("__"):
        raise TemplateSecurityError(
            f"template expressions may not access {node.attr!r} (Python internals are not "
            "available in templates)"
        )
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
        and node.arg.value.startswith("__")
    ):
        raise TemplateSecurityError(
            f"template expressions may not access {node.arg.value!r} (Python internals are "
            "not available in templates)"
        )
    if isinstance(node, nodes.Name) and node.ctx == "load":
        if node.name in FORBIDDEN_NAMES or node.name.startswith("__"):
            raise TemplateSecurityError(f"{node.name!r} is not available in templates")
    if isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
        arg = node.args[0]
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
            if arg.value.startswith("_") or arg.value in ("format", "format_map", "mro"):
                raise TemplateSecurityError(f"attr({arg.value!r}) is not available in templates")


def _filter(node: nodes.Expr, name: str, lineno: int) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=lineno)


def _as_filter(concat: nodes.Concat) -> nodes.Filter:
    return _filter(nodes.List(concat.nodes, lineno=concat.lineno), "nunjucks_concat", concat.lineno)


# -- what may render on an event loop ---------------------------------------------

# Node types whose work is at most linear in the data they touch (itself bounded
# by the output limit): no loop, no call, no macro. Filters and tests by name below.
_QUICK_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name,
    nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Tuple, nodes.List, nodes.Dict,
    nodes.Pair, nodes.Keyword, nodes.CondExpr, nodes.Compare, nodes.Operand, nodes.Concat,
    nodes.BinExpr, nodes.UnaryExpr, nodes.If, nodes.Assign, nodes.Filter, nodes.Test,
)  # fmt: skip

QUICK_FILTERS = frozenset(
    {
        "abs", "capitalize", "center", "d", "default", "dump", "e", "escape", "first",
        "float", "forceescape", "indent", "int", "items", "join", "jsonify", "last",
        "length", "count", "list", "lower", "nl2br", "nunjucks_concat", "nunjucks_pairs",
        "nunjucks_strict_eq", "nunjucks_strict_ne",
        "parseEntityRef", "parseRepoUrl", "pick", "projectSlug", "replace", "reverse",
        "round", "safe", "string", "title", "tojson", "trim", "truncate", "upper",
        "urlencode",
    }
)  # fmt: skip
"""Filters linear in their input (``sort``, ``sum``, ``striptags``, ``urlize``,
``wordcount`` and the rest are not listed: superlinear, or regex-heavy)."""


def is_quick(tree: nodes.Node) -> bool:
    """Whether a checked template runs in time linear in the data it reads, so
    that it may render where waiting would hurt (the runner's event loop):
    nothing but lookups, operators, ``if`` and the filters of
    :data:`QUICK_FILTERS`, every test (they compare or check a type)."""
    stack: list[nodes.Node] = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, _QUICK_NODES):
            return False
        if isinstance(node, nodes.Filter) and node.name not in QUICK_FILTERS:
            return False
        stack.extend(node.iter_child_nodes())
    return True
