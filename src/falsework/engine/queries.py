"""Loads the named SQL queries of one dialect from ``engine/sql/<dialect>.sql``."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load(dialect: str) -> dict[str, str]:
    """Return ``{name: sql}`` for ``postgres`` or ``sqlite``."""
    path = resources.files("falsework.engine").joinpath("sql", f"{dialect}.sql")
    source = path.read_text("utf-8")
    parts = _HEADER.split(source)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries
