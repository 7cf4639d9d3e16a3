"""A small renderer for the subset of Helm's Go templates that deploy/helm/falsework uses.

No `helm` binary is installable here (not on PyPI, npm or Debian), so the chart's tests
render it with this. It knows exactly this much and refuses anything else (an
unknown function, a missing value, a construct it does not parse), so a chart that
renders here uses nothing it does not know:

- actions ``{{ pipeline }}`` with the trim markers ``{{-`` and ``-}}``, comments
  ``{{/* ... */}}``, and ``if`` / ``else`` / ``end``;
- values ``.Values.a.b``, ``.Release.Name``, ``.Release.Namespace``, ``.Chart.Name``,
  ``.Chart.Version``, ``.Chart.AppVersion``, string and integer literals, and
  parenthesised pipelines;
- pipelines ``a | f x`` (the value goes last, as in Go) with the functions ``quote``,
  ``default``, ``required``, ``toYaml``, ``indent``, ``nindent``, ``add``, ``not``,
  ``and``, ``or``, ``eq``.

What it does not do that ``helm template`` does: the rest of Sprig and Go's template
language, ``_helpers.tpl``/``include``, ``.Capabilities``, schema files, subcharts.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)


class TemplateError(Exception):
    pass


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [], {})


def _to_yaml(value: Any) -> str:
    # sigs.k8s.io/yaml, which Helm's toYaml uses, sorts keys
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False).rstrip("\n")


def _indent(n: int, text: str) -> str:
    return "\n".join((" " * n + line) if line else line for line in str(text).split("\n"))


def _required(message: str, value: Any) -> Any:
    if not _truthy(value):
        raise TemplateError(message)
    return value


FUNCTIONS: dict[str, Any] = {
    "quote": lambda value: json.dumps("" if value is None else str(value)),
    "default": lambda fallback, value: value if _truthy(value) else fallback,
    "required": _required,
    "toYaml": _to_yaml,
    "indent": _indent,
    "nindent": lambda n, text: "\n" + _indent(n, text),
    "add": lambda *numbers: sum(int(n) for n in numbers),
    "not": lambda value: not _truthy(value),
    "and": lambda *values: all(_truthy(v) for v in values),
    "or": lambda *values: any(_truthy(v) for v in values),
    "eq": lambda a, b: a == b,
}


class Renderer:
    def __init__(self, values: dict[str, Any], release: dict[str, Any], chart: dict[str, Any]):
        self.scope = {"Values": values, "Release": release, "Chart": chart}

    # -- expressions -------------------------------------------------------------------
    def _term(self, word: str) -> Any:
        if word.startswith("."):
            value: Any = self.scope
            for part in word[1:].split("."):
                if not isinstance(value, dict) or part not in value:
                    raise TemplateError(f"no value at {word}")
                value = value[part]
            return value
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        if word in ("true", "false"):
            return word == "true"
        raise TemplateError(f"unsupported term {word!r}")

    def _words(self, text: str) -> list[Any]:
        """The words of a command: literals, dotted values, (sub-pipelines)."""
        out: list[Any] = []
        i = 0
        while i < len(text):
            c = text[i]
            if c.isspace():
                i += 1
            elif c == "(":
                depth, j = 1, i + 1
                while depth:
                    if j >= len(text):
                        raise TemplateError(f"unbalanced ( in {text!r}")
                    depth += {"(": 1, ")": -1}.get(text[j], 0)
                    j += 1
                out.append(("value", self.pipeline(text[i + 1 : j - 1])))
                i = j
            elif c == '"':
                (literal,) = shlex.split(re.match(r'"(?:[^"\\]|\\.)*"', text[i:]).group(0))  # type: ignore[union-attr]
                out.append(("value", literal))
                i += len(re.match(r'"(?:[^"\\]|\\.)*"', text[i:]).group(0))  # type: ignore[union-attr]
            else:
                word = re.match(r"[^\s()]+", text[i:]).group(0)  # type: ignore[union-attr]
                out.append(("word", word))
                i += len(word)
        return out

    def _command(self, text: str, piped: list[Any]) -> Any:
        words = self._words(text)
        if not words:
            raise TemplateError("empty command")
        kind, head = words[0]
        if kind == "word" and head in FUNCTIONS:
            args = [v if k == "value" else self._term(v) for k, v in words[1:]] + piped
            return FUNCTIONS[head](*args)
        if kind == "word" and re.fullmatch(r"[A-Za-z]\w*", head):
            raise TemplateError(f"unsupported function {head!r}")
        if len(words) != 1 or piped:
            raise TemplateError(f"cannot apply {text!r}")
        return head if kind == "value" else self._term(head)

    def pipeline(self, text: str) -> Any:
        parts = _split_pipes(text)
        value = self._command(parts[0], [])
        for part in parts[1:]:
            value = self._command(part, [value])
        return value

    # -- documents ---------------------------------------------------------------------
    def render(self, source: str) -> str:
        tokens: list[tuple[str, str]] = []
        pos = 0
        for match in _ACTION.finditer(source):
            text = source[pos : match.start()]
            if match.group(1):
                text = text.rstrip()
            tokens.append(("text", text))
            tokens.append(("action", match.group(2)))
            pos = match.end()
            if match.group(3):
                rest = source[pos:]
                pos += len(rest) - len(rest.lstrip())
        tokens.append(("text", source[pos:]))
        out, index = self._block(tokens, 0, top=True)
        assert index == len(tokens)
        return out

    def _block(
        self, tokens: list[tuple[str, str]], i: int, *, top: bool, active: bool = True
    ) -> tuple[str, int]:
        """Render from ``i`` to the ``else``/``end`` closing this block; a branch not
        taken (``active`` false) is only parsed, never evaluated (as in Go)."""
        out: list[str] = []
        while i < len(tokens):
            kind, text = tokens[i]
            if kind == "text":
                out.append(text)
                i += 1
                continue
            if text.startswith("/*"):
                if not text.endswith("*/"):
                    raise TemplateError(f"unclosed comment {text!r}")
                i += 1
            elif text in ("end", "else"):
                if top:
                    raise TemplateError(f"{text} without if")
                return "".join(out), i
            elif text.startswith("if "):
                condition = active and _truthy(self.pipeline(text[3:]))
                body, i = self._block(tokens, i + 1, top=False, active=condition)
                other = ""
                if tokens[i][1] == "else":
                    other, i = self._block(
                        tokens, i + 1, top=False, active=active and not condition
                    )
                if tokens[i][1] != "end":
                    raise TemplateError("if without end")
                out.append(body if condition else other)
                i += 1
            elif re.match(r"(range|with|define|template|block|include)\b", text):
                raise TemplateError(f"unsupported action {text!r}")
            else:
                out.append(_show(self.pipeline(text)) if active else "")
                i += 1
        if not top:
            raise TemplateError("if without end")
        return "".join(out), i


def _split_pipes(text: str) -> list[str]:
    parts, depth, quoted, current = [], 0, False, ""
    for c in text:
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
        if c == "|" and not quoted and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += c
    parts.append(current.strip())
    return parts


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    raise TemplateError(f"cannot print {type(value).__name__} {value!r} (use toYaml)")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def render_chart(
    chart_dir: Path,
    values: dict[str, Any] | None = None,
    *,
    name: str = "fw",
    namespace: str = "falsework",
) -> list[dict[str, Any]]:
    """Every manifest of the chart, as ``helm template NAME CHART -n NAMESPACE`` with
    ``values`` over values.yaml would give them (parsed YAML documents)."""
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    chart = {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]}
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    renderer = Renderer(
        _merge(defaults, values or {}),
        {"Name": name, "Namespace": namespace, "Service": "Helm"},
        chart,
    )
    documents: list[dict[str, Any]] = []
    for template in sorted((chart_dir / "templates").glob("*.yaml")):
        try:
            text = renderer.render(template.read_text())
        except TemplateError as exc:
            raise TemplateError(f"{template.name}: {exc}") from None
        for document in yaml.safe_load_all(text):
            if document:
                documents.append(document)
    return documents
