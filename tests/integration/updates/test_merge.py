"""The 3-way merge of an update, case by case, on real git: each case gives the
base (the pristine render), the project as the team left it and the new
version's render, and what the merged tree must hold."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from falsework.actions.git import GitPolicy
from falsework.updates.gitrepo import Repo
from falsework.updates.merge import merge_trees
from support.merge_cases import CASES, contents
from support.updates import write_files


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "r.git")], check=True)
    return Repo(tmp_path / "r.git", GitPolicy())


@pytest.mark.parametrize("name", list(CASES))
async def test_merge_case(name: str, repo: Repo, tmp_path: Path) -> None:
    case = CASES[name]
    trees = []
    for side, files in (("base", case.base), ("ours", case.ours), ("theirs", case.theirs)):
        write_files(tmp_path / side, files)
        trees.append(await repo.tree_of_folder(tmp_path / side))
    merge = await merge_trees(repo, *trees, theirs_label="template-v2")
    got = contents(repo.git_dir, merge.tree)
    for path, value in case.merged.items():
        expected = value if isinstance(value, tuple) else (value, False)
        assert got.get(path) == expected, path
    assert set(got) == set(case.merged)
    for path in case.absent:
        assert path not in got
    assert {c.path: c.kind for c in merge.conflicts} == case.conflicts
    assert merge.clean == (not case.conflicts)
    # the labels were the merge's own refs, and are gone
    assert await repo.git("for-each-ref") == ""
