"""Nunjucks regular-expression literals: ``r/pattern/flags``.

Real templates write ``${{ name | replace(r/[^\\w]/g, "") }}`` or
``{% if r/^[a-z]+$/.test(x) %}``. :func:`falsework.templating.syntax.to_jinja`
turns each literal into ``nunjucks_regex("pattern", "flags")``; this module is
that function and the object it returns. Matching uses the ``regex`` package
(JavaScript's named groups ``(?<name>…)`` are its syntax too) with a time limit
on every call, so a pattern that backtracks catastrophically fails the render
with a clear error instead of holding the worker: the render watchdog cannot
interrupt a C call.
"""

from __future__ import annotations

import functools
import re as _re
from typing import Any

import regex

from falsework.errors import TemplateRenderError, TemplateSyntaxError

# Per call; the render's own limit (2 s by default) cannot reach into C code.
MATCH_TIMEOUT = 1.0

_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL, "u": 0}
SUPPORTED_FLAGS = frozenset("gimsu")
_REPLACEMENT = _re.compile(r"\$(\$|&|`|'|\d{1,2}|<[^>]*>)")


class JsRegExp:
    """A compiled literal: ``source``, ``flags``, ``global``, ``test(text)``."""

    __slots__ = ("_compiled", "flags", "source")

    def __init__(self, source: str, flags: str) -> None:
        self.source = source
        self.flags = flags
        self._compiled = compile_literal(source, flags)

    @property
    def is_global(self) -> bool:
        return "g" in self.flags

    def test(self, text: Any) -> bool:
        return _timed(lambda: self._compiled.search(_text(text), timeout=MATCH_TIMEOUT)) is not None

    def sub(self, text: str, replacement: str) -> str:
        """JavaScript's ``text.replace(this, replacement)``: the first match, or
        every match with the ``g`` flag; ``$1``, ``$<name>``, ``$&`` and ``$$``
        in the replacement as in JavaScript."""

        def expand(match: Any) -> str:
            def one(token: Any) -> str:
                key = token.group(1)
                if key == "$":
                    return "$"
                if key == "&":
                    return str(match.group(0))
                if key == "`":
                    return str(match.string[: match.start()])
                if key == "'":
                    return str(match.string[match.end() :])
                if key.startswith("<"):
                    try:
                        return str(match.group(key[1:-1]) or "")
                    except IndexError:
                        return str(token.group(0))
                index = int(key)
                if 1 <= index <= len(match.groups()):
                    return str(match.group(index) or "")
                return str(token.group(0))

            return _REPLACEMENT.sub(one, replacement)

        count = 0 if self.is_global else 1
        return str(
            _timed(lambda: self._compiled.sub(expand, text, count=count, timeout=MATCH_TIMEOUT))
        )

    def __str__(self) -> str:
        return f"/{self.source}/{self.flags}"


def nunjucks_regex(source: str, flags: str = "") -> JsRegExp:
    """The value of a ``r/source/flags`` literal."""
    return JsRegExp(str(source), str(flags))


@functools.lru_cache(maxsize=256)
def compile_literal(source: str, flags: str) -> Any:
    """The compiled pattern of ``r/source/flags`` (cached); ``TemplateSyntaxError``
    naming the literal when the pattern or a flag is not valid."""
    unknown = set(flags) - SUPPORTED_FLAGS
    if unknown:
        raise TemplateSyntaxError(
            f"regular expression /{source}/{flags}: flag {''.join(sorted(unknown))!r} is not "
            f"supported (use {', '.join(sorted(SUPPORTED_FLAGS))})"
        )
    value = 0
    for flag in flags:
        value |= _FLAGS.get(flag, 0)
    try:
        return regex.compile(source, value | regex.VERSION0)
    except regex.error as exc:
        raise TemplateSyntaxError(f"regular expression /{source}/{flags}: {exc}") from None


def _timed(call: Any) -> Any:
    try:
        return call()
    except TimeoutError:
        raise TemplateRenderError(
            f"a regular expression ran longer than {MATCH_TIMEOUT:g}s on its input "
            "(it backtracks too much; make it more specific)"
        ) from None


def _text(value: Any) -> str:
    from falsework.templating.filters import js_str

    return str(js_str(value))
