"""YAML mistakes in a template file, said the way an author thinks of them: the line
where the mistake is and what to do, not the parser's state (``expected <block end>,
but found '<block mapping start>'``).

PyYAML reports where it gave up, which is often a line after the mistake, and in
the words of its state machine; no YAML library words its errors for people, so the
common cases are translated here, from what PyYAML says (its ``problem`` and
``context``) to a sentence and the line that holds the mistake. Anything else keeps
PyYAML's ``problem`` text without its token names. Duplicate keys, which PyYAML
accepts silently (the last one wins) and Backstage refuses, are found in the node
tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

_TOKENS = {
    "<block end>": "the end of the block",
    "<block mapping start>": "a new key",
    "<block sequence start>": "a new list item",
    "<stream end>": "the end of the file",
    "<document start>": "'---'",
    "<scalar>": "a value",
    "'?'": "a key",
    "'-'": "a list item",
}


def _line(mark: yaml.Mark | None) -> int | None:
    return int(mark.line) + 1 if mark is not None else None


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """``(line, message)`` for a YAML error: the line of the mistake (1-based)."""
    problem = str(getattr(exc, "problem", "") or "")
    context = str(getattr(exc, "context", "") or "")
    at = _line(getattr(exc, "problem_mark", None))
    opened = _line(getattr(exc, "context_mark", None))
    if "mapping values are not allowed here" in problem:
        return at, (
            "a ': ' where no key can start: this line is indented further than the key "
            "above it, or its value holds ': ' and needs quotes"
        )
    if "could not find expected ':'" in problem:
        return opened or at, (
            "a line without 'key: value' inside a mapping: add the ':', or indent the "
            "line under the key it continues"
        )
    if "cannot start any token" in problem:
        char = re.search(r"found character '(.*?)'", problem)
        found = char[1] if char else "?"
        if found == "\\t":
            return at, "a tab character: YAML indents with spaces only"
        return at, f"a value cannot start with {found!r}: put the value in quotes"
    if "quoted scalar" in context and ("end of stream" in problem or "separator" in problem):
        return opened or at, "a quote opened on this line is never closed"
    if "unknown escape character" in problem:
        char = re.search(r"character '(.*?)'", problem)
        shown = f"\\{char[1]}" if char else "this escape"
        return at, (
            f"{shown!r} is not an escape in a double-quoted value: use single quotes, "
            "or write the backslash twice"
        )
    if "flow sequence" in context:
        return opened or at, (
            "a '[' opened on this line is not closed by ']' (a value starting with '[' "
            "is read as a list: quote it)"
        )
    if "flow mapping" in context:
        return opened or at, (
            "a '{' opened on this line is not closed by '}' (a value starting with '{' "
            'is read as a mapping: quote it, e.g. "${{ parameters.name }}")'
        )
    if "found undefined alias" in problem:
        name = problem.rsplit(" ", 1)[-1].strip("'")
        return at, (
            f"'*{name}' refers to an anchor '&{name}' defined nowhere above (quote a value "
            "that starts with '*')"
        )
    if "found unhashable key" in problem:
        return at, (
            "a value starting with '{' is read as a YAML mapping: quote it, e.g. "
            '"${{ parameters.name }}"'
        )
    if problem.startswith("expected <block end>") or "did not find expected key" in problem:
        where = f" (the block starts at line {opened})" if opened and opened != at else ""
        return at, f"this line's indentation does not match the lines of its block{where}"
    if "did not find expected '-' indicator" in problem:
        return at, "a list item without '-', or indented differently from the items above it"
    message = problem or str(exc).splitlines()[0]
    for token, words in _TOKENS.items():
        message = message.replace(token, words)
    return at, f"not valid YAML: {message}"


def duplicate_keys(node: yaml.Node | None) -> Iterator[tuple[int, str]]:
    """``(line, message)`` for every key given twice in one mapping."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = int(key.start_mark.line) + 1
                    if key.value in seen:
                        yield (
                            line,
                            (
                                f"the key {key.value!r} is given twice (also line "
                                f"{seen[key.value]}); the last one would win"
                            ),
                        )
                    else:
                        seen[key.value] = line
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def key_line(node: yaml.Node, tokens: tuple[str | int, ...]) -> int | None:
    """The line of the key (or list item) ``tokens`` names, None if it is not there."""
    current: yaml.Node | None = node
    line: int | None = None
    for token in tokens:
        found: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode) and isinstance(token, str):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == token:
                    line, found = int(key.start_mark.line) + 1, value
                    break
        elif isinstance(current, yaml.SequenceNode) and isinstance(token, int):
            if 0 <= token < len(current.value):
                found = current.value[token]
                line = int(found.start_mark.line) + 1
        if found is None:
            return None
        current = found
    return line


