"""Glob patterns as Backstage's globby reads them, matched against relative
POSIX paths: ``**`` spans directories, ``*`` and ``?`` stay inside one name,
``[...]`` classes and ``{a,b}`` alternatives. A leading ``./`` is ignored, and a
pattern matches from the root (``*.png`` is top-level only, as in globby).

Shared by ``fetch:template`` (which files to copy without templating) and
``templates validate`` (which skeleton files to check), so the two agree."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    pat = pat.rstrip("/")
    return re.compile(_translate(pat) + r"\Z", re.DOTALL)


def _translate(pat: str) -> str:
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            if pat.startswith("**", i):
                # "**/" matches zero or more whole directories; a bare "**" anything.
                if pat.startswith("**/", i):
                    out.append(r"(?:.*/)?")
                    i += 3
                else:
                    out.append(r".*")
                    i += 2
                continue
            out.append(r"[^/]*")
        elif c == "?":
            out.append(r"[^/]")
        elif c == "[":
            j = pat.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pat[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "{":
            j = _closing_brace(pat, i)
            if j == -1:
                out.append(re.escape(c))
            else:
                alts = _split_top(pat[i + 1 : j])
                out.append("(?:" + "|".join(_translate(a) for a in alts) + ")")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _closing_brace(pat: str, start: int) -> int:
    depth = 0
    for k in range(start, len(pat)):
        if pat[k] == "{":
            depth += 1
        elif pat[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _split_top(body: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in body:
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def matches(path: str, patterns: Iterable[str]) -> bool:
    """True when ``path`` (relative, POSIX, no trailing slash) matches a pattern."""
    return any(compile_glob(p).match(path) for p in patterns)


def matches_or_under(path: str, patterns: Iterable[str]) -> bool:
    """True when ``path`` or one of its parent folders matches: a matched folder
    covers its contents."""
    pats = list(patterns)
    if not pats:
        return False
    parts = path.split("/")
    return any(matches("/".join(parts[:k]), pats) for k in range(len(parts), 0, -1))


def has_magic(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[{")
