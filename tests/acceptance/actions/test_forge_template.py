"""A template shaped like the common real ones (skeleton -> publish:github ->
catalog:register -> output links), run end to end through a real `falsework serve` as a
plain user: the service's integrations section is ported from a Backstage app-config
(camelCase keys, `${VAR}` secrets), the repository lands on the loopback GitHub forge
(every call validated against GitHub's OpenAPI description), and a real Backstage
catalog registers it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.backstage_catalog import Catalog, start_catalog
from support.forge import ForgeServer, GitHub
from support.servers import ServerFactory, auth_config, servers, wait_for_status

__all__ = ["servers"]  # the fixture, used below

TEMPLATES = Path(__file__).resolve().parent / "templates"
TOKEN = "ghs_service_integration_token"


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgeServer]:
    host = GitHub(
        tmp_path_factory.mktemp("forge"),
        tokens={TOKEN: "falsework-bot"},
        owners={"acme": "Organization", "falsework-bot": "User"},
    )
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture(scope="module")
def catalog(forge: ForgeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    started = start_catalog(
        tmp_path_factory.mktemp("backstage"),
        [{"host": forge.netloc, "apiBaseUrl": f"{forge.url}/api/v3", "token": TOKEN}],
    )
    yield started
    started.stop()


def test_skeleton_publish_register_through_the_api(
    forge: ForgeServer,
    catalog: Catalog,
    servers: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    config = {
        **auth_config(),
        # Backstage's app-config `integrations:` section, pasted, plus the token's scope
        "integrations": {
            "github": [
                {
                    "host": forge.netloc,
                    "apiBaseUrl": f"{forge.url}/api/v3",
                    "token": "${GITHUB_TOKEN}",
                    # the one line Falsework adds to it: whom the token is for
                    "allowedOwners": ["acme"],
                }
            ]
        },
        "backstage": {"baseUrl": catalog.url, "tokenEnv": "BACKSTAGE_TOKEN"},
        # the forge and the catalog are on loopback, refused unless allowed
        "egress": {"allow": ["127.0.0.1"]},
    }
    server = servers(
        None,
        config=config,
        env={
            "FALSEWORK_TEMPLATES": str(TEMPLATES),
            "FALSEWORK_GIT_ALLOW_HTTP": "true",
            "GITHUB_TOKEN": TOKEN,
            "BACKSTAGE_TOKEN": catalog.token,
        },
    )
    alice = server.client("alice")
    created = alice.post(
        "/api/scaffolder/v2/tasks",
        json={
            "templateRef": "template:default/forge-service",
            "values": {
                "name": "payments",
                "description": "Takes the money",
                "owner": "group:default/team-a",
                "repoUrl": f"{forge.netloc}?owner=acme&repo=payments",
            },
        },
    )
    assert created.status_code == 201, created.text
    task = wait_for_status(alice, created.json()["id"], ("completed", "failed"), timeout=90)
    events = alice.get(f"/api/scaffolder/v2/tasks/{task['id']}/events").json()
    assert task["status"] == "completed", [e["body"].get("message") for e in events]
    # the output links point at the real repository and the registered entity
    completion = events[-1]
    assert completion["type"] == "completion"
    links = {link["title"]: link for link in completion["body"]["output"]["links"]}
    assert links["Repository"]["url"] == f"{forge.url}/acme/payments.git"
    assert links["Open in catalog"]["entityRef"] == "component:default/payments"
    # the repository holds the rendered skeleton, committed as asked
    repo = forge.host.repo("acme", "payments")  # type: ignore[attr-defined]
    clone = tmp_path_factory.mktemp("clone") / "payments"
    subprocess.run(["git", "clone", "-q", str(repo.path), str(clone)], check=True)
    assert (clone / "README.md").read_text() == "# payments\n\nTakes the money\n"
    assert "name: payments" in (clone / "catalog-info.yaml").read_text()
    log = subprocess.run(
        ["git", "-C", str(clone), "log", "--format=%s"], capture_output=True, text=True
    ).stdout
    assert log == "Create payments from a template\n"
    assert repo.topics == ["service", "python"] and "main" in repo.protections
    # the catalog read the file from the forge and holds the entity
    entity = catalog.wait_for_entity("component:default/payments")
    assert entity["spec"]["owner"] == "group:default/team-a"  # type: ignore[index]
    # the integration's token never reaches the task's events
    assert TOKEN not in str(events) and catalog.token not in str(events)
