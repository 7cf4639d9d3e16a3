"""Snapshots: a case's result as files, compared with (or written to) its
``snapshot/`` folder.

The snapshot is the tree the publish step would push (or the workspace when
nothing is pushed) plus ``_output.json`` (the template's output: links, text)
and ``_steps.json`` (each step's final status, error and recorded calls); an
upgrade case's is the updated repository plus ``_update.json`` (the version it
came from, the conflicts, the answers of the new version).
Compared by file set, bytes and executable bits; a difference comes with a
unified diff (a binary file by its size and SHA-256). The snapshot folder is
read and written through :class:`~falsework.confine.Tree`: a link planted in it
is never followed (it is a difference, and ``--update`` replaces it).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from falsework.confine import Tree
from falsework.errors import FalseworkError
from falsework.testing.rehearse import File, Rendered

OUTPUT = "_output.json"
STEPS = "_steps.json"
UPDATE = "_update.json"
MAX_DIFF_LINES = 200


@dataclass(frozen=True)
class Problem:
    """One way a case failed: what (``kind``), where, and a diff when there is one."""

    kind: str
    message: str
    diff: str = ""
    path: str = ""


def as_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def snapshot_files(rendered: Rendered) -> dict[str, File]:
    """What ``snapshot/`` holds for a rendered case."""
    files = dict(rendered.files)
    own: dict[str, Any] = (
        {UPDATE: rendered.update}
        if rendered.update is not None
        else {OUTPUT: rendered.output, STEPS: rendered.steps}
    )
    for name, value in own.items():
        if name in files:
            raise FalseworkError(
                f"the template writes {name} at the top of its result, the name the "
                "snapshot keeps for its own; rename that file"
            )
        files[name] = File(as_json(value))
    return files


@dataclass(frozen=True)
class Stored:
    """A snapshot entry as found on disk: a file, or something else (a link...)."""

    file: File | None
    kind: str = "file"


def read_snapshot(folder: Path) -> dict[str, Stored] | None:
    """The snapshot in ``folder``; None when there is none."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return {"": Stored(None, "not a folder")}
    found: dict[str, Stored] = {}
    with Tree(folder, where="the snapshot") as tree:
        for entry in tree.walk():
            if entry.kind == "dir":
                continue
            if entry.kind != "file":
                found[entry.path] = Stored(None, f"a {entry.kind}")
                continue
            executable = bool(entry.stat.st_mode & stat.S_IXUSR)
            found[entry.path] = Stored(File(tree.read_bytes(entry.path), executable))
    return found


def compare(expected: dict[str, Stored], actual: dict[str, File]) -> list[Problem]:
    """The differences between the stored snapshot and this run's result."""
    problems: list[Problem] = []
    for path in sorted(set(expected) | set(actual)):
        stored, now = expected.get(path), actual.get(path)
        if stored is None and now is not None:
            problems.append(
                Problem("extra file", f"{path}: new in the result", _diff(path, None, now), path)
            )
        elif now is None and stored is not None:
            old = stored.file
            problems.append(
                Problem(
                    "missing file", f"{path}: no longer in the result", _diff(path, old, None), path
                )
            )
        elif stored is not None and now is not None:
            if stored.file is None:
                problems.append(
                    Problem(
                        "not a file",
                        f"{path}: the snapshot holds {stored.kind} here, not a file",
                        path=path,
                    )
                )
                continue
            if stored.file.data != now.data:
                kind = {
                    OUTPUT: "output differs",
                    STEPS: "steps differ",
                    UPDATE: "update differs",
                }.get(path, "file differs")
                problems.append(
                    Problem(kind, f"{path}: differs", _diff(path, stored.file, now), path)
                )
            if stored.file.executable != now.executable:
                was, is_ = _mode(stored.file), _mode(now)
                problems.append(
                    Problem(
                        "executable bit", f"{path}: mode {was} in the snapshot, {is_} now", "", path
                    )
                )
    return problems


def _mode(file: File) -> str:
    return "100755" if file.executable else "100644"


def is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _summary(file: File) -> str:
    return f"{len(file.data):,} bytes, sha256 {hashlib.sha256(file.data).hexdigest()}"


def _diff(path: str, old: File | None, new: File | None) -> str:
    """A unified diff of ``path`` from the snapshot (``old``) to now (``new``)."""
    if (old is None or is_text(old.data)) and (new is None or is_text(new.data)):
        before = old.data.decode().splitlines(keepends=True) if old is not None else []
        after = new.data.decode().splitlines(keepends=True) if new is not None else []
        lines = list(
            difflib.unified_diff(
                before,
                after,
                fromfile=f"snapshot/{path}" if old is not None else "/dev/null",
                tofile=f"result/{path}" if new is not None else "/dev/null",
            )
        )
        lines = [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                 for line in lines]  # fmt: skip
        if len(lines) > MAX_DIFF_LINES:
            cut = len(lines) - MAX_DIFF_LINES
            lines = [*lines[:MAX_DIFF_LINES], f"... {cut} more lines of diff\n"]
        return "".join(lines)
    shown_old = _summary(old) if old is not None else "absent"
    shown_new = _summary(new) if new is not None else "absent"
    return f"Binary file {path}:\n  snapshot: {shown_old}\n  result:   {shown_new}\n"


def write_snapshot(folder: Path, actual: dict[str, File], stored: dict[str, Stored] | None) -> int:
    """Make ``folder`` hold ``actual``: only files that differ are written (and
    modes set), files no longer there removed, empty folders pruned. Returns how
    many entries changed (0: the snapshot was already right)."""
    changed = 0
    if stored is not None and "" in stored:  # something that is not a folder
        os.unlink(folder)
        stored = None
    stored = stored or {}
    with Tree(folder, where="the snapshot", create=True) as tree:
        for path in sorted(set(stored) - set(actual)):
            tree.remove(path)
            changed += 1
        for path, file in sorted(actual.items()):
            old = stored.get(path)
            if old is not None and old.file is not None:
                if old.file.data == file.data and old.file.executable == file.executable:
                    continue
            tree.write_bytes(path, file.data, mode=0o755 if file.executable else 0o644)
            changed += 1
        _prune(tree)
    return changed


def _prune(tree: Tree) -> None:
    dirs = [e.path for e in tree.walk() if e.kind == "dir"]
    for path in sorted(dirs, key=lambda p: p.count("/"), reverse=True):
        if not any(True for _ in tree.walk(path, recursive=False)):
            tree.remove(path)


def remove_snapshot(folder: Path) -> bool:
    """Remove an unused snapshot folder; False when there was none."""
    parent, name = folder.parent, folder.name
    if not os.path.lexists(folder):
        return False
    with Tree(parent, where="the case folder") as tree:
        return tree.remove(name)
