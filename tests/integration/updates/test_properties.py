"""Properties of the update merge (Hypothesis), on real git: trees of files of
ten lines; a team edits the top of files (lines 0-3), adds and deletes its own
files; template versions edit the bottom of files (lines 6-9) and add files of
their own. Between the two regions lie two untouched lines, so the edits never
overlap."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from falsework.actions.git import GitPolicy
from falsework.updates.gitrepo import Repo
from falsework.updates.merge import Merge, merge_trees
from support.updates import write_files

Tree = dict[str, str]
NAMES = st.sampled_from(["a.txt", "b.py", "src/c.py", "src/d.md", "docs/e.md"])
WORDS = st.text(alphabet="abcdefgh ", min_size=1, max_size=8)


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


@st.composite
def bases(draw: st.DrawFn) -> Tree:
    names = draw(st.sets(NAMES, min_size=1, max_size=5))
    return {name: "".join(f"{name} line {i}\n" for i in range(10)) for name in sorted(names)}


@st.composite
def edit(draw: st.DrawFn, tree: Tree, rows: range, tag: str, own: str) -> Tree:
    """``tree`` with lines in ``rows`` of some files changed, and files of its
    own (named ``own``…) added or removed."""
    out = dict(tree)
    for name in sorted(tree):
        if name.startswith(("team-", "tpl-")) or not draw(st.booleans()):
            continue
        body = lines(out[name])
        for row in draw(st.sets(st.sampled_from(list(rows)), max_size=len(rows))):
            body[row] = f"{tag} {draw(WORDS)}\n"
        out[name] = "".join(body)
    for name in [n for n in tree if n.startswith(own)]:
        if draw(st.booleans()):
            del out[name]
    for index in range(draw(st.integers(0, 2))):
        out[f"{own}{tag}-{index}.txt"] = f"{tag} {draw(WORDS)}\n"
    return out


def git_tree(repo: Repo, tree: Tree, folder: Path) -> str:
    write_files(folder, tree)
    return asyncio.run(repo.tree_of_folder(folder))


def read(repo: Repo, tree: str) -> Tree:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", f"--git-dir={repo.git_dir}", *args], capture_output=True, check=True
        )
        return done.stdout.decode()

    return {
        path: git("cat-file", "blob", f"{tree}:{path}")
        for path in git("ls-tree", "-r", "--name-only", "-z", tree).split("\0")
        if path
    }


class Sandbox:
    def __init__(self, root: Path) -> None:
        subprocess.run(["git", "init", "-q", "--bare", str(root / "r.git")], check=True)
        self.repo = Repo(root / "r.git", GitPolicy())
        self.root = root
        self.count = 0

    def tree(self, files: Tree) -> str:
        self.count += 1
        return git_tree(self.repo, files, self.root / str(self.count))

    def merge(self, base: Tree, ours: Tree, theirs: Tree) -> tuple[Merge, Tree]:
        done = asyncio.run(
            merge_trees(self.repo, self.tree(base), self.tree(ours), self.tree(theirs))
        )
        return done, read(self.repo, done.tree)


PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data())
def test_the_same_version_changes_nothing(data: st.DataObject) -> None:
    base = data.draw(bases())
    ours = data.draw(edit(base, range(0, 10), "team", "team-"))
    with tempfile.TemporaryDirectory() as tmp:
        merge, merged = Sandbox(Path(tmp)).merge(base, ours, base)
    assert merge.clean and merged == ours


@PROPERTY
@given(data=st.data())
def test_edits_made_only_by_the_team_survive(data: st.DataObject) -> None:
    v1 = data.draw(bases())
    ours = data.draw(edit(v1, range(0, 4), "team", "team-"))
    deleted = data.draw(st.sets(st.sampled_from(sorted(v1)), max_size=len(v1) - 1))
    ours = {name: text for name, text in ours.items() if name not in deleted}
    v2 = data.draw(edit(v1, range(6, 10), "v2", "tpl-"))
    with tempfile.TemporaryDirectory() as tmp:
        merge, merged = Sandbox(Path(tmp)).merge(v1, ours, v2)
    for name, text in ours.items():
        if text != v1.get(name):  # the team's own change or file
            assert lines(merged[name])[:4] == lines(text)[:4]
    for name in deleted:
        if v2[name] == v1[name]:  # deleted by the team, unchanged upstream: stays deleted
            assert name not in merged
        else:  # changed upstream: a modify/delete conflict, never a silent resurrection
            assert name in merge.conflicted_paths
    assert merge.conflicted_paths == sorted(n for n in deleted if v2[n] != v1[n])


@PROPERTY
@given(data=st.data())
def test_v1_v2_v3_equals_v1_v3(data: st.DataObject) -> None:
    v1 = data.draw(bases())
    ours = data.draw(edit(v1, range(0, 4), "team", "team-"))
    v2 = data.draw(edit(v1, range(6, 10), "v2", "tpl-"))
    v3 = data.draw(edit(v2, range(6, 10), "v3", "tpl-"))
    with tempfile.TemporaryDirectory() as tmp:
        box = Sandbox(Path(tmp))
        first, at_v2 = box.merge(v1, ours, v2)
        second, stepwise = box.merge(v2, at_v2, v3)
        direct_merge, direct = box.merge(v1, ours, v3)
    assert first.clean and second.clean and direct_merge.clean
    assert stepwise == direct
