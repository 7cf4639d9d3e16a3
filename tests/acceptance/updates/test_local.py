"""Template updates on a clone, end to end as a team would do them: `falsework
run` publishes a repository from v1 of a template kept in git, the team clones
it and commits, then `falsework templates check-update`, `falsework update` and
`falsework templates diff` run as subprocesses on the clone."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from support.updates import APP, TemplateRepo, falsework, git


def create(tmp_path: Path, template_repo: TemplateRepo, *sets: str) -> Path:
    """Publish a repository from the checked-out version; its clone."""
    remote = tmp_path / "remotes" / "svc.git"
    done = falsework(
        "run",
        str(template_repo.folder),
        "--set",
        "name=svc",
        "--set",
        f"remote={remote}",
        *sets,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    clone = tmp_path / "clone"
    git("clone", "-q", str(remote), str(clone), cwd=tmp_path)
    return clone


def state(clone: Path) -> dict[str, object]:
    loaded = yaml.safe_load((clone / ".falsework/scaffold.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_create_records_the_scaffold(tmp_path: Path, template_repo: TemplateRepo) -> None:
    clone = create(tmp_path, template_repo)
    recorded = state(clone)
    template = recorded["template"]
    assert isinstance(template, dict)
    assert template["version"] == "v1"
    assert template["ref"] == "template:default/service"
    assert template["path"] == "service"
    assert template["commit"] == git("rev-parse", "v1", cwd=template_repo.root).strip()
    assert recorded["answers"] == {
        "name": "svc",
        "remote": str(tmp_path / "remotes" / "svc.git"),
        "owner": "team-a",
    }
    # the pristine branch is the template's output; the branch adds the state file on top
    pristine = git("rev-parse", "origin/falsework/pristine", cwd=clone).strip()
    assert recorded["pristine"] == pristine
    assert git("rev-parse", "HEAD^", cwd=clone).strip() == pristine
    changed = git("diff", "--name-only", pristine, "HEAD", cwd=clone).split()
    assert changed == [".falsework/scaffold.yaml"]
    assert (clone / "README.md").read_text() == "# svc\n\nOwned by team-a.\n"


def test_updates_keep_the_team_s_work(tmp_path: Path, template_repo: TemplateRepo) -> None:
    clone = create(tmp_path, template_repo)
    # the team's work: an edit the template never touches, a deleted guide, a new file
    (clone / "app.py").write_text(APP.replace("line 2\n", "line 2 by the team\n"))
    git("rm", "-q", "docs/guide.md", cwd=clone)
    (clone / "NOTES.md").write_text("ours\n")
    git("add", "-A", cwd=clone)
    git("commit", "-qm", "team work", cwd=clone)

    check = falsework("templates", "check-update", str(clone), "--json", cwd=tmp_path)
    assert check.returncode == 2, check.stderr
    assert json.loads(check.stdout) | {"commit": "", "latestCommit": ""} == {
        "template": "template:default/service",
        "repository": str(template_repo.root),
        "version": "v1",
        "commit": "",
        "latest": "v3",
        "latestCommit": "",
        "updateAvailable": True,
    }

    done = falsework("update", str(clone), "--to", "v2", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Update template:default/service from v1 to v2" in done.stdout
    app = APP.replace("line 2\n", "line 2 by the team\n").replace("line 18\n", "line 18 from v2\n")
    assert (clone / "app.py").read_text() == app
    assert (clone / "ci.yml").read_text() == "steps:\n  - run: make lint\n  - run: make test\n"
    assert (clone / "Dockerfile").read_text() == "FROM python:3.12\n"
    assert (clone / "run.sh").stat().st_mode & 0o100
    assert not (clone / "docs/guide.md").exists()  # deleted by the team, unchanged upstream
    assert (clone / "NOTES.md").read_text() == "ours\n"
    assert state(clone)["template"]["version"] == "v2"  # type: ignore[index]
    # the merge is staged, nothing else; the local pristine branch moved to v2's render
    pristine = git("rev-parse", "falsework/pristine", cwd=clone).strip()
    assert state(clone)["pristine"] == pristine
    assert (
        git("rev-parse", "falsework/pristine^", cwd=clone).strip()
        == git("rev-parse", "origin/falsework/pristine", cwd=clone).strip()
    )
    diff = falsework("templates", "diff", str(clone), "--stat", cwd=tmp_path)
    assert diff.returncode == 0, diff.stderr
    assert "app.py" in diff.stdout and "NOTES.md" in diff.stdout
    assert "ci.yml" not in diff.stdout  # the template's own change is not the team's
    git("commit", "-qm", "update to v2", cwd=clone)
    git("push", "-q", "origin", "HEAD", "falsework/pristine", cwd=clone)

    # v3 changes README's first line, which the team has changed too: a conflict
    (clone / "README.md").write_text("# svc (payments)\n\nOwned by team-a.\n")
    git("commit", "-qam", "rename in README", cwd=clone)
    done = falsework("update", str(clone), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 conflict(s) to resolve" in done.stdout and "README.md" in done.stdout
    assert (clone / "README.md").read_text() == (
        "<<<<<<< project\n# svc (payments)\n=======\n# svc service\n>>>>>>> template-v3\n"
        "\nOwned by team-a.\n"
    )
    assert "UU README.md" in git("status", "--porcelain", cwd=clone).splitlines()
    assert (clone / "app.py").read_text() == app  # unchanged by v3: kept

    # resolved and committed: up to date, and an update changes nothing
    (clone / "README.md").write_text("# svc (payments) service\n\nOwned by team-a.\n")
    git("add", "-A", cwd=clone)
    git("commit", "-qm", "update to v3", cwd=clone)
    again = falsework("update", str(clone), cwd=tmp_path)
    assert again.returncode == 0 and "Already at v3" in again.stdout, again.stdout
    assert git("status", "--porcelain", cwd=clone) == ""
    check = falsework("templates", "check-update", str(clone), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_dirty_working_tree_is_refused(tmp_path: Path, template_repo: TemplateRepo) -> None:
    clone = create(tmp_path, template_repo)
    (clone / "app.py").write_text("changed\n")
    done = falsework("update", str(clone), cwd=tmp_path)
    assert done.returncode == 2
    assert "uncommitted changes (app.py)" in done.stderr
    assert (clone / "app.py").read_text() == "changed\n"
    assert state(clone)["template"]["version"] == "v1"  # type: ignore[index]


def test_a_new_required_parameter_is_asked_for(tmp_path: Path, template_repo: TemplateRepo) -> None:
    clone = create(tmp_path, template_repo)
    template_repo.checkout("main")
    template_repo.release("v4", {"README.md": "# ${{ values.name }}\n"}, extra=True)
    done = falsework("update", str(clone), cwd=tmp_path)
    assert done.returncode == 2
    assert "New required parameters: tier" in " ".join(done.stderr.split())
    assert git("status", "--porcelain", cwd=clone) == ""
    done = falsework("update", str(clone), "--set", "tier=gold", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert state(clone)["answers"]["tier"] == "gold"  # type: ignore[index]
    assert not (clone / "app.py").exists()  # v4 dropped it, the team had not changed it


def test_the_base_is_the_stored_render_not_a_re_render(
    tmp_path: Path, template_repo: TemplateRepo
) -> None:
    """v1 would render differently today (its tag moved to other output, as a
    change of our renderer would make it): the update still merges over what
    was rendered then, so files the team left alone become exactly v2's render,
    with no conflict and no trace of today's v1."""
    clone = create(tmp_path, template_repo)
    (clone / "app.py").write_text(APP.replace("line 1\n", "line 1 by the team\n"))
    git("commit", "-qam", "team", cwd=clone)
    template_repo.checkout("main")
    readme = template_repo.folder / "skeleton" / "README.md"
    readme.write_text("# ${{ values.name }}\n\nOwned by: ${{ values.owner }}\n")
    (template_repo.folder / "skeleton" / "ci.yml").write_text("steps: []\n")
    git("commit", "-qam", "v1 as rendered today", cwd=template_repo.root)
    git("tag", "-f", "v1", cwd=template_repo.root)

    done = falsework("update", str(clone), "--to", "v2", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (clone / "README.md").read_text() == "# svc\n\nOwned by team-a.\n"  # v2's render
    assert (clone / "ci.yml").read_text() == "steps:\n  - run: make lint\n  - run: make test\n"
    app = APP.replace("line 1\n", "line 1 by the team\n").replace("line 18\n", "line 18 from v2\n")
    assert (clone / "app.py").read_text() == app
    assert "UU" not in git("status", "--porcelain", cwd=clone)
