"""Secrets redaction: every secret value, in the forms it is likely to leak in,
becomes ``***`` in anything the runner lets out (events, logs, errors, outputs)."""

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
    """Built once per task from its secrets; a no-op when there are none."""

    __slots__ = ("_pattern",)

    def __init__(self, secrets: Mapping[str, Any]) -> None:
        if not secrets:
            self._pattern: re.Pattern[str] | None = None
            return
        forms: set[str] = set()
        for value in secrets.values():
            if isinstance(value, str) and value:
                forms |= _forms(value)
            elif value is not None and not isinstance(value, str) and str(value):
                forms |= _forms(json.dumps(value) if isinstance(value, dict | list) else str(value))
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        return self._pattern.sub(MASK, value) if self._pattern is not None else value

    def deep(self, value: Any) -> Any:
        """Redact every string in a JSON-like value (keys included)."""
        if self._pattern is None:
            return value
        return self._deep(value)

    def _deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._pattern.sub(MASK, value) if self._pattern else value
        if isinstance(value, dict):
            return {self._deep(k): self._deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._deep(v) for v in value]
        return value
