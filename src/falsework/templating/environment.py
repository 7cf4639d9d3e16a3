"""The sandboxed Jinja environment that speaks enough Nunjucks for Backstage templates.

Jinja's ImmutableSandboxedEnvironment already hides private attributes and
mutating methods; this subclass turns every refusal into a
:class:`TemplateSecurityError` (instead of a quiet undefined), allows only a list
of harmless string methods, checks the size of whatever an operator or method
could blow up, and adds the JavaScript behaviour Nunjucks templates rely on
(``'a' + 1``, ``x.length``, ``s.startsWith(...)``, object keys before methods).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from falsework.errors import TemplateSecurityError
from falsework.templating import filters as f
from falsework.templating.jsvalue import js_str
from falsework.templating.syntax import NunjucksParser

# String methods a template may call: none of them can make a string longer
# than its input. The rest (ljust, zfill, expandtabs, format, encode, ...)
# either can, or reach beyond plain text.
STR_METHODS = frozenset(
    {
        "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines",
        "startswith", "endswith", "capitalize", "title", "casefold", "swapcase",
        "find", "rfind", "index", "rindex", "count", "partition", "rpartition",
        "removeprefix", "removesuffix", "isdigit", "isalpha", "isalnum", "islower",
        "isupper", "isspace", "isnumeric", "isdecimal", "isidentifier",
    }
)  # fmt: skip

# Number methods that allocate in proportion to an argument.
_NUMBER_REFUSED = frozenset({"to_bytes", "from_bytes"})

_MAX_POW_BITS = 100_000


class SandboxUndefined(ChainableUndefined):
    """Renders empty and chains (``parameters.a.b.c`` of nothing is nothing), as
    Backstage renders missing values in step input."""

    __slots__ = ()

    # JavaScript's comparisons: undefined is never greater or smaller than
    # anything, and loosely equals null (``parameters.x == null``).
    # (Jinja types its failing operators as returning Never, hence the ignores.)
    def __lt__(self, other: Any) -> bool:  # type: ignore[override]
        return False

    def __le__(self, other: Any) -> bool:  # type: ignore[override]
        return False

    def __gt__(self, other: Any) -> bool:  # type: ignore[override]
        return False

    def __ge__(self, other: Any) -> bool:  # type: ignore[override]
        return False

    def __eq__(self, other: Any) -> bool:
        return other is None or isinstance(other, Undefined)

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return id(type(self))


def _refuse(obj: Any, attribute: str) -> TemplateSecurityError:
    return TemplateSecurityError(
        f"template expressions may not access {attribute!r} of a {type(obj).__name__} "
        "(Python internals are not available in templates)"
    )


def _js_str_member(environment: SandboxEnvironment, text: str, name: str) -> Any:
    """JavaScript String members that Nunjucks templates call on values."""
    if name == "length":
        return len(text)
    if name == "toLowerCase":
        return lambda: text.lower()
    if name == "toUpperCase":
        return lambda: text.upper()
    if name == "startsWith":
        return lambda prefix, position=0: text.startswith(js_str(prefix), int(position))
    if name == "endsWith":
        return lambda suffix: text.endswith(js_str(suffix))
    if name == "includes":
        return lambda part, position=0: js_str(part) in text[int(position) :]
    if name == "indexOf":
        return lambda part: text.find(js_str(part))
    if name == "trim":
        return lambda: text.strip()
    if name == "trimStart":
        return lambda: text.lstrip()
    if name == "trimEnd":
        return lambda: text.rstrip()
    if name == "substring":
        return lambda start, end=None: text[
            max(int(start), 0) : (len(text) if end is None else max(int(end), 0))
        ]
    if name == "slice":
        return lambda start=0, end=None: text[int(start) : None if end is None else int(end)]
    if name == "replace":
        return lambda old, new, count=-1: f.replace(
            environment, text, old, new, None if count == -1 else count
        )
    if name == "join":
        return lambda items: f.join(environment, items, text)
    if name == "charAt":
        return lambda index=0: _char_at(text, index)
    if name == "charCodeAt":
        return lambda index=0: _char_code_at(text, index)
    if name == "lastIndexOf":
        return lambda part: text.rfind(js_str(part))
    if name == "concat":
        return lambda *parts: f.add_texts(environment, text, *parts)
    return None


NAN = float("nan")


def _char_at(text: str, index: Any) -> str:
    position = int(index)
    return text[position] if 0 <= position < len(text) else ""


def _char_code_at(text: str, index: Any) -> int | float:
    char = _char_at(text, index)
    return ord(char) if char else NAN


def _js_number_member(value: int | float, name: str) -> Any:
    """JavaScript Number members Nunjucks templates call (``n.toFixed(2)``)."""
    if name == "toFixed":
        return lambda digits=0: f.to_fixed(value, digits)
    if name == "toString":
        return lambda radix=10: f.number_to_string(value, radix)
    return None


def _js_list_member(
    environment: SandboxEnvironment, items: list[Any] | tuple[Any, ...], name: str
) -> Any:
    if name == "length":
        return len(items)
    if name == "includes":
        return lambda item: item in items
    if name == "indexOf":
        return lambda item: items.index(item) if item in items else -1
    if name == "join":
        return lambda separator=",": f.join(environment, items, separator)
    if name == "lastIndexOf":
        return lambda item: (
            len(items) - 1 - list(reversed(items)).index(item) if item in items else -1
        )
    if name == "at":
        return lambda index: items[int(index)] if -len(items) <= int(index) < len(items) else None
    if name == "slice":
        return lambda start=0, end=None: list(items[int(start) : None if end is None else int(end)])
    if name == "reverse":  # a reversed copy: a template's lists are never changed
        return lambda: list(reversed(items))
    if name == "concat":
        return lambda *more: f.concat_lists(items, *more)
    return None


# The variable that holds a file's plain text in its shape's code (see
# renderer._Compiler.shape): a tuple of strings, one per piece of text. Piece
# ``i`` becomes ``falsework_text[i]`` marked with PIECE as the lookup's context
# (the parser only makes "load" ones) and is written as a plain index: a piece is
# a str, which the finalize leaves alone and nothing escapes, so the sandbox's
# item lookup, the undefined check and the finalize call are left out (most of a
# skeleton file's generated code: it compiles and renders for less).
TEXT = "falsework_text"
PIECE = "falsework_piece"


def _is_piece(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Getitem) and node.ctx == PIECE


class _CodeGenerator(CodeGenerator):
    # (Jinja's hooks around each child of an Output node: ``str(finalize(``)
    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if not _is_piece(node):
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if not _is_piece(node):
            super()._output_child_post(node, frame, finalize)

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if node.ctx != PIECE:
            super().visit_Getitem(node, frame)
            return
        assert isinstance(node.node, nodes.Name) and isinstance(node.arg, nodes.Const)
        # (the name is a symbol of every frame that reads it: a local variable)
        self.write(f"{frame.symbols.ref(node.node.name)}[{node.arg.value:d}]")


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%", "/", "//"})

    def __init__(
        self,
        *,
        variable_start: str = "${{",
        max_output: int = 10_000_000,
        trim_blocks: bool = False,
        lstrip_blocks: bool = False,
    ) -> None:
        super().__init__(
            variable_start_string=variable_start,
            variable_end_string="}}",
            block_start_string="{%",
            block_end_string="%}",
            comment_start_string="{#",
            comment_end_string="#}",
            autoescape=False,
            undefined=SandboxUndefined,
            keep_trailing_newline=True,
            trim_blocks=trim_blocks,
            lstrip_blocks=lstrip_blocks,
            finalize=f.finalize,
            cache_size=0,
            auto_reload=False,
        )
        self.max_output = max_output
        for name in f.REMOVED_FILTERS:
            self.filters.pop(name, None)
        for name in f.REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.filters.update(f.FILTERS)
        self.tests.update(f.TESTS)
        self.globals.update(f.GLOBALS)
        self.policies["truncate.leeway"] = 0
        self.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return NunjucksParser(self, source, name, filename).parse()

    # -- attribute access ---------------------------------------------------

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise _refuse(obj, attribute)

    def _check_name(self, obj: Any, name: str) -> Any:
        """Refusals and JS members shared by ``a.b`` and ``a['b']``; None = go on."""
        if isinstance(obj, str):
            if name in ("split", "rsplit"):
                return lambda sep=None, maxsplit=-1: f.split(obj, name, sep, maxsplit)
            if name == "splitlines":
                return lambda keepends=False: f.splitlines(obj, keepends)
            if name in STR_METHODS:
                return None
            member = _js_str_member(self, obj, name)
            if member is not None:
                return member
            if hasattr(str, name):
                raise _refuse(obj, name)
            return None
        if isinstance(obj, list | tuple):
            member = _js_list_member(self, obj, name)
            if member is not None:
                return member
        elif isinstance(obj, int | float) and not isinstance(obj, bool):
            if name in _NUMBER_REFUSED:
                raise _refuse(obj, name)
            return _js_number_member(obj, name)
        return None

    def getattr(self, obj: Any, attribute: str) -> Any:
        # An object's keys come before its methods, as in JavaScript:
        # ``parameters.values`` is the parameter, not dict.values.
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        if attribute.startswith("_"):
            raise _refuse(obj, attribute)
        member = self._check_name(obj, attribute)
        if member is not None:
            return member
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and not isinstance(obj, Mapping):
            if argument.startswith("_"):
                raise _refuse(obj, argument)
            member = self._check_name(obj, argument)
            if member is not None:
                return member
        elif isinstance(argument, str) and argument.startswith("_") and argument not in obj:
            raise _refuse(obj, argument)
        return super().getitem(obj, argument)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr not in STR_METHODS:
            return False
        if isinstance(obj, int | float) and attr in _NUMBER_REFUSED:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    # -- operators ----------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "+":
            return self.add(left, right)
        if operator == "*":
            self._check_repeat(left, right)
        elif operator == "**":
            self._check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            raise TemplateSecurityError("'%' string formatting is not available in templates")
        try:
            return self.binop_table[operator](left, right)
        except ZeroDivisionError:
            return _divided_by_zero(operator, left)

    def add(self, left: Any, right: Any) -> Any:
        """Nunjucks' '+': JavaScript's, so a string on either side concatenates."""
        if isinstance(left, str) or isinstance(right, str):
            a, b = js_str(left, self.max_output), js_str(right, self.max_output)
            f.check_size(self, len(a) + len(b), "'+'")
            return a + b
        if isinstance(left, Undefined) or isinstance(right, Undefined):
            return self.undefined(name="+")
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            if len(left) + len(right) > f.MAX_ITEMS:
                raise TemplateSecurityError(f"'+' would build a list over {f.MAX_ITEMS:,} items")
            return list(left) + list(right)
        return left + right

    def _check_repeat(self, left: Any, right: Any) -> None:
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > _MAX_POW_BITS:
                raise TemplateSecurityError(
                    f"'*' would compute a number of more than {_MAX_POW_BITS:,} bits"
                )
            return
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(count, int):
                if isinstance(seq, str):
                    f.check_size(self, len(seq) * count, "'*'")
                elif len(seq) * count > f.MAX_ITEMS:
                    raise TemplateSecurityError(
                        f"'*' would build a list over {f.MAX_ITEMS:,} items"
                    )

    def _check_power(self, base: Any, exponent: Any) -> None:
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
            if exponent * math.log2(abs(base)) > _MAX_POW_BITS:
                raise TemplateSecurityError(
                    f"'**' would compute a number of more than {_MAX_POW_BITS:,} bits"
                )


def _divided_by_zero(operator: str, left: Any) -> float:
    """JavaScript's answer where Python raises: ``x / 0`` is ±Infinity (NaN for
    ``0 / 0``), ``x % 0`` NaN."""
    if operator == "%" or not isinstance(left, int | float) or left == 0 or left != left:
        return NAN
    return math.inf if left > 0 else -math.inf
