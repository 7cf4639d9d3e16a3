"""The Renderer: ``${{ }}`` templating of step input, ``if``, ``each``, output and files."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from cachetools import FIFOCache
from jinja2 import Template, Undefined, meta, nodes
from jinja2.exceptions import SecurityError as JinjaSecurityError
from jinja2.exceptions import TemplateSyntaxError as JinjaSyntaxError
from jinja2.lexer import Token, TokenStream

from falsework.errors import (
    TemplateError,
    TemplateRenderError,
    TemplateSecurityError,
    TemplateSyntaxError,
)
from falsework.templating.environment import PIECE, TEXT, SandboxEnvironment
from falsework.templating.jsvalue import to_plain
from falsework.templating.syntax import NunjucksParser, check_ast, is_quick, to_jinja
from falsework.templating.watchdog import WATCHDOG, RenderTimeout

T = TypeVar("T")

# The compile cache holds at most _CACHE_BUDGET "bytes" of weight: a compiled
# source weighs a fixed 4 KiB plus 16 per character inside its tags (what Jinja's
# code for them costs, measured) and 2 per character of plain text between them
# (kept once as a constant, and the source itself as the key: a skeleton file of
# 1.7 KB with 9 tags measured 8 KB with tracemalloc, weighed 10.5 KB). A source
# over _CACHE_ITEM characters is compiled on each use and never kept. So at most
# 4,096 small sources, 16 of the largest expressions, or some 1,500 files of a
# skeleton like that one: a worker's second task of a 1,000-file template finds
# every file compiled. First in, first out: a hit is a plain dict read (an LRU
# would need a lock on every hit).
_CACHE_BUDGET = 16 * 2**20
_CACHE_ITEM = 64 * 2**10
_BASE_WEIGHT, _TAG_WEIGHT, _TEXT_WEIGHT = 4096, 16, 2
_SNIPPET = 120
_RESULT = "__falsework_value"  # where a lone expression leaves its value

# Compiled shapes (see _Compiler.shape): how many each compiler keeps, first in,
# first out; the variable that holds a file's plain text in its shape's code is
# environment.TEXT (a source that names it compiles on its own).
_SHAPES = 1024
_PLAIN_SHAPES = 8  # tried in turn before the lexer (see _Compiler._match)
_TEXT = TEXT


class _Missing:
    """What a string renders to when it gives nothing: a lone expression whose
    value is undefined, or text that renders empty. Backstage then drops the key
    from the object being rendered (JSON.parse's reviver returning undefined),
    and an array keeps a hole, which JSON writes as null."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

# Renderer.quickness: nothing to render, renders quickly (inline), or slowly
PLAIN, QUICK, SLOW = 0, 1, 2


# A string whose every expression is a plain lookup (``${{ parameters.a.b }}``): its
# pieces in order, each its plain text (a str) or a lookup's path (the names).
_Plan = tuple[str | tuple[str, ...], ...]


class _Slow:
    """What the lookup path (``Renderer._looked_up``) answers when a value needs
    Jinja after all."""

    __slots__ = ()


_SLOW: Any = _Slow()


@dataclass(frozen=True, slots=True)
class _Compiled:
    template: Template
    lone: bool  # the whole string is one ``${{ expr }}``: evaluate, keep the type
    quick: bool = False  # linear in what it reads (syntax.is_quick)
    weight: int = 0  # in the compile cache (see _CACHE_BUDGET)
    # A shape's template (see _Compiler.shape): the source's plain text, in order
    text: tuple[str, ...] | None = None
    # A string of plain lookups (see _lookups): its text and paths, in order
    plan: _Plan | None = None


_BREAK = re.compile(r"\r\n|\r|\n")


def _breaks(source: str) -> list[str] | None:
    """The line breaks of ``source`` in order, when one is not a plain LF (None:
    all are). Jinja's lexer makes every break an LF; the text between tags gets
    the source's own back (:func:`_with_breaks`), as Nunjucks keeps them."""
    return _BREAK.findall(source) if "\r" in source else None


def _with_breaks(text: str, lineno: int, breaks: list[str]) -> str:
    """``text``, a piece of plain text as Jinja's lexer gives it (LF breaks)
    starting on line ``lineno``, with the breaks the source has there."""
    if "\n" not in text:
        return text
    lines = text.split("\n")
    out = [lines[0]]
    for index, line in enumerate(lines[1:], start=lineno - 1):
        out += (breaks[index] if index < len(breaks) else "\n", line)
    return "".join(out)


def _snippet(source: str) -> str:
    text = source if len(source) <= _SNIPPET else source[: _SNIPPET - 3] + "..."
    return repr(text)


def is_truthy(value: Any) -> bool:
    """The runner's ``if``: false, "", 0, None, [] and {} are falsy (undefined too)."""
    if isinstance(value, Undefined):
        return False
    return bool(value)


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    entries: int
    weight: int


_Key = tuple[str, bool]


class _Entries(FIFOCache[_Key, _Compiled]):
    """The weight-bounded cache (first in, first out), keeping ``index`` — a plain
    dict of the same entries that threads read without a lock — in step."""

    def __init__(self) -> None:
        super().__init__(maxsize=_CACHE_BUDGET, getsizeof=lambda compiled: compiled.weight)
        self.index: dict[_Key, _Compiled] = {}

    def __setitem__(self, key: _Key, value: _Compiled) -> None:
        super().__setitem__(key, value)
        self.index[key] = value

    def popitem(self) -> tuple[_Key, _Compiled]:
        key, value = super().popitem()
        self.index.pop(key, None)
        return key, value


class _Compiler:
    """One environment and its cache of compiled sources, bounded by their weight
    (safe to share between threads: a hit is one dict read, a store takes a lock)."""

    def __init__(self, environment: SandboxEnvironment, variable_start: str) -> None:
        self.environment = environment
        self.variable_start = variable_start
        self._tags = re.compile(re.escape(variable_start) + r".*?}}|{%.*?%}|{#.*?#}", re.S)
        # Three lookups, each answering its own question at its own cost, so not
        # one cache:
        # - _cache: this very source compiled? One dict read keyed by the text.
        # - _shapes: a source not seen before, once lexed: is its shape (its tags,
        #   the text between them left out) compiled? Keyed by the lexer's tokens,
        #   so asking costs a lexing of the source.
        # - _plain_shapes: the latest few shapes without whitespace control, as
        #   their tags' text: tried in turn *before* the lexer, by plain string
        #   matching (_match), so a new file of a recent shape costs one scan, not
        #   a lexing. A match is not a key: it cannot be a dict lookup, and the
        #   dict of shapes cannot be scanned in turn without costing every file a
        #   pass over up to 1,024 shapes. Its entries are the compiled templates
        #   of _shapes (it compiles nothing), so the two never disagree; one
        #   dropped from _shapes may live on here, at most _PLAIN_SHAPES of them.
        self._cache = _Entries()
        self._shapes: dict[tuple[tuple[str, Any], ...], _Compiled] = {}
        # the latest shapes without whitespace control, as their tags' text and
        # None for each piece of text between (see _match)
        self._plain_shapes: list[tuple[tuple[str | None, ...], _Compiled]] = []
        env = environment
        self._plain_ok = not (
            env.trim_blocks
            or env.lstrip_blocks
            or env.line_statement_prefix
            or env.line_comment_prefix
            or env.extensions
        )
        self._starts = (variable_start, "{%", "{#")
        self._next_start = re.compile("|".join(re.escape(start) for start in self._starts))
        self._lock = threading.Lock()
        self._hits = self._misses = 0  # counted without a lock: approximate under threads

    def cache_info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._cache), int(self._cache.currsize))

    def compile(self, source: str, allow_lone: bool) -> _Compiled:
        key = (source, allow_lone)
        found = self._cache.index.get(key)
        if found is not None:
            self._hits += 1
            return found
        self._misses += 1
        # a file (a lone expression keeps its type: compiled on its own)
        compiled = None if allow_lone else self.shape(source)
        if compiled is None:
            compiled = self._compile(source, allow_lone)
        if len(source) <= _CACHE_ITEM:
            weighed = _Compiled(
                compiled.template,
                compiled.lone,
                compiled.quick,
                self.weight(source),
                compiled.text,
                compiled.plan,
            )
            with self._lock:
                if key not in self._cache:
                    self._cache[key] = weighed
        return compiled

    def weight(self, source: str) -> int:
        """What ``source`` compiled counts for in the cache (see _CACHE_BUDGET)."""
        tagged = sum(m.end() - m.start() for m in self._tags.finditer(source))
        return _BASE_WEIGHT + _TAG_WEIGHT * tagged + _TEXT_WEIGHT * (len(source) - tagged)

    def shape(self, source: str) -> _Compiled | None:
        """``source`` as its shape's template and its plain text, or None when it
        must compile on its own.

        Files of a skeleton often differ only in their plain text: the same tags
        around other lines. Each piece of text between tags (as Jinja's lexer
        gives it, whitespace control applied) becomes ``falsework_text[i]``: the
        tags alone are the key, so such files share one compiled template and
        each renders with its own text. A piece of text printed as an expression
        comes out as the constant would: as it is (``finalize`` leaves strings
        alone, nothing is escaped). The tags are parsed and checked as the whole
        source would be; anything unusual (a lexer or parser error, the name
        ``falsework_text`` or ``autoescape`` in the source, an extension) compiles
        on its own,
        which gives the usual messages."""
        env = self.environment
        if env.extensions:
            return None
        lexer = env.lexer
        jinja_source = to_jinja(source, self.variable_start)
        for segments, compiled in tuple(self._plain_shapes):
            pieces = self._match(jinja_source, segments)
            if pieces is not None:
                # (the source's own text: its line breaks as written)
                return _Compiled(compiled.template, False, compiled.quick, text=tuple(pieces))
        try:
            # the lexer's raw tokens (``wrap`` converts them for the parser, which
            # only a new shape needs): the key is the tags' text as written
            raw = list(lexer.tokeniter(jinja_source, None))
        except JinjaSyntaxError:
            return None
        breaks = _breaks(jinja_source)
        text: list[str] = []
        key: list[tuple[str, Any]] = []
        for lineno, kind, value in raw:
            if kind == "data":
                key.append(("data", bool(value)))
                if value:
                    text.append(value if breaks is None else _with_breaks(value, lineno, breaks))
            elif kind == "name" and value in (_TEXT, "autoescape"):
                # (text inside {% autoescape %} prints as it is, an expression
                # escaped: such a file compiles alone)
                return None
            else:
                key.append((kind, value))
        shape = tuple(key)
        found = self._shapes.get(shape)
        if found is None:
            try:
                tokens = list(lexer.wrap(iter(raw)))
            except JinjaSyntaxError:
                return None
            found = self._compile_shape(tokens)
            if found is None:
                return None
            with self._lock:
                if len(self._shapes) >= _SHAPES:
                    del self._shapes[next(iter(self._shapes))]
                self._shapes[shape] = found
        self._remember_plain(raw, jinja_source, found)
        return _Compiled(found.template, False, found.quick, text=tuple(text))

    def _remember_plain(
        self, raw: list[tuple[int, str, str]], source: str, found: _Compiled
    ) -> None:
        """Keep the shape of ``raw`` for :meth:`_match` when nothing in it strips
        or moves text (no ``-``/``+`` on a tag, no raw block, no trimming): then
        the text between two tags is exactly what the lexer gives."""
        if not self._plain_ok:
            return
        segments: list[str | None] = []
        tag: list[str] = []
        for _, kind, value in raw:
            if kind == "data":
                segments.append(None)
            elif kind in ("variable_begin", "block_begin", "comment_begin"):
                if value not in self._starts:
                    return  # whitespace control
                tag = [value]
            elif kind in ("variable_end", "block_end", "comment_end"):
                if value not in ("}}", "%}", "#}"):
                    return
                tag.append(value)
                segments.append("".join(tag))
                tag = []
            elif kind in ("raw_begin", "raw_end", "linestatement_begin", "linecomment_begin"):
                return
            else:
                tag.append(value)
        # every character is in a token, in order: else keep nothing
        if tag or "".join(v for _, _, v in raw) != source:
            return
        entry = (tuple(segments), found)
        with self._lock:
            if entry[0] not in (s for s, _ in self._plain_shapes):
                self._plain_shapes.insert(0, entry)
                del self._plain_shapes[_PLAIN_SHAPES:]

    def _match(self, source: str, segments: tuple[str | None, ...]) -> list[str] | None:
        """The pieces of text of ``source`` when it has exactly the tags of
        ``segments`` (a plain shape), else None. The lexer starts a tag at the
        first tag start in the text; a tag's text, the same as the shape's, lexes
        the same; a piece of text is never empty (the lexer gives none)."""
        pos, end = 0, len(source)
        pieces: list[str] = []
        for segment in segments:
            if segment is None:
                found = self._next_start.search(source, pos)
                stop = end if found is None else found.start()
                if stop == pos:
                    return None
                pieces.append(source[pos:stop])
                pos = stop
            elif source.startswith(segment, pos):
                pos += len(segment)
            else:
                return None
        return pieces if pos == end else None

    def _compile_shape(self, tokens: list[Token]) -> _Compiled | None:
        env = self.environment
        # Each piece of text is parsed as plain data holding its number (cheaper
        # than parsing a lookup for it), then becomes ``falsework_text[i]``.
        shaped: list[Token] = []
        index = 0
        for token in tokens:
            if token.type != "data" or not token.value:
                shaped.append(token)
                continue
            shaped.append(Token(token.lineno, "data", str(index)))
            index += 1
        parser = NunjucksParser(env, "", None, None)
        parser.stream = TokenStream(iter(shaped), None, None)
        try:
            tree = parser.parse()
            check_ast(tree)
            _place_text(tree)
            return _Compiled(env.from_string(tree), False, is_quick(tree))
        except (JinjaSyntaxError, TemplateError):
            return None

    def cached(self, source: str, allow_lone: bool) -> _Compiled | None:
        return self._cache.index.get((source, allow_lone))

    def _compile(self, source: str, allow_lone: bool) -> _Compiled:
        env = self.environment
        jinja_source = to_jinja(source, self.variable_start)
        try:
            tree = env.parse(jinja_source)
            check_ast(tree)
            breaks = _breaks(jinja_source)
            if breaks is not None:
                for data in tree.find_all(nodes.TemplateData):
                    data.data = _with_breaks(data.data, data.lineno, breaks)
            quick = is_quick(tree)
            body = tree.body
            if (
                allow_lone
                and len(body) == 1
                and isinstance(body[0], nodes.Output)
                and len(body[0].nodes) == 1
                and not isinstance(body[0].nodes[0], nodes.TemplateData)
            ):
                expr = body[0].nodes[0]
                plan = _lookups(body)  # (read from the tree as parsed)
                assign = nodes.Assign(nodes.Name(_RESULT, "store"), expr, lineno=expr.lineno)
                template = env.from_string(nodes.Template([assign], lineno=1))
                return _Compiled(template, True, quick, plan=plan)
            plan = _lookups(body) if allow_lone else None
            return _Compiled(env.from_string(tree), False, quick, plan=plan)
        except JinjaSyntaxError as exc:
            where = f" (line {exc.lineno})" if exc.lineno and "\n" in source else ""
            raise TemplateSyntaxError(
                f"cannot parse template {_snippet(source)}{where}: {exc.message}"
            ) from None