MAX_YAML_DEPTH = 200
"""The deepest nesting of mappings and lists a YAML text read here may have."""


class _Bounded(Composer):
    """Composes nodes, refusing nesting deeper than ``max_depth`` with a
    ``ComposerError`` (a YAML error like any other): PyYAML composes recursively,
    so a 10,000-deep ``[[[...]]]`` would otherwise end in a RecursionError."""

    max_depth = MAX_YAML_DEPTH
    _depth = 0

    if TYPE_CHECKING:  # the parser's, beside this class in the loader

        def check_event(self, *choices: Any) -> Any: ...

        def peek_event(self) -> Any: ...

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        opens = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if opens:
            if self._depth >= self.max_depth:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than the limit of {self.max_depth} levels",
                    self.peek_event().start_mark,
                )
            self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            if opens:
                self._depth -= 1


class BoundedLoader(_Bounded, yaml.SafeLoader):
    """PyYAML's safe loader refusing nesting deeper than ``max_depth`` (``_Bounded``)."""


def load_value(text: str, *, max_depth: int = MAX_YAML_DEPTH) -> object:
    """``yaml.safe_load(text)``, refusing nesting deeper than ``max_depth``."""
    loader = BoundedLoader(text)
    loader.max_depth = max_depth
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_value(text: str, where: str, *, max_depth: int = MAX_YAML_DEPTH) -> object:
    """``load_value``, with a YAML error (nesting too deep among them) as one
    line: a ValueError naming ``where`` (``--set name``, a file)."""
    try:
        return load_value(text, max_depth=max_depth)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"{where}: {problem}") from None


class CoreLoader(BoundedLoader):
    """PyYAML reading plain scalars as YAML 1.2's core schema does, as Backstage's
    parser (the ``yaml`` package) reads a template: ``yes``, ``no``, ``on``,
    ``off`` and ``y`` are text, not booleans; dates are text, not ``date``s; and
    ``1_000`` or ``1:20`` are text, not numbers. (PyYAML speaks YAML 1.1, where a
    parameter with ``enum: [yes, no]`` or ``default: 2024-01-01`` would no longer
    be a string.)"""


CoreLoader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag
        not in (
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp",
        )
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _core_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # "010" is ten in YAML 1.2 (eight in 1.1)


CoreLoader.add_constructor("tag:yaml.org,2002:int", _core_int)


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastCoreLoader(_Bounded, CParser, SafeConstructor, Resolver):
        """``CoreLoader`` with libyaml's scanner and parser (C) under the same
        composer (bounded, above), resolvers and constructors (Python): the same
        documents, without PyYAML's pure-Python reader, scanner and parser (issue 17:
        12.7 M of the 1,022 M instructions of ``falsework run`` of hello-world).
        Only for text that reads without error: the errors are PyYAML's own (see
        ``load_all``)."""

        yaml_implicit_resolvers = CoreLoader.yaml_implicit_resolvers
        yaml_constructors = CoreLoader.yaml_constructors
        yaml_multi_constructors = CoreLoader.yaml_multi_constructors

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _FAST: type[yaml.SafeLoader] | None = _FastCoreLoader  # type: ignore[assignment]
else:  # pragma: no cover - PyYAML built without libyaml
    _FAST = None


def load_all(text: str) -> list[object]:
    """The documents of a template file, read as Backstage reads them (``CoreLoader``).

    Read with libyaml's parser when PyYAML has it; a text it refuses is read
    again by PyYAML's own, so a mistake is reported in the same words and on the
    same line as ever (``yaml_problem`` translates those)."""
    if _FAST is not None:
        try:
            return [d for d in yaml.load_all(text, Loader=_FAST) if d is not None]
        except yaml.YAMLError:
            pass
    return [d for d in yaml.load_all(text, Loader=CoreLoader) if d is not None]
