"""Which catalog templates are broken: ``falsework templates validate``'s checks, run by
the server on the templates it offers.

A broken template (a parameter schema that is not JSON Schema, an unknown action, an
expression that does not parse...) fails whoever runs it, so the gallery hides it from
users and shows it, with the validation messages, to template authors and admins. The
server log names each broken template once per version of its file.

The checks read the template file and its skeleton, so they run in a thread and their
result is kept per file until the file changes (or ``ttl`` seconds pass: a skeleton
edit does not touch the template file).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from falsework.templates import Problem, Template, validate_template_file
from falsework.types import JSONObject

log = logging.getLogger("falsework.templates")


@dataclass
class _Entry:
    stat: tuple[int, int]
    checked_at: float
    problems: list[Problem]


@dataclass
class TemplateChecks:
    """The problems of each template file, computed once per version of the file."""

    ttl: float = 60.0
    _cache: dict[Path, _Entry] = field(default_factory=dict)

    async def problems(
        self, templates: Collection[Template], known_actions: Collection[str]
    ) -> dict[str, list[JSONObject]]:
        """``{template ref: [problem, ...]}`` for the broken ones among ``templates``."""
        todo = [t for t in templates if self._stale(t.path)]
        if todo:
            await anyio.to_thread.run_sync(self._check, todo, known_actions)
        broken: dict[str, list[JSONObject]] = {}
        for template in templates:
            entry = self._cache.get(template.path)
            if entry is not None and entry.problems:
                broken[template.ref] = [_json(p, template.path) for p in entry.problems]
        return broken

    def _stale(self, path: Path) -> bool:
        entry = self._cache.get(path)
        if entry is None or time.monotonic() - entry.checked_at >= self.ttl:
            return True
        return entry.stat != _stat(path)

    def _check(self, templates: list[Template], known_actions: Collection[str]) -> None:
        for path in {t.path for t in templates}:
            stat = _stat(path)
            before = self._cache.get(path)
            problems = validate_template_file(path, known_actions)
            self._cache[path] = _Entry(stat, time.monotonic(), problems)
            if problems and (before is None or before.stat != stat or not before.problems):
                refs = ", ".join(sorted(t.ref for t in templates if t.path == path))
                log.warning(
                    "broken template %s (%s): %d problem(s), hidden from users: %s",
                    refs,
                    path,
                    len(problems),
                    "; ".join(str(p) for p in problems[:5]),
                )


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def problem_json(problem: Problem, name: str | None = None) -> JSONObject:
    """One problem as the API shows it: file name (not the server's path), line, YAML
    path and message, as ``falsework templates validate --json`` prints them."""
    return {
        "file": name if name is not None else problem.file.name,
        "line": problem.line,
        "path": problem.path,
        "message": problem.message,
    }


def _json(problem: Problem, template_path: Path) -> JSONObject:
    try:
        name = problem.file.relative_to(template_path.parent).as_posix()
    except ValueError:
        name = problem.file.name
    return problem_json(problem, name)
