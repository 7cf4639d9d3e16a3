"""Which version an update goes to, and which answers it renders with."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from falsework.actions.git import GitPolicy, local_remote
from falsework.templates import Template
from falsework.updates import MissingAnswersError, UpdateError
from falsework.updates.answers import needed, shown_answers
from falsework.updates.gitrepo import Repo
from falsework.updates.render import (
    answers_for,
    latest_version,
    renamed_answers,
    resolve_version,
)
from falsework.updates.state import ScaffoldState, TemplateSource
from support.updates import git


async def test_the_newest_version_tag_wins_by_semantic_version(tmp_path: Path) -> None:
    source = tmp_path / "templates"
    source.mkdir()
    git("init", "-q", "-b", "main", cwd=source)
    commits = {}
    for tag in ("v1.9.0", "v1.10.0", "latest", "v1.10.0-rc.1"):
        (source / "f").write_text(tag)
        git("add", "-A", cwd=source)
        git("commit", "-qm", tag, cwd=source)
        git("tag", "-a", "-m", tag, tag, cwd=source)  # annotated: peeled to the commit
        commits[tag] = git("rev-parse", "HEAD", cwd=source).strip()
    scratch = await Repo.init_bare(tmp_path / "scratch.git", GitPolicy())
    remote = local_remote(source)
    newest = await resolve_version(scratch, remote, None)
    assert (newest.name, newest.commit) == ("v1.10.0", commits["v1.10.0"])
    assert await latest_version(GitPolicy(), remote) == newest  # without fetching
    asked = await resolve_version(scratch, remote, "latest")  # any tag, branch or commit
    assert (asked.name, asked.commit) == ("latest", commits["latest"])
    by_commit = await resolve_version(scratch, remote, commits["v1.9.0"][:12])
    assert by_commit.commit == commits["v1.9.0"]
    with pytest.raises(UpdateError, match="no tag, branch or commit 'v9'"):
        await resolve_version(scratch, remote, "v9")
    # a repository on this machine is read in place: its objects are borrowed
    # (git alternates), none is copied into the scratch repository
    alternates = (scratch.git_dir / "objects/info/alternates").read_text().split()
    assert alternates == [str((source / ".git/objects").resolve())]
    assert list((scratch.git_dir / "objects/pack").iterdir()) == []
    assert await scratch.show(commits["latest"], "f") == "latest"


def service(annotations: dict[str, str] | None = None) -> Template:
    document = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "svc", "annotations": annotations or {}},
        "spec": {
            "parameters": [
                {
                    "required": ["serviceName", "tier"],
                    "properties": {
                        "serviceName": {"type": "string"},
                        "tier": {"type": "string", "enum": ["gold", "silver"]},
                        "port": {"type": "integer", "default": 8080},
                    },
                }
            ],
            "steps": [],
        },
    }
    return Template.from_document(document, Path("/t/template.yaml"))


STATE = ScaffoldState(
    template=TemplateSource("/t", "v1", "0" * 40, ref="template:default/svc"),
    pristine="1" * 40,
    answers={"name": "payments", "port": 9000},
)


def test_renamed_parameters_and_new_required_ones() -> None:
    renamed = service({"falsework.dev/renamed-parameters": "name=serviceName"})
    with pytest.raises(MissingAnswersError) as caught:
        answers_for(renamed, STATE, {})
    assert caught.value.missing == ["tier"]
    assert "New required parameters: tier; give them with --set NAME=VALUE" in str(caught.value)
    answers = answers_for(renamed, STATE, {"tier": "gold"})
    assert answers == {"serviceName": "payments", "port": 9000, "tier": "gold"}
    # without the annotation the old name is not taken for the new one
    with pytest.raises(MissingAnswersError) as plain:
        answers_for(service(), STATE, {"tier": "gold"})
    assert plain.value.missing == ["serviceName"]
    # an answer the new schema refuses is named too
    with pytest.raises(MissingAnswersError, match="tier"):
        answers_for(renamed, STATE, {"tier": "bronze"})


def test_what_a_form_is_told_to_ask_for() -> None:
    """The parameters to answer (renames mapped; missing or no longer valid), each
    with its title and schema, and the kept answers a form may show: none whose
    field hides what is typed."""
    template = service({"falsework.dev/renamed-parameters": "name=serviceName"})
    page = template.parameters[0]["properties"]
    page["tier"]["title"] = "Support tier"
    page["token"] = {"type": "string", "ui:widget": "password"}
    page["port"]["maximum"] = 8999
    state = dataclasses.replace(STATE, answers={**STATE.answers, "token": "hunter2"})
    found = needed(template, state, {})
    assert found is not None
    parameters, errors = found
    assert sorted(parameters, key=lambda p: p["name"]) == [
        {"name": "port", "title": "port", "schema": page["port"]},
        {"name": "tier", "title": "Support tier", "schema": page["tier"]},
    ]
    assert {e["name"] for e in errors} == {"required", "maximum"}
    shown = shown_answers(template, renamed_answers(template, state.answers))
    assert shown == {"serviceName": "payments", "port": 9000}  # the password's never
    assert needed(template, state, {"tier": "gold", "port": 8000}) is None
