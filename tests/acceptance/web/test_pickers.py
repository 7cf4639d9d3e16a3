"""Pickers fed by real entities (issue 13, item 8): OwnerPicker, EntityPicker,
OwnedEntityPicker and MultiEntityPicker list the entities of an entities file in the
config, and of a real Backstage catalog backend; RepoUrlPicker offers the `integrations`
hosts and the owners the server's token may publish to."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from support.backstage_catalog import Catalog, start_catalog
from support.forge import ForgeServer, GitHub, seed

from .conftest import PageErrors, Server, new_context, shot, start_server, watch

pytestmark = pytest.mark.browser

ALICE = {"user": "user:default/alice", "groups": ["group:default/team-a"], "admin": False}
ALICE_TOKEN = "pickers-alice-token"
FORGE_TOKEN = "ghs_pickers_reader"
ENTITIES = textwrap.dedent(
    """\
    apiVersion: backstage.io/v1alpha1
    kind: Group
    metadata: {name: team-a, title: Team A}
    spec: {type: team, children: []}
    ---
    apiVersion: backstage.io/v1alpha1
    kind: Group
    metadata: {name: team-b, title: Team B}
    spec: {type: team, children: []}
    ---
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata: {name: svc-a, title: Service A}
    spec: {type: service, lifecycle: production, owner: team-a}
    ---
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata: {name: svc-b, title: Service B}
    spec: {type: service, lifecycle: production, owner: group:default/team-b}
    ---
    apiVersion: backstage.io/v1alpha1
    kind: Component
    metadata: {name: web-a, title: Website A}
    spec: {type: website, lifecycle: production, owner: team-a}
    """
)
USER = textwrap.dedent(
    """\
    ---
    apiVersion: backstage.io/v1alpha1
    kind: User
    metadata: {name: alice}
    spec: {profile: {displayName: Alice}, memberOf: [team-a]}
    """
)
TEMPLATE = textwrap.dedent(
    """\
    apiVersion: scaffolder.backstage.io/v1beta3
    kind: Template
    metadata:
      name: pickers
      title: Pickers
      description: Every entity picker, and a repository.
    spec:
      owner: group:default/web
      type: service
      parameters:
        - title: Pickers
          required: [owner]
          properties:
            owner:
              title: Owned by
              type: string
              ui:field: OwnerPicker
              ui:options:
                catalogFilter: {kind: [Group]}
            service:
              title: Service
              type: string
              ui:field: EntityPicker
              ui:options:
                catalogFilter: {kind: Component, spec.type: service}
            mine:
              title: My component
              type: string
              ui:field: OwnedEntityPicker
              ui:options:
                catalogFilter: {kind: Component}
            dependsOn:
              title: Depends on
              type: array
              items: {type: string}
              ui:field: MultiEntityPicker
              ui:options:
                catalogFilter: {kind: Component}
            repoUrl:
              title: Repository
              type: string
              ui:field: RepoUrlPicker
      steps:
        - id: log
          action: debug:log
          input:
            message: ${{ parameters.owner }}
    """
)


def serve(workdir: Path, config: dict[str, Any]) -> Server:
    folder = workdir / "templates" / "pickers"
    folder.mkdir(parents=True)
    (folder / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    config = {
        **config,
        "auth": {"tokens": [{"sha256": hashlib.sha256(ALICE_TOKEN.encode()).hexdigest(), **ALICE}]},
    }
    srv = start_server(workdir, config=config)
    srv.token = ALICE_TOKEN
    return srv


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("web-pickers-file")
    entities = workdir / "catalog-info.yaml"
    entities.write_text(ENTITIES + USER, encoding="utf-8")
    config = {
        "entities": [str(entities)],
        "integrations": {
            "github": [
                {"host": "ghe.example.test", "token": "t0k3n", "allowedOwners": ["acme", "tools"]}
            ],
            "gitlab": [{"host": "gitlab.example.test"}],
        },
    }
    srv = serve(workdir, config)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgeServer]:
    host = GitHub(
        tmp_path_factory.mktemp("pickers-forge"),
        tokens={FORGE_TOKEN: "robot"},
        owners={"acme": "Organization", "robot": "User"},
    )
    server = ForgeServer(host).start()
    seed(host.add_repo("acme", "people"), "main", {"catalog-info.yaml": ENTITIES})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def catalog(forge: ForgeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    started = start_catalog(
        tmp_path_factory.mktemp("pickers-backstage"),
        [{"host": forge.netloc, "apiBaseUrl": f"{forge.url}/api/v3", "token": FORGE_TOKEN}],
    )
    with started.client() as client:
        answer = client.post(
            "/api/catalog/locations",
            json={"type": "url", "target": f"{forge.url}/acme/people/blob/main/catalog-info.yaml"},
        )
        assert answer.status_code == 201, answer.text
    for ref in ("group:default/team-b", "component:default/svc-a", "component:default/web-a"):
        started.wait_for_entity(ref)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def backstage_server(
    catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = {
        "backstage": {"baseUrl": catalog.url, "token": catalog.token},
        # the catalog runs on loopback, which the egress policy denies unless allowed
        "egress": {"allow": ["127.0.0.1"]},
    }
    srv = serve(tmp_path_factory.mktemp("web-pickers-backstage"), config)
    yield srv
    srv.stop()


@pytest.fixture
def alice(browser: Browser) -> Iterator[Page]:
    errors = PageErrors()
    context = new_context(browser)
    context.add_init_script(f"sessionStorage.setItem('falsework.token', '{ALICE_TOKEN}')")
    yield watch(context.new_page(), errors)
    context.close()
    assert errors.messages == [], errors.messages


def options(page: Page, label: str) -> list[str]:
    field = page.get_by_label(label, exact=True)
    values: list[str] = page.locator(f"#{field.get_attribute('list')} option").evaluate_all(
        "els => els.map((o) => o.value)"
    )
    return values


def expect_options(page: Page, label: str, wanted: list[str]) -> None:
    field = page.get_by_label(label, exact=True)
    listed = page.locator(f"#{field.get_attribute('list')} option")
    expect(listed).to_have_count(len(wanted))
    assert sorted(options(page, label)) == sorted(wanted)


def pick_entities(page: Page, server: Server) -> None:
    """What alice (team-a) is offered, and what she picks; the task gets it."""
    page.goto(f"{server.url}/create/templates/default/pickers")
    expect_options(page, "Owned by", ["group:default/team-a", "group:default/team-b"])
    page.get_by_label("Owned by", exact=True).fill("Team B")  # searched as typed
    expect_options(page, "Owned by", ["group:default/team-b"])
    page.get_by_label("Owned by", exact=True).fill("group:default/team-b")
    expect_options(page, "Service", ["component:default/svc-a", "component:default/svc-b"])
    page.get_by_label("Service", exact=True).fill("component:default/svc-a")
    expect_options(page, "My component", ["component:default/svc-a", "component:default/web-a"])
    page.get_by_label("My component", exact=True).fill("component:default/web-a")
    depends = page.get_by_label("Depends on", exact=True)
    expect_options(
        page,
        "Depends on",
        ["component:default/svc-a", "component:default/svc-b", "component:default/web-a"],
    )
    for ref in ("component:default/svc-a", "component:default/svc-b"):
        depends.fill(ref)
        depends.press("Enter")
    chosen = page.get_by_role("list", name="Chosen: Depends on")
    expect(chosen.locator("li")).to_have_count(2)
    page.get_by_role("button", name="Remove component:default/svc-a").click()
    expect(chosen.locator("li")).to_have_text(["component:default/svc-b×"])


def test_pickers_list_the_entities_file(alice: Page, file_server: Server) -> None:
    page = alice
    pick_entities(page, file_server)

    # RepoUrlPicker: the configured hosts; the token's owners for its host
    host = page.get_by_label("Host")
    expect(host.locator("option")).to_have_text(["ghe.example.test", "gitlab.example.test"])
    owner = page.locator("fieldset", has=host).get_by_label("Owner")
    owners = page.locator(f"#{owner.get_attribute('list')} option")
    expect(owners).to_have_count(2)
    assert owners.evaluate_all("els => els.map((o) => o.value)") == ["acme", "tools"]
    host.select_option("gitlab.example.test")
    expect(owners).to_have_count(0)
    host.select_option("ghe.example.test")
    owner.fill("acme")
    page.locator("fieldset", has=host).get_by_label("Repository").fill("new-svc")
    shot(page, "form-pickers")
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#task-status")).to_contain_text("completed")
    task_id = page.url.rsplit("/", 1)[1]
    answer = httpx.get(
        f"{file_server.url}/api/scaffolder/v2/tasks/{task_id}",
        headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
    )
    assert answer.json()["spec"]["parameters"] == {
        "owner": "group:default/team-b",
        "service": "component:default/svc-a",
        "mine": "component:default/web-a",
        "dependsOn": ["component:default/svc-b"],
        "repoUrl": "ghe.example.test?owner=acme&repo=new-svc",
    }

    # the route itself: kinds, filters, search and ownership
    def ask(**params: Any) -> list[str]:
        reply = httpx.get(
            f"{file_server.url}/api/falsework/v1/entities",
            params=params,
            headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
        )
        assert reply.status_code == 200, reply.text
        return [e["ref"] for e in reply.json()["items"]]

    assert ask(kind="User") == ["user:default/alice"]
    assert ask(kind="Component", filter="spec.type=website") == ["component:default/web-a"]
    assert ask(q="team b") == ["group:default/team-b"]
    assert ask(owned="true") == ["component:default/svc-a", "component:default/web-a"]
    assert httpx.get(f"{file_server.url}/api/falsework/v1/entities").status_code == 401


def test_pickers_list_a_backstage_catalog(alice: Page, backstage_server: Server) -> None:
    page = alice
    pick_entities(page, backstage_server)
    reply = httpx.get(
        f"{backstage_server.url}/api/falsework/v1/entities",
        params={"kind": "Group"},
        headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
    )
    assert reply.json()["sources"] == ["backstage"]
    assert reply.json()["errors"] == []
    titles = {e["ref"]: e.get("title") for e in reply.json()["items"]}
    assert titles == {"group:default/team-a": "Team A", "group:default/team-b": "Team B"}
