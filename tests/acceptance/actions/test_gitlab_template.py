"""A template shaped like the real GitLab ones (skeleton -> publish:gitlab -> a merge
request to a catalog project -> catalog:register -> output links), run end to end
through a real `falsework serve` as a plain user: the service's `integrations.gitlab`
section is ported from a Backstage app-config (`${VAR}` secret, plus allowedOwners), and
the project lands on the loopback GitLab (every call validated against
specs/gitlab.yaml). No Backstage is configured: catalog:register ends skipped with a
warning and the task completes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.forge import ForgeServer
from support.forge.bare import seed_bare
from support.forge.gitlab import GitLab
from support.servers import ServerFactory, auth_config, servers, wait_for_status

__all__ = ["servers"]  # the fixture, used below

TEMPLATES = Path(__file__).resolve().parent / "templates"
TOKEN = "glpat-service-integration-token"


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgeServer]:
    host = GitLab(
        tmp_path_factory.mktemp("forge"),
        tokens={TOKEN: "falsework-bot"},
        users=["falsework-bot"],
        groups={"acme": ["falsework-bot"]},
    )
    catalog = host.add_project("acme", "catalog")
    seed_bare(catalog.path, "main", {"README.md": "the catalog\n"}, "seed")
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


def test_skeleton_publish_merge_request_through_the_api(
    forge: ForgeServer, servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = {
        **auth_config(),
        # Backstage's app-config `integrations:` section, pasted, plus the token's scope
        "integrations": {
            "gitlab": [
                {
                    "host": forge.netloc,
                    "apiBaseUrl": f"{forge.url}/api/v4",
                    "token": "${GITLAB_TOKEN}",
                    "allowedOwners": ["acme"],
                }
            ]
        },
        "egress": {"allow": ["127.0.0.1"]},
    }
    server = servers(
        None,
        config=config,
        env={
            "FALSEWORK_TEMPLATES": str(TEMPLATES),
            "FALSEWORK_GIT_ALLOW_HTTP": "true",
            "GITLAB_TOKEN": TOKEN,
        },
    )
    alice = server.client("alice")
    created = alice.post(
        "/api/scaffolder/v2/tasks",
        json={
            "templateRef": "template:default/gitlab-service",
            "values": {
                "name": "payments",
                "description": "Takes the money",
                "owner": "group:default/team-a",
                "repoUrl": f"{forge.netloc}?owner=acme&repo=payments",
                "catalogRepoUrl": f"{forge.netloc}?owner=acme&repo=catalog",
            },
        },
    )
    assert created.status_code == 201, created.text
    task = wait_for_status(alice, created.json()["id"], ("completed", "failed"), timeout=90)
    events = alice.get(f"/api/scaffolder/v2/tasks/{task['id']}/events").json()
    messages = [str(e["body"].get("message")) for e in events]
    assert task["status"] == "completed", messages
    completion = events[-1]
    links = {link["title"]: link for link in completion["body"]["output"]["links"]}
    assert links["Repository"]["url"] == f"{forge.url}/acme/payments"
    assert links["Merge request"]["url"] == f"{forge.url}/acme/catalog/-/merge_requests/1"
    # the project holds the rendered skeleton, committed as asked, its branch protected
    gitlab = forge.host
    assert isinstance(gitlab, GitLab)
    project = gitlab.project("acme/payments")
    clone = tmp_path_factory.mktemp("clone") / "payments"
    subprocess.run(["git", "clone", "-q", str(project.path), str(clone)], check=True)
    assert (clone / "README.md").read_text() == "# payments\n\nTakes the money\n"
    log = subprocess.run(
        ["git", "-C", str(clone), "log", "--format=%s"], capture_output=True, text=True
    ).stdout
    assert log == "Create payments from a template\n"
    assert project.settings["topics"] == ["service"] and "main" in project.protected
    # the merge request carries the same files under services/payments
    catalog = gitlab.project("acme/catalog")
    shown = subprocess.run(
        ["git", f"--git-dir={catalog.path}", "show", "add-payments:services/payments/README.md"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == "# payments\n\nTakes the money\n"
    # no Backstage: the registration is skipped, said, and the task still completes
    repo_file = f"{forge.url}/acme/payments/-/blob/main/catalog-info.yaml"
    assert any(
        f"catalog:register did not register {repo_file}: no Backstage instance" in m
        for m in messages
    ), messages
    # the integration's token never reaches the task's events
    assert TOKEN not in str(events)
