"""Template updates through the API of a real `falsework serve`, on SQLite and
Postgres: a repository made by a real task from v1 of a template kept in git,
team commits, then POST /api/falsework/v1/scaffolds/updates: an update task per
repository, pushed as a branch; refused while one is unfinished; for authors
only; and the next update after the branch was squash-merged."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support.servers import (  # the fixtures of real servers, one per dialect
    Server,
    ServerFactory,
    auth_config,
    module_database,
    pg_database,
    servers,
    token_of,
    wait_for_status,
)
from support.updates import V3, TemplateRepo, build_template_repo, falsework, git

UPDATES = "/api/falsework/v1/scaffolds/updates"
SCAFFOLDS = "/api/falsework/v1/scaffolds"
SERVICE = "template:default/service"
__all__ = ["module_database", "pg_database", "servers"]


@dataclass
class World:
    server: Server
    templates: TemplateRepo
    remotes: Path
    tmp: Path


@pytest.fixture(scope="module")
def world(
    module_database: str, servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("updates")
    templates = build_template_repo(tmp / "templates")
    templates.checkout("v1")
    remotes = tmp / "remotes"
    remotes.mkdir()
    server = servers(
        module_database,
        config=auth_config(),
        env={
            "FALSEWORK_TEMPLATES": str(templates.root),
            "FALSEWORK_PUBLISH_ROOTS": str(remotes),
            "FALSEWORK_UPDATE_HOST_INTERVAL": "0",
        },
    )
    yield World(server, templates, remotes, tmp)


def create(world: World, name: str) -> Path:
    """A repository made from v1 by a task; the team's clone of it."""
    alice = world.server.client("alice")
    remote = world.remotes / f"{name}.git"
    made = alice.post(
        "/api/scaffolder/v2/tasks",
        json={
            "templateRef": "template:default/service",
            "values": {"name": name, "remote": str(remote)},
        },
    )
    assert made.status_code == 201, made.text
    task = wait_for_status(alice, made.json()["id"], ("completed", "failed"), timeout=60)
    assert task["status"] == "completed", task
    clone = world.tmp / f"{name}-clone"
    git("clone", "-q", str(remote), str(clone), cwd=world.tmp)
    return clone


def test_an_update_task_per_repository(world: World) -> None:
    first, second = create(world, "alpha"), create(world, "beta")
    for clone in (first, second):
        (clone / "NOTES.md").write_text("ours\n")
        git("add", "-A", cwd=clone)
        git("commit", "-qm", "team", cwd=clone)
        git("push", "-q", "origin", "main", cwd=clone)
    targets = [{"remoteUrl": str(world.remotes / f"{n}.git")} for n in ("alpha", "beta")]
    listed = world.server.client("admin").get(SCAFFOLDS, params={"template": SERVICE}).json()
    assert listed["problems"] == {}
    assert [
        (s["repository"], s["version"], s["latest"], s["updateAvailable"])
        for s in listed["scaffolds"]
    ] == [(f"{t['remoteUrl']}#main", "v1", "v3", True) for t in targets]
    # the creator sees hers; another user none
    assert len(world.server.client("alice").get(SCAFFOLDS).json()["scaffolds"]) == 2
    assert world.server.client("bob").get(SCAFFOLDS).json()["scaffolds"] == []

    # a signed-in user is not an author
    refused = world.server.client("alice").post(UPDATES, json={"repositories": targets})
    assert refused.status_code == 403, refused.text
    admin = world.server.client("admin")
    started = admin.post(UPDATES, json={"repositories": targets, "to": "v2"})
    assert started.status_code == 201, started.text
    tasks = started.json()["tasks"]
    assert [t["repository"] for t in tasks] == [f"{t['remoteUrl']}#" for t in targets]
    # a second start while these run is refused, naming the repository
    again = admin.post(UPDATES, json={"repositories": targets[:1]})
    if again.status_code != 409:  # the first may have finished meanwhile
        assert again.status_code == 201, again.text
        tasks.append(again.json()["tasks"][0])
    else:
        assert "alpha.git" in again.json()["error"]["message"]
    for item in tasks:
        task = wait_for_status(admin, item["id"], ("completed", "failed"), timeout=90)
        assert task["status"] == "completed", task
    results = [
        admin.get(f"/api/scaffolder/v2/tasks/{item['id']}/events").json()[-1]["body"]["output"]
        for item in tasks[:2]
    ]
    for result in results:
        update = result["update"]
        assert (update["fromVersion"], update["version"]) == ("v1", "v2")
        assert update["branch"] == "falsework/update/service-v2"
        assert update["conflicts"] == []

    # squash-merge alpha's update; the next update goes from v2 to v3
    git("fetch", "-q", "origin", cwd=first)
    git("checkout", "-q", "origin/falsework/update/service-v2", "--", ".", cwd=first)
    git("commit", "-qm", "update to v2", cwd=first)
    git("push", "-q", "origin", "main", cwd=first)
    assert (first / "NOTES.md").read_text() == "ours\n"
    assert (first / "Dockerfile").exists()
    state = yaml.safe_load((first / ".falsework/scaffold.yaml").read_text())
    assert state["template"]["version"] == "v2"
    # every recorded repository of the template at once, by the fleet command
    fleet = falsework(
        "update", "--template", SERVICE, "--all", "--server", world.server.url,
        "--token", token_of("admin"), cwd=world.tmp,
    )  # fmt: skip
    assert fleet.returncode == 0, fleet.stdout + fleet.stderr
    started = re.findall(r"^\s+([0-9a-f-]{36})\s+(\S+)$", fleet.stdout, re.M)
    assert [repository for _, repository in started] == [f"{t['remoteUrl']}#main" for t in targets]
    for task_id, _ in started:
        task = wait_for_status(admin, task_id, ("completed", "failed"), 90)
        assert task["status"] == "completed", task
    behind = admin.get(SCAFFOLDS, params={"template": SERVICE, "outdated": "true"}).json()
    assert [(s["version"], s["update"]["branch"]) for s in behind["scaffolds"]] == [
        ("v2", "falsework/update/service-v3"),  # alpha holds v2 since the squash merge
        ("v1", "falsework/update/service-v3"),
    ]
    git("fetch", "-q", "origin", cwd=first)
    readme = git("show", "origin/falsework/update/service-v3:README.md", cwd=first)
    assert readme == "# alpha service\n\nOwned by team-a.\n"


