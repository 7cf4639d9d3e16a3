"""Upgrade cases (`upgrade-from:` in expect.yaml): a template in a real git
repository, tagged v1, and its working copy changed since; a repository made
at v1, edited by its team, updated to the working copy by the update planning
`falsework update` runs. Clean updates, expected and unexpected conflicts,
refused updates, broken cases, the JUnit entry."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from falsework.config import EXAMPLES_DIR
from falsework.testing.cases import Expect
from support.paths import DOCS
from support.template_runs import run_cli, run_pytest
from support.templates_test import junit_schema
from support.updates import APP, V1, V2, git, template, write_files

VALUES = {"name": "payments", "remote": "https://git.example.com/acme/payments.git"}


def write(path: Path, text: str) -> None:
    write_files(path.parent, {path.name: text})


def template_yaml(*, tier: bool = False, rename: bool = False) -> str:
    """The service template of the update tests; ``tier``: a new required
    parameter; ``rename``: ``name`` renamed ``service_name`` (and declared so)."""
    document: Any = template(extra_required=tier)
    if rename:
        page = document["spec"]["parameters"][0]
        page["properties"]["service_name"] = page["properties"].pop("name")
        page["required"] = ["service_name" if r == "name" else r for r in page["required"]]
        values = document["spec"]["steps"][0]["input"]["values"]
        values["name"] = "${{ parameters.service_name }}"
        annotations = {"falsework.dev/renamed-parameters": "name=service_name"}
        document["metadata"]["annotations"] = annotations
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A template repository: ``templates/service`` committed and tagged v1,
    then its working copy changed to v2 (uncommitted): app.py's line 18, ci.yml,
    a Dockerfile, run.sh made executable."""
    root = tmp_path / "platform"
    folder = root / "templates" / "service"
    write(folder / "template.yaml", template_yaml())
    write_files(folder / "skeleton", V1)
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "v1", cwd=root)
    git("tag", "v1", cwd=root)
    write_files(folder / "skeleton", V2)
    return folder


def upgrade_case(
    folder: Path, name: str, expect: dict[str, Any], edits: dict[str, str] | None = None
) -> Path:
    """A case answering name=payments; ``edits``: the team's files (edits/)."""
    where = folder / "tests" / name
    write(where / "values.yaml", yaml.safe_dump(VALUES))
    write(where / "expect.yaml", yaml.safe_dump(expect, sort_keys=False))
    for path, text in (edits or {}).items():
        write(where / "edits" / path, text)
    return where


TEAM_APP = APP.replace("line 2\n", "line 2 by the team\n")


def test_a_clean_update_keeps_the_team_edits_and_is_snapshotted(repo: Path) -> None:
    where = upgrade_case(
        repo,
        "from-v1",
        {"upgrade-from": "v1", "deleted": ["docs/guide.md"], "absent": ["docs/**"]},
        {"app.py": TEAM_APP, "NOTES.md": "The team's notes.\n"},
    )
    write_files(where / "edits", {"tools/dev.sh": ("#!/bin/sh\nmake dev\n", True)})
    run = run_cli(repo)
    assert run.code == 0, run.out
    assert "PASS" in run.out and "snapshot written" in run.out
    snapshot = where / "snapshot"
    assert os.stat(snapshot / "tools" / "dev.sh").st_mode & 0o100  # the team's exec bit
    merged = (snapshot / "app.py").read_text()
    assert "line 2 by the team\n" in merged and "line 18 from v2\n" in merged
    assert (snapshot / "NOTES.md").read_text() == "The team's notes.\n"
    assert (snapshot / "Dockerfile").read_text() == "FROM python:3.12\n"
    assert (snapshot / "README.md").read_text() == "# payments\n\nOwned by team-a.\n"
    assert os.stat(snapshot / "run.sh").st_mode & 0o100  # the template's new exec bit
    assert not (snapshot / "docs").exists()
    assert not (snapshot / ".falsework").exists()  # the state file names throw-away commits
    update = json.loads((snapshot / "_update.json").read_text())
    assert update == {
        "from": "v1",
        "to": "working-copy",
        "conflicts": [],
        "answers": {**VALUES, "owner": "team-a"},
    }
    assert not (snapshot / "_output.json").exists()
    again = run_cli(repo, "--ci")
    assert again.code == 0, again.out
    # the template's change now clobbers the team's edit: the snapshot says so
    write(repo / "skeleton" / "app.py", APP.replace("line 2\n", "line 2 from v3\n"))
    changed = run_cli(repo, "--ci")
    assert changed.code == 1
    assert "unexpected conflict" in changed.out and "app.py" in changed.out


