"""Nunjucks regular-expression literals: ``r/pattern/flags``.

Real templates write ``${{ name | replace(r/[^\\w]/g, "") }}`` or
``{% if r/^[a-z]+$/.test(x) %}``. :func:`falsework.templating.syntax.to_jinja`
turns each literal into ``nunjucks_regex("pattern", "flags")``; this module is
that function and the object it returns. Matching uses the ``regex`` package
(JavaScript's named groups ``(?<name>…)`` are its syntax too) with a time limit
on every call, so a pattern that backtracks catastrophically fails the render
with a clear error instead of holding the worker: the render watchdog cannot
interrupt a C call.

Compiling is bounded too. The ``regex`` package unrolls counted repeats when it
compiles (``a{1000}`` is a thousand nodes), with no memory cap, so
``(((a{1000}){1000}){1000})`` would allocate until the process dies: before
anything is compiled, :func:`pattern_problem` reads the pattern's structure and
refuses one whose repeats multiply past :data:`MAX_PATTERN_COST` or that is
longer than :data:`MAX_PATTERN_LENGTH`. Compiled patterns are cached within a
total budget of that same cost, so a stream of distinct patterns cannot pile up.
JSON-Schema ``pattern`` checks (``falsework.templates.values``) use the same
check, cache and time limit through :func:`search`.
"""

from __future__ import annotations

import re as _re
import threading
from typing import Any, NamedTuple

from cachetools import LRUCache

from falsework.errors import TemplateRenderError, TemplateSecurityError, TemplateSyntaxError
from falsework.templating.watchdog import WATCHDOG

# Per call; the render's own limit (2 s by default) cannot reach into C code.
MATCH_TIMEOUT = 1.0

MAX_PATTERN_LENGTH = 2_000
"""The longest pattern (characters) a template or a parameter schema may use."""
MAX_PATTERN_COST = 10_000
"""The most nodes a pattern may compile to, counting a repeat ``{m,n}`` as its body
times ``max(m, n)`` (about 300 bytes each: 3 MB at most per pattern)."""
_CACHE_BUDGET = 100_000  # total cost of the cached patterns (~30 MB at worst)
_CACHE_ITEM = 2_000  # a pattern costing more is compiled on each use, never kept

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

    def sub(self, text: str, replacement: str, limit: int = 10_000_000) -> str:
        """JavaScript's ``text.replace(this, replacement)``: the first match, or
        every match with the ``g`` flag; ``$1``, ``$<name>``, ``$&`` and ``$$``
        in the replacement as in JavaScript. The result's size is counted match
        by match, so one past ``limit`` characters stops before it is built."""
        left = limit - len(text)
        literal = len(_REPLACEMENT.sub("", replacement))

        def spend(size: int) -> None:
            nonlocal left
            left -= size
            if left < 0:
                raise TemplateSecurityError(
                    f"replace would produce a result over the limit of {limit:,} characters"
                )

        def expand(match: Any) -> str:
            def one(token: Any) -> str:
                piece = _piece(match, token)
                spend(len(piece))
                return piece

            spend(literal - (match.end() - match.start()))
            return _REPLACEMENT.sub(one, replacement)

        count = 0 if self.is_global else 1
        return str(
            _timed(lambda: self._compiled.sub(expand, text, count=count, timeout=MATCH_TIMEOUT))
        )

    def __str__(self) -> str:
        return f"/{self.source}/{self.flags}"


def _piece(match: Any, token: Any) -> str:
    """What one ``$`` token of a replacement stands for in ``match``."""
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


def nunjucks_regex(source: str, flags: str = "") -> JsRegExp:
    """The value of a ``r/source/flags`` literal."""
    return JsRegExp(str(source), str(flags))


class _Entry(NamedTuple):
    compiled: Any
    cost: int


_cache: LRUCache[tuple[str, int], _Entry] = LRUCache(
    maxsize=_CACHE_BUDGET, getsizeof=lambda entry: entry.cost
)
_cache_lock = threading.Lock()


def compile_literal(source: str, flags: str) -> Any:
    """The compiled pattern of ``r/source/flags`` (cached); ``TemplateSyntaxError``
    naming the literal when the pattern or a flag is not valid, or when the
    pattern is too large to compile safely."""
    unknown = set(flags) - SUPPORTED_FLAGS
    if unknown:
        raise TemplateSyntaxError(
            f"regular expression /{source}/{flags}: flag {''.join(sorted(unknown))!r} is not "
            f"supported (use {', '.join(sorted(SUPPORTED_FLAGS))})"
        )
    import regex  # only when a template uses a literal (see compile_pattern)

    bits = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL}
    value = 0
    for flag in flags:
        value |= bits.get(flag, 0)
    try:
        return compile_pattern(source, value)
    except PatternError as exc:
        raise TemplateSyntaxError(f"regular expression /{source}/{flags}: {exc}") from None


class PatternError(ValueError):
    """A pattern that may not or cannot be compiled (the text says why)."""


def compile_pattern(source: str, flags: int = 0) -> Any:
    """``regex.compile(source, flags)`` after the size check, from a bounded cache.
    Raises :class:`PatternError` for a refused or invalid pattern."""
    key = (source, flags)
    with _cache_lock:
        entry = _cache.get(key)
    if entry is not None:
        return entry.compiled
    problem = pattern_problem(source)
    if problem is not None:
        raise PatternError(problem)
    cost = pattern_cost(source)
    # imported here: most renders use no regular expression, and a process that
    # starts to run one template (falsework run) need not pay for the package
    import regex

    try:
        # cache_pattern=False: the package keeps 500 patterns of any size otherwise
        compiled = regex.compile(source, flags | regex.VERSION0, cache_pattern=False)
    except regex.error as exc:
        raise PatternError(str(exc)) from None
    if cost <= _CACHE_ITEM:
        with _cache_lock:
            _cache[key] = _Entry(compiled, max(cost, 1))
    return compiled