class Renderer:
    """One per process: compiles each source once (a cache bounded by size) and
    renders it in Jinja's immutable sandbox with a time and an output-size limit.
    Safe to share between threads (the runner renders in a small pool)."""

    def __init__(
        self,
        *,
        timeout: float = 2.0,
        max_output: int = 10_000_000,
        cookiecutter_compat: bool = False,
    ) -> None:
        self.timeout = timeout
        self.max_output = max_output
        self.cookiecutter_compat = cookiecutter_compat
        self._variable_start = "{{" if cookiecutter_compat else "${{"
        self._markers = (self._variable_start, "{%", "{#")
        self._compilers: dict[tuple[bool, bool], _Compiler] = {}
        self._main = self._compiler(False, False)

    def _compiler(self, trim_blocks: bool, lstrip_blocks: bool) -> _Compiler:
        key = (trim_blocks, lstrip_blocks)
        compiler = self._compilers.get(key)
        if compiler is None:
            env = SandboxEnvironment(
                variable_start=self._variable_start,
                max_output=self.max_output,
                trim_blocks=trim_blocks,
                lstrip_blocks=lstrip_blocks,
            )
            compiler = self._compilers[key] = _Compiler(env, self._variable_start)
        return compiler

    def is_template(self, text: str) -> bool:
        """Whether a string has anything to render (else it is returned as is)."""
        start, block, comment = self._markers
        return start in text or block in text or comment in text

    def has_template(self, value: Any) -> bool:
        """Whether any string in ``value`` (dicts and lists walked) has anything to
        render: ``render`` of a value without one is a copy, cheap anywhere."""
        return self._has_template(value)

    def renders_quickly(self, value: Any) -> bool:
        """Whether ``render(value, ...)`` takes time linear in the data it reads:
        every template string in ``value`` is already compiled (a first compile
        may be slow) and uses only lookups, operators, ``if`` and linear filters.
        The runner renders such values inline and the rest in its threads."""
        return self.quickness(value) != SLOW

    def quickness(self, value: Any) -> int:
        """``renders_quickly`` and ``has_template`` in one walk: ``PLAIN`` (no
        string to render: ``render(value, ..., plain=True)`` copies it),
        ``QUICK`` (renders quickly) or ``SLOW``."""
        kind = type(value)  # exact types first: most values are decoded JSON
        if kind is str or (kind is not dict and kind is not list and isinstance(value, str)):
            start, block, comment = self._markers
            if start not in value and block not in value and comment not in value:
                return PLAIN
            compiled = self._main.cached(value, True)
            return QUICK if compiled is not None and compiled.quick else SLOW
        if kind is dict or kind is list or isinstance(value, dict | list):
            found = PLAIN
            for item in value.values() if isinstance(value, dict) else value:
                quickness = self.quickness(item)
                if quickness == SLOW:
                    return SLOW
                found = found or quickness
            return found
        return PLAIN

    # -- public API -----------------------------------------------------------

    def render(
        self, value: Any, context: Mapping[str, Any], *, missing: Any = None, plain: bool = False
    ) -> Any:
        """Deep render: every string in dicts/lists is rendered. A string that is
        one lone ``${{ expr }}`` keeps the expression's type; one that gives
        nothing (an undefined value, or text rendering to "") is left out of the
        object holding it and is None in a list, as in Backstage. ``value``
        itself giving nothing returns ``missing``. ``plain``: the caller knows
        ``value`` holds nothing to render (``quickness`` said ``PLAIN``)."""
        if plain:
            return self._render_value(value, {}) if isinstance(value, dict | list) else value
        if isinstance(value, str) and not self.is_template(value):
            return value
        if not isinstance(value, str | dict | list):
            return value
        if type(context) is dict and self._lookups_only(value):
            fast = self._looked_up(value, context)
            if fast is not _SLOW:
                return missing if fast is MISSING else fast
        if not isinstance(value, str) and not self._has_template(value):
            # Nothing to render: the same fresh copy, without the context merge
            # and the watchdog.
            return self._render_value(value, {})
        result = self._guarded(lambda: self._render_value(value, self._vars(context)))
        return missing if result is MISSING else result

    def evaluate(self, value: Any, context: Mapping[str, Any]) -> Any:
        """A step's ``if``: the rendered value (typed); test it with :func:`is_truthy`."""
        return self.render(value, context)

    def render_string(
        self,
        source: str,
        context: Mapping[str, Any],
        *,
        trim_blocks: bool = False,
        lstrip_blocks: bool = False,
    ) -> str:
        """A whole file (fetch:template): always a string, its text between tags
        as written (line breaks, CRLF included, and trailing newlines kept)."""
        if not self.is_template(source):
            return source
        compiler = self._compiler(trim_blocks, lstrip_blocks)

        def run() -> str:
            compiled = compiler.compile(source, False)
            variables = self._vars(context)
            if compiled.text is not None:
                variables[_TEXT] = compiled.text
            return self._run_text(compiled.template, variables, source)

        return self._guarded(run)

    def variables(self, text: str) -> set[str]:
        """The top-level names a template reads (``parameters``, ``secrets``...);
        empty when it does not parse (``check`` reports that)."""
        if not self.is_template(text):
            return set()
        env = self._main.environment
        try:
            tree = env.parse(to_jinja(text, self._variable_start))
        except JinjaSyntaxError:
            return set()
        return set(meta.find_undeclared_variables(tree))

    def portability(self, text: str, parameter_types: Mapping[str, str] | None = None) -> list[str]:
        """What ``text`` does differently on Backstage (``templating.portability``):
        one message per construct, with its line when ``text`` has several; none
        when it does not parse (``check`` reports that)."""
        from falsework.templating import portability  # `templates validate` only

        if not self.is_template(text):
            return []
        env = self._main.environment
        source = to_jinja(text, self._variable_start)
        try:
            tree = env.parse(source)
            tokens = list(env.lex(source))
        except (JinjaSyntaxError, TemplateError):
            return []
        many = "\n" in text.strip()
        return [
            f"line {note.line}: {note.message}" if many else note.message
            for note in portability.notes(tree, tokens, parameter_types or {})
        ]

    def check(self, value: Any) -> list[str]:
        """Parse (never run) every string in ``value``; one message per problem,
        prefixed with its path inside ``value`` (``values.name: ...``)."""
        problems: list[str] = []

        def walk(item: Any, path: str) -> None:
            if isinstance(item, str):
                if self.is_template(item):
                    try:
                        self._guarded(lambda: self._main.compile(item, True))
                    except TemplateError as exc:
                        problems.append(f"{path}: {exc.message}" if path else exc.message)
            elif isinstance(item, dict):
                for key, sub in item.items():
                    walk(sub, f"{path}.{key}" if path else str(key))
            elif isinstance(item, list):
                for index, sub in enumerate(item):
                    walk(sub, f"{path}[{index}]")

        walk(value, "")
        return problems

    # -- internals ------------------------------------------------------------

    def _vars(self, context: Mapping[str, Any]) -> dict[str, Any]:
        # Merged once per call so each string renders with a shared context
        # (Jinja's ``shared=True`` skips its own per-render merge).
        merged = {**self._main.environment.globals, **context}
        if self.cookiecutter_compat and "cookiecutter" not in merged and "values" in merged:
            merged["cookiecutter"] = merged["values"]
        return merged

    def _guarded(self, run: Callable[[], T]) -> T:
        token = WATCHDOG.start(self.timeout)
        try:
            return run()
        except RenderTimeout:
            raise TemplateSecurityError(
                f"rendering took longer than the limit of {self.timeout:g}s"
            ) from None
        except MemoryError:
            raise TemplateSecurityError("rendering ran out of memory") from None
        finally:
            WATCHDOG.stop(token)

    def _has_template(self, value: Any) -> bool:
        if isinstance(value, str):
            return self.is_template(value)
        if isinstance(value, dict):
            return any(self._has_template(v) for v in value.values())
        if isinstance(value, list):
            return any(self._has_template(v) for v in value)
        return False

    def _lookups_only(self, value: Any) -> bool:
        """Whether every template string in ``value`` is compiled to a plan of
        plain lookups (asked first: a value that mixes them with anything else
        goes to Jinja without a lookup done in vain)."""
        if isinstance(value, str):
            if not self.is_template(value):
                return True
            compiled = self._main.cached(value, True)
            return compiled is not None and compiled.plan is not None
        if isinstance(value, dict | list):
            for item in value.values() if isinstance(value, dict) else value:
                if not self._lookups_only(item):
                    return False
        return True

    def _looked_up(self, value: Any, context: dict[str, Any]) -> Any:
        """``_render_value`` without Jinja for a value whose every template string
        is compiled and made of plain lookups that find plain values (see
        ``_lookups``), else ``_SLOW``: the same result, by dict reads. Bounded by
        the data it reads, so neither the watchdog nor the context merge."""
        if isinstance(value, str):
            if not self.is_template(value):
                return MISSING if value == "" else value
            compiled = self._main.cached(value, True)
            if compiled is None or compiled.plan is None:
                return _SLOW
            if compiled.lone:
                (path,) = compiled.plan
                found = _look_up(path, context) if isinstance(path, tuple) else _SLOW
                return _SLOW if found is _SLOW else to_plain(found, self.max_output)
            pieces: list[str] = []
            for piece in compiled.plan:
                if isinstance(piece, str):
                    pieces.append(piece)
                    continue
                found = _look_up(piece, context)
                if type(found) is not str:  # (how anything else prints: Jinja's finalize)
                    return _SLOW
                pieces.append(found)
            text = "".join(pieces)
            if len(text) > self.max_output:
                return _SLOW  # (the full path says so)
            return MISSING if text == "" else text
        if isinstance(value, dict):
            rendered: dict[Any, Any] = {}
            for key, item in value.items():
                done = self._looked_up(item, context)
                if done is _SLOW:
                    return _SLOW
                if done is not MISSING:
                    rendered[key] = done
            return rendered
        if isinstance(value, list):
            items: list[Any] = []
            for item in value:
                done = self._looked_up(item, context)
                if done is _SLOW:
                    return _SLOW
                items.append(None if done is MISSING else done)
            return items
        return value

    def _render_value(self, value: Any, variables: dict[str, Any]) -> Any:
        if isinstance(value, str):
            if not self.is_template(value):
                # Backstage renders every string, and "" renders to nothing: an
                # empty string is left out like an undefined value.
                return MISSING if value == "" else value
            return self._render_str(value, variables)
        if isinstance(value, dict):
            rendered = {k: self._render_value(v, variables) for k, v in value.items()}
            return {k: v for k, v in rendered.items() if v is not MISSING}
        if isinstance(value, list):
            items = [self._render_value(v, variables) for v in value]
            return [None if item is MISSING else item for item in items]
        return value

    def _render_str(self, source: str, variables: dict[str, Any]) -> Any:
        compiled = self._main.compile(source, True)
        if compiled.lone:
            template = compiled.template
            try:
                context = template.new_context(variables, shared=True)
                for _ in template.root_render_func(context):
                    pass
                result = context.vars.get(_RESULT)
            except TemplateError:
                raise
            except Exception as exc:
                raise _runtime_error(source, exc) from None
            if isinstance(result, Undefined):
                return MISSING
            return to_plain(result, self.max_output)
        text = self._run_text(compiled.template, variables, source)
        return MISSING if text == "" else text

    def _run_text(self, template: Template, variables: dict[str, Any], source: str) -> str:
        limit = self.max_output
        chunks: list[str] = []
        size = 0
        try:
            context = template.new_context(variables, shared=True)
            for chunk in template.root_render_func(context):
                size += len(chunk)
                if size > limit:
                    raise TemplateSecurityError(
                        f"the template renders more than the limit of {limit:,} characters"
                    )
                chunks.append(chunk)
        except TemplateError:
            raise
        except Exception as exc:
            raise _runtime_error(source, exc) from None
        return "".join(chunks)