def test_an_expected_conflict_passes_with_its_markers_in_the_snapshot(repo: Path) -> None:
    write(repo / "skeleton" / "README.md", "# ${{ values.name }} service\n\nOwned by us.\n")
    where = upgrade_case(
        repo,
        "readme",
        {"upgrade-from": "v1", "conflicts": ["README.md"]},
        {"README.md": "# payments, by team A\n\nOwned by team-a.\n"},
    )
    run = run_cli(repo)
    assert run.code == 0, run.out
    readme = (where / "snapshot" / "README.md").read_text()
    assert "<<<<<<< project\n# payments, by team A\n" in readme
    assert ">>>>>>> template-working-copy\n" in readme
    update = json.loads((where / "snapshot" / "_update.json").read_text())
    assert update["conflicts"] == [{"path": "README.md", "kind": "CONFLICT (contents)"}]


def test_an_unexpected_conflict_fails_showing_the_markers(repo: Path, tmp_path: Path) -> None:
    write(repo / "skeleton" / "README.md", "# ${{ values.name }} service\n\nOwned by us.\n")
    upgrade_case(
        repo,
        "readme",
        {"upgrade-from": "v1"},
        {"README.md": "# payments, by team A\n"},
    )
    report = tmp_path / "report.xml"
    run = run_cli(repo, "--junit", report)
    assert run.code == 1, run.out
    assert "FAIL" in run.out and "unexpected conflict" in run.out
    assert "README.md: CONFLICT (contents)" in run.out
    assert "<<<<<<< project" in run.out and ">>>>>>> template-working-copy" in run.out
    assert "# payments service" in run.out  # the template's side, shown
    junit_schema().validate(str(report))
    text = report.read_text()
    assert 'type="unexpected conflict"' in text and "&lt;&lt;&lt;&lt;&lt;&lt;&lt; project" in text
    assert 'name="readme"' in text and 'classname="service"' in text


def test_a_wrong_conflict_list_names_both_sides(repo: Path) -> None:
    write(repo / "skeleton" / "README.md", "# ${{ values.name }} service\n")
    upgrade_case(
        repo,
        "wrong",
        {"upgrade-from": "v1", "conflicts": ["app.py"], "snapshot": False},
        {"README.md": "# payments, by team A\n"},
    )
    run = run_cli(repo)
    assert run.code == 1, run.out
    assert "README.md: CONFLICT (contents)" in run.out
    assert "app.py: expected to conflict, merged cleanly" in run.out


def test_a_team_deletion_against_a_template_change_is_a_modify_delete_conflict(
    repo: Path,
) -> None:
    write(repo / "skeleton" / "docs" / "guide.md", "A better guide.\n")
    upgrade_case(repo, "gone", {"upgrade-from": "v1", "deleted": ["docs/guide.md"]})
    run = run_cli(repo)
    assert run.code == 1, run.out
    assert "docs/guide.md: CONFLICT (modify/delete)" in run.out
    assert "no conflict markers: one side deleted the file" in run.out