def test_values_are_data_never_evaluated(world: World) -> None:
    """A value holding an expression reaches the answers as written: the
    request's values are the task's parameters, not text of its step input."""
    clone = create(world, "gamma")
    admin = world.server.client("admin")
    started = admin.post(
        UPDATES,
        json={
            "repositories": [{"remoteUrl": str(world.remotes / "gamma.git")}],
            "to": "v2",
            "values": {"owner": "${{ secrets.token }}"},
            "secrets": {"token": "s3cret-token-value"},
        },
    )
    assert started.status_code == 201, started.text
    task = wait_for_status(admin, started.json()["tasks"][0]["id"], ("completed", "failed"), 90)
    assert task["status"] == "completed", task
    git("fetch", "-q", "origin", cwd=clone)
    branch = "origin/falsework/update/service-v2"
    state = yaml.safe_load(git("show", f"{branch}:.falsework/scaffold.yaml", cwd=clone))
    assert state["answers"]["owner"] == "${{ secrets.token }}"
    assert "token" not in state["secrets"]  # names of the create's secrets only: none
    assert "s3cret" not in git("log", "-p", "--all", cwd=clone)


def test_new_required_parameters_are_asked_for_before_a_task_starts(world: World) -> None:
    """v4 requires `tier`: the start is refused with 422 listing it (name, title,
    schema) and the answers kept; the CLI says so and exits 2; given as a value
    (`--set`), the update runs and the branch's state holds it."""
    clone = create(world, "delta")
    world.templates.release("v4", V3, extra=True)
    world.templates.checkout("v1")  # what the server creates from stays v1
    try:
        admin = world.server.client("admin")
        remote = str(world.remotes / "delta.git")
        target = {"repositories": [{"remoteUrl": remote}], "to": "v4"}
        refused = admin.post(UPDATES, json=target)
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["error"]["name"] == "AnswersNeededError"
        assert "tier" in body["error"]["message"]
        assert body["needed"] == [
            {
                "repository": f"{remote}#",
                "templateRef": SERVICE,
                "version": "v4",
                "parameters": [{"name": "tier", "title": "tier", "schema": {"type": "string"}}],
                "answers": {"name": "delta", "remote": remote, "owner": "team-a"},
                "errors": body["needed"][0]["errors"],
            }
        ]
        assert [e["name"] for e in body["needed"][0]["errors"]] == ["required"]
        assert admin.get(
            "/api/scaffolder/v2/tasks", params={"status": "open"}
        ).json()["totalTasks"] == 0  # fmt: skip
        # the fleet command: refused the same way, then started with --set
        fleet = ["update", "--template", SERVICE, "--all", "--server", world.server.url]
        fleet += ["--token", token_of("admin"), "--to", "v4"]
        asked = falsework(*fleet, cwd=world.tmp)
        assert asked.returncode == 2, asked.stdout + asked.stderr
        assert f"{remote}#main: tier" in asked.stderr
        assert "--set tier=…" in asked.stderr

        started = admin.post(UPDATES, json={**target, "values": {"tier": "gold"}})
        assert started.status_code == 201, started.text
        task = wait_for_status(admin, started.json()["tasks"][0]["id"], ("completed", "failed"), 90)
        assert task["status"] == "completed", task
        git("fetch", "-q", "origin", cwd=clone)
        branch = "origin/falsework/update/service-v4"
        state = yaml.safe_load(git("show", f"{branch}:.falsework/scaffold.yaml", cwd=clone))
        assert state["answers"]["tier"] == "gold"
        assert state["template"]["version"] == "v4"
        # without a version asked for, the newest (v4) needs it as well
        assert (
            admin.post(UPDATES, json={"repositories": [{"remoteUrl": remote}]}).status_code == 422
        )
    finally:
        git("tag", "-d", "v4", cwd=world.templates.root)