def _place_text(tree: nodes.Template) -> None:
    """In a shape's checked tree, each piece of plain data (its text is the
    piece's number: ``_compile_shape``) becomes ``falsework_text[i]``, marked as a
    piece (environment.PIECE: written without the sandbox). Data is only ever an
    Output's child."""
    for output in tree.find_all(nodes.Output):
        for place, child in enumerate(output.nodes):
            if isinstance(child, nodes.TemplateData):
                line = child.lineno
                output.nodes[place] = nodes.Getitem(
                    nodes.Name(_TEXT, "load", lineno=line),
                    nodes.Const(int(child.data), lineno=line),
                    PIECE,
                    lineno=line,
                )


def _lookups(body: list[nodes.Node]) -> _Plan | None:
    """The plan of a parsed string whose every expression is a plain lookup (a
    name and one or more ``.attribute``: ``${{ parameters.name }}``,
    ``${{ parameters.repo.owner }}``), between any text; None for anything else
    (a filter, an operator, ``[...]``, a call, a block, a bare name, a constant)."""
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    plan: list[str | tuple[str, ...]] = []
    for node in body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            plan.append(node.data)
            continue
        names: list[str] = []
        while isinstance(node, nodes.Getattr):
            names.append(node.attr)
            node = node.node
        if not names or not isinstance(node, nodes.Name) or node.ctx != "load":
            return None
        names.append(node.name)
        plan.append(tuple(reversed(names)))
    return tuple(plan)


def _look_up(path: tuple[str, ...], context: dict[str, Any]) -> Any:
    """What Jinja's lookup of ``path`` gives when every step is a key of a plain
    dict (the sandbox's ``getattr`` reads an object's keys first); ``_SLOW`` for
    anything else: a missing key (undefined, or a method of the object), a name
    only the environment's globals have, a value of another type."""
    found = context.get(path[0], _SLOW)
    for name in path[1:]:
        if type(found) is not dict:
            return _SLOW
        found = found.get(name, _SLOW)
    return found


def _runtime_error(source: str, exc: Exception) -> TemplateError:
    if isinstance(exc, JinjaSecurityError):
        return TemplateSecurityError(f"{_snippet(source)}: {exc}")
    if isinstance(exc, RecursionError):
        return TemplateRenderError(f"cannot render {_snippet(source)}: recursion too deep")
    message = str(exc) or type(exc).__name__
    return TemplateRenderError(f"cannot render {_snippet(source)}: {message}")