def test_a_new_required_parameter_refuses_the_update_until_set(repo: Path) -> None:
    write(repo / "template.yaml", template_yaml(tier=True))
    refused = upgrade_case(
        repo,
        "refused",
        {
            "upgrade-from": "v1",
            "status": "failed",
            "error": {"name": "MissingAnswersError", "match": "New required parameters: tier"},
            "snapshot": False,
        },
    )
    given = upgrade_case(repo, "given", {"upgrade-from": "v1", "set": {"tier": "gold"}})
    run = run_cli(repo)
    assert run.code == 0, run.out
    assert not (refused / "snapshot").exists()
    update = json.loads((given / "snapshot" / "_update.json").read_text())
    assert update["answers"] == {**VALUES, "owner": "team-a", "tier": "gold"}
    # a case that expects the update to go through is told why it did not
    (refused / "expect.yaml").write_text(yaml.safe_dump({"upgrade-from": "v1"}))
    failed = run_cli(repo, "-k", "refused")
    assert failed.code == 1
    assert "expected status completed, got failed" in failed.out
    assert "tier" in failed.out


def test_a_renamed_parameter_is_mapped_as_the_update_maps_it(repo: Path) -> None:
    write(repo / "template.yaml", template_yaml(rename=True))
    v1 = git("rev-parse", "v1", cwd=repo).strip()
    where = upgrade_case(repo, "renamed", {"upgrade-from": v1})  # a commit, too
    run = run_cli(repo)
    assert run.code == 0, run.out
    update = json.loads((where / "snapshot" / "_update.json").read_text())
    assert update["answers"] == {
        "service_name": "payments",
        "remote": VALUES["remote"],
        "owner": "team-a",
    }
    assert (where / "snapshot" / "README.md").read_text().startswith("# payments\n")


def test_a_renamed_template_is_an_update_that_cannot_be_made(repo: Path) -> None:
    document = yaml.safe_load((repo / "template.yaml").read_text())
    document["metadata"]["name"] = "web-service"
    write(repo / "template.yaml", yaml.safe_dump(document, sort_keys=False))
    upgrade_case(repo, "from-v1", {"upgrade-from": "v1", "snapshot": False})
    run = run_cli(repo)
    assert run.code == 1, run.out
    assert "expected status completed, got failed" in run.out
    assert "expected the template template:default/service" in run.out
    assert "found template:default/web-service" in run.out


def test_broken_upgrade_cases_exit_2_saying_why(repo: Path, tmp_path: Path) -> None:
    upgrade_case(repo, "unknown-ref", {"upgrade-from": "v9"})
    run = run_cli(repo)
    assert run.code == 2
    assert "BROKEN" in run.out and "no tag, branch or commit 'v9'" in run.out
    # in a shallow clone (CI's default), the message says how to get the history
    git("commit", "-qam", "v2", cwd=repo)
    clone = tmp_path / "clone"
    git("clone", "-q", "--depth", "1", f"file://{repo.parents[1]}", str(clone), cwd=tmp_path)
    write_files(
        clone / "templates" / "service" / "tests", {"old/values.yaml": yaml.safe_dump(VALUES)}
    )
    write(clone / "templates" / "service" / "tests" / "old" / "expect.yaml", "upgrade-from: v1\n")
    run = run_cli(clone / "templates" / "service")
    assert run.code == 2 and "a shallow clone: fetch the history" in run.out
    (repo / "tests" / "unknown-ref" / "expect.yaml").write_text("upgrade-from: v1\n")
    upgrade_case(repo, "bad-delete", {"upgrade-from": "v1", "deleted": ["nope.txt"]})
    run = run_cli(repo, "-k", "bad-delete")
    assert run.code == 2 and "deleted: nope.txt is not a file of the repository" in run.out
    # answers the old version refuses: values.yaml is what the repository was made with
    write(repo / "tests" / "unfit" / "values.yaml", yaml.safe_dump({"name": "payments"}))
    write(repo / "tests" / "unfit" / "expect.yaml", "upgrade-from: v1\n")
    run = run_cli(repo, "-k", "unfit")
    assert run.code == 2 and "does not fit the template at v1" in run.out
    assert "requires property" in run.out and "remote" in run.out
    # a commit where the template was not yet at its path
    empty = git("hash-object", "-t", "tree", "/dev/null", cwd=repo).strip()
    early = git("commit-tree", empty, "-m", "before the template", cwd=repo).strip()
    upgrade_case(repo, "too-early", {"upgrade-from": early})
    run = run_cli(repo, "-k", "too-early")
    assert run.code == 2 and "'templates/service' is not in commit" in run.out
    upgrade_case(repo, "state", {"upgrade-from": "v1"}, {".falsework/scaffold.yaml": "x: 1\n"})
    run = run_cli(repo, "-k", "state")
    assert run.code == 2 and "give edited answers with set: instead" in run.out
    upgrade_case(repo, "stray", {"conflicts": ["README.md"]})
    run = run_cli(repo, "-k", "stray")
    assert run.code == 2 and "conflicts: only with upgrade-from" in run.out
    # a template that is in no git repository has no older version
    loose = tmp_path / "loose"
    write(loose / "template.yaml", template_yaml())
    write_files(loose / "skeleton", V1)
    upgrade_case(loose, "from-v1", {"upgrade-from": "v1"})
    run = run_cli(loose)
    assert run.code == 2 and "is not in a git repository" in run.out


