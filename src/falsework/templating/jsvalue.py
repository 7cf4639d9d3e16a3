"""JavaScript's view of a rendered value, as Nunjucks prints it and as
``JSON.stringify`` writes it: text, JSON, and the plain copy of a value, each
within a size budget (one expression must not ask for gigabytes). Used by the
filters, the regex helpers and the runner."""

from __future__ import annotations

import json
import math
import re
import types
from collections.abc import Iterator, KeysView, Mapping, Set, ValuesView
from typing import Any

from jinja2 import Undefined
from markupsafe import Markup

from falsework.errors import TemplateSecurityError

DEFAULT_LIMIT = 10_000_000


class Budget:
    __slots__ = ("left", "limit", "what")

    def __init__(self, limit: int, what: str) -> None:
        self.left = limit
        self.limit = limit
        self.what = what

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise TemplateSecurityError(
                f"{self.what} would produce more than the limit of {self.limit:,} characters"
            )


def js_str(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """A value as Nunjucks prints it: JS's String(), but undefined/null print empty
    and objects as JSON (more useful than ``[object Object]``)."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list | tuple | Mapping):
        return js_text(value, Budget(limit, "printing a value"))
    return js_scalar(value)


def js_scalar(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    return str(value)


def js_text(value: Any, budget: Budget) -> str:
    if isinstance(value, str):
        budget.spend(len(value))
        return str(value)
    if isinstance(value, list | tuple):
        budget.spend(len(value))
        return ",".join([js_text(item, budget) for item in value])
    if isinstance(value, Mapping):
        return json_text(value, None, budget)
    text = js_scalar(value)
    budget.spend(len(text))
    return text


def to_plain(value: Any, limit: int = DEFAULT_LIMIT, what: str = "the value") -> Any:
    """A JSON-like copy of a rendered value: Undefined → None (dropped from
    objects, as JSON.stringify does), tuples/ranges/generators → lists, Markup →
    str, functions → None. Raises when its JSON form would pass ``limit``."""
    return plain_value(value, Budget(limit, what), 0)


_JSON_SPECIAL = re.compile(r'["\\\x00-\x1f]')
_TWO = '"\\\b\f\n\r\t'  # JSON escapes these in two characters
_SIX = [chr(c) for c in range(32) if chr(c) not in _TWO]  # and these as \u00XX


def json_size(text: str) -> int:
    """The length of ``text`` as a JSON string (quotes and escapes included),
    counted without building it."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2  # (the common case, without a regular expression)
    if _JSON_SPECIAL.search(text) is None:
        return len(text) + 2
    two = sum(text.count(c) for c in _TWO)
    six = sum(text.count(c) for c in _SIX)
    return len(text) + 2 + two + 5 * six


def plain_value(value: Any, budget: Budget, depth: int) -> Any:
    if isinstance(value, str):
        budget.spend(json_size(value))
        return str(value) if isinstance(value, Markup) else value
    if value is None or isinstance(value, bool | int | float):
        budget.spend(8)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)  # JavaScript has one number type: 2.0 is 2
        if isinstance(value, float) and not math.isfinite(value):
            return None  # JSON has no Infinity or NaN (JSON.stringify writes null)
        return value
    if isinstance(value, Undefined):
        budget.spend(4)
        return None
    # Indentation (dump(10)) costs up to 10 characters per level on each line.
    per_item = 2 + 10 * (depth + 1)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, Undefined):
                continue
            name = str(key)
            budget.spend(per_item + json_size(name) + 2)
            out[name] = plain_value(item, budget, depth + 1)
        return out
    if isinstance(
        value, list | tuple | range | types.GeneratorType | Iterator | Set | KeysView | ValuesView
    ):
        items: list[Any] = []
        for item in value:
            budget.spend(per_item)
            items.append(plain_value(item, budget, depth + 1))
        return items
    if callable(value):
        return None
    text = str(value)
    budget.spend(len(text))
    return text


def json_text(value: Any, indent: int | str | None, budget: Budget) -> str:
    if isinstance(indent, int | float) and not isinstance(indent, bool):
        # JSON.stringify clamps the indent to 10 and ignores 0 or less
        width = min(int(indent), 10)
        indent = width if width > 0 else None
    elif isinstance(indent, str):
        indent = indent[:10] or None
    else:
        indent = None
    separators = (",", ":") if indent is None else (",", ": ")
    plain = plain_value(value, budget, 0)
    return json.dumps(plain, indent=indent, separators=separators, ensure_ascii=False)


def js_json(
    value: Any, indent: int | None = None, limit: int = DEFAULT_LIMIT, *, sort_keys: bool = False
) -> str:
    """``JSON.stringify(value, undefined, indent)``: undefined keys left out,
    numbers as JavaScript writes them, non-ASCII as it is (``sort_keys``: a
    stable stringify's order)."""
    if not sort_keys:
        return json_text(value, indent, Budget(limit, "JSON"))
    separators = (",", ":") if indent is None else (",", ": ")
    plain = plain_value(value, Budget(limit, "JSON"), 0)
    return json.dumps(
        plain, indent=indent, separators=separators, ensure_ascii=False, sort_keys=True
    )


# -- Nunjucks' built-in filters where Jinja's differ ------------------------
