"""TemplateCatalog: the templates found in a list of folders, reloaded when files change.

Reload policy: every :meth:`get` / :meth:`list` re-scans the folders' file
modification times when the last scan is older than ``ttl`` seconds (2 by
default) and re-reads only what changed; :meth:`reload` forces a full re-read.
So an edited template is live within ``ttl`` seconds, with no restart and no
watcher thread.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from falsework.errors import NotFoundError, TemplateError
from falsework.templates.template import DEFAULT_NAMESPACE, Template, load_templates

logger = logging.getLogger(__name__)

_MAX_DEPTH = 6
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "skeleton", "skeletons"})
# A cheap test before parsing: skeleton YAML (often not even valid YAML before
# rendering) is never a Template.
_KIND_TEMPLATE = re.compile(
    rb"^kind:[ \t]*['\"]?Template['\"]?[ \t]*(#[^\r\n]*)?\r?$", re.MULTILINE
)


def candidate_files(root: Path) -> Iterator[Path]:
    """YAML files under ``root`` that declare ``kind: Template``.

    A folder holding a Template is a template folder: its sub-folders (the
    skeleton) are not searched. Hidden folders and ``skeleton`` are skipped.
    """
    if root.is_file():
        if _is_template_file(root):
            yield root
        return
    if not root.is_dir():
        return
    pending: list[tuple[Path, int]] = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        found = False
        subdirs: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS:
                    subdirs.append(Path(entry.path))
            elif entry.name.endswith((".yaml", ".yml")) and _is_template_file(Path(entry.path)):
                found = True
                yield Path(entry.path)
        if not found and depth < _MAX_DEPTH:
            pending.extend((sub, depth + 1) for sub in reversed(subdirs))


def _is_template_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError:
        return False
    return _KIND_TEMPLATE.search(head) is not None


def parse_ref(ref_or_name: str) -> tuple[str, str]:
    """``template:ns/name``, ``ns/name``, ``template:name`` or ``name`` → (namespace, name)."""
    text = ref_or_name.strip()
    kind, sep, rest = text.partition(":")
    if sep:
        if kind.lower() != "template":
            raise NotFoundError(f"Template {text} not found (not a template reference)")
        text = rest
    namespace, sep, name = text.partition("/")
    if not sep:
        namespace, name = DEFAULT_NAMESPACE, text
    return namespace.lower(), name.lower()


class TemplateCatalog:
    """The templates of some folders (earlier folders win on a duplicate ref)."""

    def __init__(self, dirs: list[Path], *, ttl: float = 2.0) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.ttl = ttl
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._files: dict[Path, tuple[int, int]] = {}  # path → (mtime_ns, size)
        self._by_file: dict[Path, list[Template]] = {}
        self._by_key: dict[tuple[str, str], Template] = {}
        self._file_problems: dict[Path, str] = {}
        self._scanned_at: float | None = None
        self._generation = 0

    @property
    def generation(self) -> int:
        """Grows whenever the set of templates changed (for callers' caches)."""
        self._refresh()
        return self._generation

    def get(self, ref_or_name: str) -> Template:
        self._refresh()
        key = parse_ref(ref_or_name)
        found = self._by_key.get(key)
        if found is None:
            raise NotFoundError(f"Template template:{key[0]}/{key[1]} not found")
        return found

    def list(self) -> builtins.list[Template]:
        self._refresh()
        return sorted(self._by_key.values(), key=lambda t: (t.namespace, t.name))

    def reload(self) -> None:
        with self._lock:
            self._files.clear()
            self._scan()

    def _stale(self) -> bool:
        return self._scanned_at is None or time.monotonic() - self._scanned_at >= self.ttl

    def _refresh(self) -> None:
        if not self._stale():
            return
        with self._lock:
            if self._stale():
                self._scan()

    def _scan(self) -> None:
        seen: dict[Path, tuple[int, int]] = {}
        order: list[Path] = []
        for root in self.dirs:
            for path in candidate_files(root):
                path = path.resolve()
                if path in seen:
                    continue
                try:
                    stat = path.stat()
                except OSError:
                    continue
                seen[path] = (stat.st_mtime_ns, stat.st_size)
                order.append(path)
        changed = seen != self._files
        for path in order:
            if self._files.get(path) != seen[path] or path not in self._by_file:
                self._load(path)
        for gone in set(self._by_file) - set(seen):
            del self._by_file[gone]
            self._file_problems.pop(gone, None)
        self._files = seen
        if changed or self._generation == 0:
            self._index(order)
        self._scanned_at = time.monotonic()

    def _load(self, path: Path) -> None:
        try:
            self._by_file[path] = load_templates(path)
            self._file_problems.pop(path, None)
        except TemplateError as exc:
            self._by_file[path] = []
            self._file_problems[path] = exc.message
            logger.warning("skipping template file: %s", exc.message)

    def _index(self, order: builtins.list[Path]) -> None:
        by_key: dict[tuple[str, str], Template] = {}
        for path in order:
            for template in self._by_file.get(path, []):
                key = (template.namespace.lower(), template.name.lower())
                if key in by_key:
                    logger.warning(
                        "%s: %s is already defined by %s; ignored",
                        path,
                        template.ref,
                        by_key[key].path,
                    )
                    continue
                by_key[key] = template
        self._by_key = by_key
        self.problems = list(self._file_problems.values())
        self._generation += 1
