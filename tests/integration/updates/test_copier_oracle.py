"""An oracle for the update merge: for the cases of test_merge.py where the two
tools mean the same, the tree Falsework's merge makes equals what
`copier update --conflict inline` leaves in a project made by `copier copy`
from the same two template versions, with the same team edits (copier's
marker labels "before updating" / "after updating" read as ours, `project`
and `template-v2`).

Left out, because the tools disagree there (copier 9.19, checked):
- the template renaming a file the team edited: copier does not follow the
  rename, and the team's edit is lost; Falsework carries it to the new path;
- a file deleted by one side and changed by the other: copier takes the
  deletion or the change without a word; Falsework reports a modify/delete
  conflict and keeps the changed file;
- a binary file both changed: copier takes the template's bytes; Falsework
  keeps the team's and reports the conflict.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from falsework.actions.git import GitPolicy
from falsework.updates.gitrepo import Repo
from falsework.updates.merge import merge_trees
from support.merge_cases import CASES, contents
from support.updates import Files, git, write_files

pytest.importorskip("copier", reason="copier (a dev dependency) is not installed")

DISAGREE = {
    "the template renames a file the team edited: the edit follows",
    "deleted by the team, changed by the template: a conflict",
    "changed by the team, deleted by the template: a conflict",
    "a binary file changed by both: a conflict keeping the team's",
}
AGREED = [name for name in CASES if name not in DISAGREE]
LABELS = {b"<<<<<<< before updating\n": b"<<<<<<< project\n"}
LABELS |= {b">>>>>>> after updating\n": b">>>>>>> template-v2\n"}
ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
ENV |= {"GIT_AUTHOR_NAME": "Team", "GIT_AUTHOR_EMAIL": "team@example.com"}
ENV |= {"GIT_COMMITTER_NAME": "Team", "GIT_COMMITTER_EMAIL": "team@example.com"}
ANSWERS = ".copier-answers.yml"


def copier(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "copier", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def release(root: Path, tag: str, files: Files) -> None:
    if (root / "skeleton").exists():
        shutil.rmtree(root / "skeleton")
    write_files(root / "skeleton", files)
    # copier records the template and version in the project (what it updates from)
    answers = root / "skeleton" / "{{ _copier_conf.answers_file }}.jinja"
    answers.write_text("{{ _copier_answers|to_nice_yaml -}}\n")
    (root / "copier.yml").write_text("_subdirectory: skeleton\n")
    git("add", "-A", cwd=root)
    git("commit", "-qm", tag, "--allow-empty", cwd=root)
    git("tag", tag, cwd=root)


def project_files(folder: Path) -> dict[str, tuple[bytes, bool]]:
    found: dict[str, tuple[bytes, bool]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == ".git" or rel.startswith(".git/") or rel == ANSWERS or not path.is_file():
            continue
        data = path.read_bytes()
        for theirs, ours in LABELS.items():
            data = data.replace(theirs, ours)
        found[rel] = (data, os.access(path, os.X_OK))
    return found


def by_copier(tmp: Path, base: Files, ours: Files, theirs: Files) -> dict[str, tuple[bytes, bool]]:
    """The project `copier update` leaves: made from v1 (``base``), edited by
    the team into ``ours``, updated to v2 (``theirs``)."""
    template = tmp / "template"
    template.mkdir()
    git("init", "-q", "-b", "main", cwd=template)
    release(template, "v1", base)
    release(template, "v2", theirs)
    project = tmp / "project"
    copier("copy", "--defaults", "--vcs-ref", "v1", str(template), str(project), cwd=tmp)
    git("init", "-q", "-b", "main", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "made from v1", cwd=project)
    for path in project_files(project):
        (project / path).unlink()
    write_files(project, ours)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "team work", "--allow-empty", cwd=project)
    copier("update", "--defaults", "--conflict", "inline", "--vcs-ref", "v2", cwd=project)
    return project_files(project)


@pytest.mark.parametrize("name", AGREED)
async def test_the_merge_agrees_with_copier(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    expected = by_copier(tmp_path, case.base, case.ours, case.theirs)
    repo = await Repo.init_bare(tmp_path / "r.git", GitPolicy())
    trees = []
    for side, files in (("base", case.base), ("ours", case.ours), ("theirs", case.theirs)):
        write_files(tmp_path / side, files)
        trees.append(await repo.tree_of_folder(tmp_path / side))
    merge = await merge_trees(repo, *trees, theirs_label="template-v2")
    assert merge.clean == (not case.conflicts)
    assert contents(repo.git_dir, merge.tree) == expected