def test_upgrade_cases_are_computed_here_even_with_a_server(repo: Path) -> None:
    """--server sends the ordinary cases to a server; an update is computed on
    the machine that runs it (here nothing listens at the server's address)."""
    upgrade_case(repo, "from-v1", {"upgrade-from": "v1", "snapshot": False})
    run = run_cli(repo, "--server", "http://127.0.0.1:9", "--token", "t")
    assert run.code == 0, run.out
    assert "PASS" in run.out
    write(repo / "tests" / "plain" / "values.yaml", yaml.safe_dump(VALUES))
    refused = run_cli(repo, "--server", "http://127.0.0.1:9", "--token", "t")
    assert refused.code == 2 and "127.0.0.1:9" in refused.out  # the ordinary case went there


PLUGIN_TESTS = """
VALUES = [
    {"name": "payments", "owner": "group:default/team"},
    {"repoUrl": "github.com?owner=acme&repo=payments"},
]


def test_an_upgrade(render_template):
    result = render_template(
        "templates/python-service",
        VALUES,
        upgrade_from="v1",
        edits={"NOTES.md": "Ours.\\n"},
        deleted=["tests/test_app.py"],
    )
    assert result.status == "completed", result.error
    assert result.update["conflicts"] == []
    assert result.files["NOTES.md"].text == "Ours.\\n"
    assert "tests/test_app.py" not in result.files
    assert "make lint\\n" in result.files["README.md"].text


def test_an_upgrade_with_a_conflict(render_template):
    result = render_template(
        "templates/python-service", VALUES, upgrade_from="v1", edits={"README.md": "# ours\\n"}
    )
    assert result.update["conflicts"] == [{"path": "README.md", "kind": "CONFLICT (contents)"}]
    assert "<<<<<<< project" in result.files["README.md"].text
"""


def test_the_pytest_fixture_runs_upgrades(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES_DIR, tmp_path / "templates")
    git("init", "-q", "-b", "main", cwd=tmp_path)
    git("add", "-A", cwd=tmp_path)
    git("commit", "-qm", "v1", cwd=tmp_path)
    git("tag", "v1", cwd=tmp_path)
    readme = tmp_path / "templates" / "python-service" / "skeleton" / "README.md"
    readme.write_text(
        readme.read_text().replace(".venv/bin/pytest\n", ".venv/bin/pytest\nmake lint\n")
    )
    run = run_pytest(tmp_path, "test_upgrades.py", PLUGIN_TESTS)
    assert run.code == 0, run.out
    assert "2 passed" in run.out


def test_the_documented_expect_yaml_is_accepted() -> None:
    """docs/templates.md's example of an upgrade case's expect.yaml reads as one."""
    doc = (DOCS / "templates.md").read_text()
    section = doc[doc.index("### Upgrade cases") :]
    block = section[
        section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml"))
    ]
    expect = Expect.model_validate(yaml.safe_load(block))
    assert expect.upgrade_from == "v1.2.0"
    assert expect.conflicts == ["README.md"] and expect.deleted == ["docs/guide.md"]
    assert expect.set_answers == {"tier": "gold"}