def search(pattern: str, text: str, timeout: float = MATCH_TIMEOUT) -> bool:
    """Whether ``pattern`` matches somewhere in ``text`` (JSON Schema's ``pattern``):
    checked and cached as :func:`compile_pattern`, at most ``timeout`` seconds.
    Raises ``ValueError`` for a refused pattern and ``TimeoutError`` past the limit."""
    try:
        compiled = compile_pattern(pattern)
    except PatternError as exc:
        raise ValueError(f"pattern {pattern!r}: {exc}") from None
    return compiled.search(text, timeout=max(timeout, 0.001)) is not None


# -- the size check -------------------------------------------------------------

_QUANTIFIER = _re.compile(r"\{\s*(\d*)\s*(,?)\s*(\d*)\s*\}")
_FUZZY = _re.compile(r"\{[^{}]*[<=>][^{}]*\}")
_BRACED_ESCAPE = _re.compile(r"[NpPx]\{[\w\s:=+.-]*\}|g<[^<>()]*>")


def pattern_problem(source: str) -> str | None:
    """Why ``source`` may not be compiled (too long, repeats that multiply past the
    limit, fuzzy matching), or None."""
    if len(source) > MAX_PATTERN_LENGTH:
        return (
            f"the pattern is {len(source):,} characters long, over the limit of "
            f"{MAX_PATTERN_LENGTH:,}"
        )
    cost, fuzzy = _scan(source)
    if fuzzy:
        return "fuzzy matching ({e<=1} ...) is not supported"
    if cost > MAX_PATTERN_COST:
        return (
            f"its repeats multiply to more than {MAX_PATTERN_COST:,} elements (nested counted "
            "repeats like (a{100}){100} are compiled unrolled); use smaller counts or + and *"
        )
    return None


def pattern_cost(source: str) -> int:
    """An upper bound on the number of nodes ``source`` compiles to (see :func:`_scan`)."""
    return _scan(source)[0]


def _scan(source: str) -> tuple[int, bool]:
    """An upper bound on the number of nodes ``source`` compiles to, and whether it
    asks for fuzzy matching (a ``{...}`` with a comparison after an atom).

    A scan of the pattern's structure, not a full parser: atoms count 1, a group
    the sum of its parts, a counted repeat multiplies what it repeats by its
    largest count. Where the scan could misread (an escape or a class whose end
    is unclear), it reads on as plain atoms, which can only count more, never
    skip a group or a repeat. Capped just above the limit.
    """
    cap = MAX_PATTERN_COST + 1
    fuzzy = False
    frames: list[list[int]] = [[0, 0]]  # per open group: [total, cost of the last item]
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        frame = frames[-1]
        if ch == "\\":
            escape = _BRACED_ESCAPE.match(source, i + 1)
            i = escape.end() if escape else i + 2
            frame[0], frame[1] = min(frame[0] + 1, cap), 1
            continue
        if ch == "[":
            i = _class_end(source, i)
            frame[0], frame[1] = min(frame[0] + 1, cap), 1
            continue
        if ch == "(":
            if source.startswith("(?#", i):
                end = source.find(")", i)
                i = n if end == -1 else end + 1
                continue
            frames.append([0, 0])
            i += 1
            continue
        if ch == ")":
            if len(frames) > 1:
                inner = frames.pop()
                size = min(inner[0] + 1, cap)
                frames[-1][0] = min(frames[-1][0] + size, cap)
                frames[-1][1] = size
            i += 1
            continue
        if ch == "|":
            frame[1] = 0
            i += 1
            continue
        if ch == "{":
            if frame[1] and _FUZZY.match(source, i):
                fuzzy = True
            match = _QUANTIFIER.match(source, i)
            if match and (match.group(1) or match.group(3)):
                low = int(match.group(1) or 0)
                high = int(match.group(3)) if match.group(3) else low
                times = max(low, high if match.group(2) else low, 1)
                grown = min(frame[1] * times, cap)
                frame[0] = min(frame[0] + grown - frame[1], cap)
                frame[1] = grown
                i = match.end()
                continue
        if ch in "*+?":
            i += 1  # does not multiply (a loop node), nor do its lazy/possessive marks
            continue
        frame[0], frame[1] = min(frame[0] + 1, cap), 1
        i += 1
    while len(frames) > 1:
        inner = frames.pop()
        frames[-1][0] = min(frames[-1][0] + inner[0] + 1, cap)
    return frames[0][0], fuzzy


def _class_end(source: str, start: int) -> int:
    """Just past the ``]`` closing the class opened at ``start``: the first
    unescaped one after the class's first character (the earliest end the regex
    package could take, so nothing after it is skipped)."""
    i = start + 1
    if i < len(source) and source[i] == "^":
        i += 1
    if i < len(source) and source[i] == "]":
        i += 1
    while i < len(source):
        if source[i] == "\\":
            i += 2
            continue
        if source[i] == "]":
            return i + 1
        i += 1
    return start + 1  # unclosed: not a class after all; read on from the next character


def _timed(call: Any) -> Any:
    try:
        with WATCHDOG.uninterruptible():
            return call()
    except TimeoutError:
        raise TemplateRenderError(
            f"a regular expression ran longer than {MATCH_TIMEOUT:g}s on its input "
            "(it backtracks too much; make it more specific)"
        ) from None


def _text(value: Any) -> str:
    from falsework.templating.jsvalue import js_str

    return str(js_str(value))
