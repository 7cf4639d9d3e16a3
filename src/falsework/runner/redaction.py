"""Secrets redaction: every secret value, in the forms it is likely to leak in,
becomes ``***`` in anything the runner lets out (events, logs, errors, outputs).

The forms: the value itself, reversed, base64 (three spellings), URL-quoted and
JSON-escaped; each matched whatever its letters' case. A template can still
print a secret it transforms otherwise (a slice, every other character, ROT13):
redaction guards against accidents, not against a template that wants to leak
its own secrets (docs/templates.md says so)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"


def _forms(value: str) -> set[str]:
    raw = value.encode("utf-8")
    forms = {
        value,
        value[::-1],
        base64.b64encode(raw).decode("ascii"),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],  # as it appears inside a JSON-encoded string
    }
    return {f for f in forms if f}


class Redactor:
    """Built once per task from its secrets; a no-op when there are none.

    Case-blind by matching the lower-cased forms in the lower-cased text (a
    regular expression with IGNORECASE costs ten times more), and masking the
    same places in the original; a text whose length changes when lower-cased
    (a few non-ASCII letters) takes the IGNORECASE pattern instead.

    Immutable: one instance without secrets is shared by every run that has none
    (``workflow._NO_SECRETS``), so a change to it would reach them all (a pattern
    set on it would mask one task's secrets in every other's events, or hide
    nothing). Setting or deleting an attribute raises ``AttributeError``; the one
    write after ``__init__`` is the IGNORECASE pattern, compiled from the same
    forms on first need, and never on an instance without secrets.
    """

    __slots__ = ("_pattern", "_slow")
    _pattern: re.Pattern[str] | None
    _slow: re.Pattern[str] | None

    def __init__(self, secrets: Mapping[str, Any]) -> None:
        pattern: re.Pattern[str] | None = None
        forms: set[str] = set()
        for value in secrets.values():
            if isinstance(value, str) and value:
                forms |= _forms(value)
            elif value is not None and not isinstance(value, str) and str(value):
                forms |= _forms(json.dumps(value) if isinstance(value, dict | list) else str(value))
        if forms:
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted({f.lower() for f in forms}, key=len, reverse=True)
            pattern = re.compile("|".join(map(re.escape, ordered)))
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_slow", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Redactor cannot be changed (tried to set {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Redactor cannot be changed (tried to delete {name})")

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._pattern is None:
            return value
        lowered = value.lower()
        if len(lowered) != len(value):
            slow = self._slow
            if slow is None:
                slow = re.compile(self._pattern.pattern, re.IGNORECASE)
                object.__setattr__(self, "_slow", slow)  # a cache of _pattern's own
            return slow.sub(MASK, value)
        pieces: list[str] = []
        last = 0
        for match in self._pattern.finditer(lowered):
            pieces.append(value[last : match.start()])
            pieces.append(MASK)
            last = match.end()
        if not pieces:
            return value
        pieces.append(value[last:])
        return "".join(pieces)

    def deep(self, value: Any) -> Any:
        """Redact every string in a JSON-like value (keys included)."""
        if self._pattern is None:
            return value
        return self._deep(value)

    def _deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._deep(k): self._deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._deep(v) for v in value]
        return value
