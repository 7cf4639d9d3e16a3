"""Loads the named SQL queries of one dialect from ``engine/sql/<dialect>.sql``.

A block starts with ``-- name: NAME``. The ``task_list`` block is read in each
order of ``models.ListOrder`` (a closed set): it becomes ``task_list_<order>``,
its ``__ORDER__`` replaced by that order's fixed clause, here, once; no text a
caller sends ever reaches a query.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from falsework.engine.models import ListOrder

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load(dialect: str) -> dict[str, str]:
    """Return ``{name: sql}`` for ``postgres`` or ``sqlite``."""
    path = resources.files("falsework.engine").joinpath("sql", f"{dialect}.sql")
    parts = _HEADER.split(path.read_text("utf-8"))
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip().rstrip(";")
    listing = queries.pop("task_list")
    for order in ListOrder:
        queries[order.query] = listing.replace("__ORDER__", order.value)
    return queries
