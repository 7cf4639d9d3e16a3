"""The 3-way merge of a template update, by git itself.

Three trees: the *base* (the pristine render the branch derives from, read from
the repository, never rendered again), *ours* (the branch as the team left it)
and *theirs* (the new version's pristine render). git's ``merge-tree
--write-tree`` merges them with rename detection, delete/modify handling,
executable bits and binary files as any ``git merge`` does, and writes
conflicts into the resulting tree as ordinary conflict markers (never ``.rej``
files). The merge base is made explicit with three throw-away commits (base,
and ours and theirs on top of it), so whatever history the branch has (squash
merges, rebases) the base is the recorded one; the refs named after the sides
label the markers (``<<<<<<< project``, ``>>>>>>> template-v2``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from falsework.errors import FalseworkError
from falsework.updates.gitrepo import Repo


class UpdateError(FalseworkError):
    """The update cannot be computed as asked."""


_LABEL = re.compile(r"[^A-Za-z0-9._-]+")
# merge-tree's informational messages that are not conflicts
_INFO = frozenset({"Auto-merging"})


@dataclass(frozen=True)
class Conflict:
    """One conflicted path: git's conflict type (``CONFLICT (contents)``,
    ``CONFLICT (modify/delete)``, ``CONFLICT (add/add)``, ``CONFLICT (binary)``,
    ...), its message, and the index stages (1 base, 2 ours, 3 theirs) as
    ``(mode, blob, stage)``, which a working-tree update writes into the index."""

    path: str
    kind: str
    message: str
    stages: tuple[tuple[str, str, int], ...] = ()


@dataclass
class Merge:
    tree: str
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.conflicts

    @property
    def conflicted_paths(self) -> list[str]:
        return sorted({c.path for c in self.conflicts})


def label(text: str) -> str:
    """A side's name as a ref name (and so a marker label) git accepts."""
    cleaned = _LABEL.sub("-", text).strip("-.") or "side"
    return cleaned.replace("..", ".")


async def merge_trees(
    repo: Repo,
    base: str,
    ours: str,
    theirs: str,
    *,
    ours_label: str = "project",
    theirs_label: str = "template",
) -> Merge:
    """Merge ``theirs`` into ``ours`` (tree ids) over ``base``; the merged tree
    (conflicts as markers) and the conflicts."""
    date = "@0 +0000"  # the throw-away commits are the same for the same trees
    root = await repo.commit_tree(base, [], "merge base", date=date)
    mine = await repo.commit_tree(ours, [root], "ours", date=date)
    other = await repo.commit_tree(theirs, [root], "theirs", date=date)
    names = [label(ours_label), label(theirs_label)]
    if names[0] == names[1]:
        names[1] += "-new"
    # The labels are refs the merge reads by short name (``refs/<name>`` is the
    # first place git looks), made for this merge and removed afterwards; a
    # name already taken gets a random suffix rather than being overwritten.
    for i, name in enumerate(names):
        if await repo.rev(f"refs/{name}") is not None:
            names[i] = f"{name}-{uuid.uuid4().hex[:8]}"
    refs = [f"refs/{name}" for name in names]
    try:
        for ref, commit in zip(refs, (mine, other), strict=True):
            await repo.git("update-ref", ref, commit)
        code, out = await repo.code("merge-tree", "--write-tree", "-z", "--messages", *names)
    finally:
        for ref in refs:
            await repo.code("update-ref", "-d", ref)
    if code not in (0, 1):
        raise UpdateError(
            f"git merge-tree --write-tree failed (exit {code}): template updates need "
            "git 2.38 or newer"
        )
    return _parse(out)


def _parse(out: str) -> Merge:
    """merge-tree's ``-z`` output: the tree, the conflicted entries, an empty
    field, then messages (``count, paths…, type, message``)."""
    fields = out.split("\0")
    tree = fields[0]
    index = 1
    stages: dict[str, list[tuple[str, str, int]]] = {}
    while index < len(fields) and fields[index]:
        info, _, path = fields[index].partition("\t")
        mode, blob, stage = info.split(" ")
        stages.setdefault(path, []).append((mode, blob, int(stage)))
        index += 1
    index += 1  # the empty field
    found: dict[str, tuple[str, list[str]]] = {}  # path -> (kind, messages)
    while index < len(fields) and fields[index]:
        count = int(fields[index])
        paths = fields[index + 1 : index + 1 + count]
        kind, message = fields[index + 1 + count], fields[index + 2 + count]
        index += count + 3
        if kind in _INFO or not kind.startswith("CONFLICT"):
            continue
        for path in paths:
            known, messages = found.get(path, (kind, []))
            # one conflict per path, of the most telling kind: a binary file's
            # "contents" conflict is said as "binary"
            if known == "CONFLICT (contents)":
                known = kind
            found[path] = (known, [*messages, message.strip()])
    for path in stages:  # a conflicted entry with no message of its own still is one
        found.setdefault(path, ("CONFLICT", [f"conflict in {path}"]))
    conflicts = [
        Conflict(path, kind, " ".join(messages), tuple(stages.get(path, ())))
        for path, (kind, messages) in found.items()
    ]
    conflicts.sort(key=lambda c: c.path)
    return Merge(tree=tree, conflicts=conflicts)
