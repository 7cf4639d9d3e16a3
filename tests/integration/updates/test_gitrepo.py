"""The object-level git helpers of template updates, on a real bare repository
(no work tree): trees edited through a private index, commits whose date is
carried over exactly so that a rerun makes the same commit."""

from __future__ import annotations

from pathlib import Path

from falsework.actions.policies import GitPolicy
from falsework.updates.gitrepo import Repo


async def test_a_file_is_set_and_removed_in_a_bare_repository(tmp_path: Path) -> None:
    repo = await Repo.init_bare(tmp_path / "bare.git", GitPolicy())
    empty = (await repo.git("mktree", stdin=b"")).strip()
    one = await repo.tree_with(empty, "docs/guide.md", b"A guide.\n")
    two = await repo.tree_with(one, "README.md", b"hello\n")
    commit = await repo.commit_tree(two, [], "both")
    assert sorted(await repo.files(commit)) == ["README.md", "docs/guide.md"]
    left = await repo.tree_with(two, "docs/guide.md", None)
    assert await repo.files(await repo.commit_tree(left, [], "one")) == ["README.md"]


async def test_a_commit_date_is_carried_over_exactly(tmp_path: Path) -> None:
    repo = await Repo.init_bare(tmp_path / "bare.git", GitPolicy())
    tree = await repo.tree_with((await repo.git("mktree", stdin=b"")).strip(), "f", b"x\n")
    for date in ("@0 +0000", "@1700000000 +0530", "@1700000000 -0800"):
        first = await repo.commit_tree(tree, [], "dated", date=date)
        assert await repo.commit_date(first) == date
        again = await repo.commit_tree(tree, [], "dated", date=await repo.commit_date(first))
        assert again == first  # the same inputs, the same commit
