"""catalog:register, catalog:fetch and http:backstage:request against a real Backstage
catalog backend (npm, started by the suite), which reads the registered file from the
loopback GitHub forge through its own GitHub integration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from falsework.actions import ActionRegistry
from falsework.actions.integrations import BackstageTarget
from support.backstage_catalog import Catalog, start_catalog
from support.forge import ForgeServer, GitHub, seed
from support.forge.harness import ForgeRunner, forge_runner, step

TOKEN = "ghs_catalog_reader"
CATALOG_INFO = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  description: Made by a template
spec:
  type: service
  lifecycle: experimental
  owner: team-a
"""


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgeServer]:
    host = GitHub(
        tmp_path_factory.mktemp("forge"),
        tokens={TOKEN: "robot"},
        owners={"acme": "Organization", "robot": "User"},
    )
    server = ForgeServer(host).start()
    for name in ("svc", "again", "web", "resumed"):
        repo = host.add_repo("acme", name)
        seed(repo, "main", {"catalog-info.yaml": CATALOG_INFO.format(name=name)})
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture(scope="module")
def catalog(forge: ForgeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    api = f"{forge.url}/api/v3"
    started = start_catalog(
        tmp_path_factory.mktemp("backstage"),
        [{"host": forge.netloc, "apiBaseUrl": api, "token": TOKEN}],
    )
    yield started
    started.stop()


@pytest.fixture
def runner(forge: ForgeServer, catalog: Catalog, tmp_path: Path) -> ForgeRunner:
    target = BackstageTarget(catalog.url, catalog.token)
    return forge_runner(tmp_path, forge, token=TOKEN, backstage=target)


async def test_register_by_repo_contents_then_fetch(
    forge: ForgeServer, catalog: Catalog, runner: ForgeRunner
) -> None:
    contents = f"{forge.url}/acme/svc/blob/main"
    run = await runner.run(
        [
            step(
                "catalog:register",
                "register",
                repoContentsUrl=contents,
                catalogInfoPath="/catalog-info.yaml",
            )
        ]
    )
    assert run.error is None, run.logs()
    assert run.step_output("register") == {
        "entityRef": "component:default/svc",
        "catalogInfoUrl": f"{contents}/catalog-info.yaml",
    }
    # Backstage read the file from the forge (GitHub's contents API, by its integration)
    assert forge.calls_to("repos/get-content")
    entity = catalog.wait_for_entity("component:default/svc")
    assert entity["spec"] == {"type": "service", "lifecycle": "experimental", "owner": "team-a"}
    fetched = await runner.run(
        [
            step("catalog:fetch", "one", entityRef="svc", defaultKind="Component"),
            step(
                "catalog:fetch",
                "many",
                entityRefs=["component:default/svc", "component:default/nope"],
                optional=True,
            ),
        ]
    )
    assert fetched.error is None, fetched.logs()
    one = fetched.step_output("one")["entity"]
    assert one["metadata"]["name"] == "svc" and one["kind"] == "Component"
    many = fetched.step_output("many")["entities"]
    assert many[0]["metadata"]["description"] == "Made by a template" and many[1] is None


async def test_register_twice_fails_unless_optional(
    forge: ForgeServer, runner: ForgeRunner
) -> None:
    url = f"{forge.url}/acme/again/blob/main/catalog-info.yaml"
    first = await runner.run([step("catalog:register", "r", catalogInfoUrl=url)])
    assert first.error is None, first.logs()
    second = await runner.run([step("catalog:register", "r", catalogInfoUrl=url)])
    assert second.error is not None and "409" in str(second.error)
    optional = await runner.run([step("catalog:register", "r", catalogInfoUrl=url, optional=True)])
    assert optional.error is None, optional.logs()
    assert optional.step_output("r") == {
        "entityRef": "component:default/again",
        "catalogInfoUrl": url,
    }


async def test_register_after_an_interrupted_run_of_the_step_is_not_an_error(
    forge: ForgeServer, runner: ForgeRunner
) -> None:
    url = f"{forge.url}/acme/resumed/blob/main/catalog-info.yaml"
    first = await runner.run([step("catalog:register", "r", catalogInfoUrl=url)])
    assert first.error is None, first.logs()
    # run again as the next attempt of a run interrupted after registering: its key
    again = await runner.run([], task=first.interrupted("r"))
    assert again.error is None, again.logs()
    assert again.step_output("r") == first.step_output("r")
    assert any("registered by an earlier run of this step" in line for line in again.logs())


async def test_fetch_a_missing_entity_fails_unless_optional(runner: ForgeRunner) -> None:
    run = await runner.run([step("catalog:fetch", entityRef="component:default/missing")])
    assert run.error is not None and "Entity component:default/missing not found" in str(run.error)
    run = await runner.run(
        [step("catalog:fetch", "f", entityRef="component:default/missing", optional=True)]
    )
    assert run.error is None and run.step_output("f") == {"entity": None}


async def test_http_backstage_request(
    forge: ForgeServer, catalog: Catalog, runner: ForgeRunner
) -> None:
    url = f"{forge.url}/acme/web/blob/main/catalog-info.yaml"
    assert (await runner.run([step("catalog:register", catalogInfoUrl=url)])).error is None
    catalog.wait_for_entity("component:default/web")
    run = await runner.run(
        [
            step(
                "http:backstage:request",
                "get",
                method="GET",
                path="/catalog/entities/by-name/component/default/web",
            ),
            step(
                "http:backstage:request",
                "query",
                method="GET",
                path="/catalog/entities",
                params={"filter": "metadata.name=web"},
            ),
            step(
                "http:backstage:request",
                "missing",
                method="GET",
                path="/catalog/entities/by-name/component/default/none",
                continueOnBadResponse=True,
            ),
        ]
    )
    assert run.error is None, run.logs()
    got = run.step_output("get")
    assert got["code"] == "200" and got["body"]["metadata"]["name"] == "web"
    assert [e["metadata"]["name"] for e in run.step_output("query")["body"]] == ["web"]
    assert run.step_output("missing")["code"] == "404"
    dry = await runner.run(
        [step("http:backstage:request", "post", method="POST", path="/catalog/refresh")],
        dry_run=True,
    )
    assert dry.error is None and dry.step_output("post") == {}
    assert any("Skipping non dry-run safe method 'POST'" in x for x in dry.logs())


async def test_without_backstage_register_is_skipped_with_a_warning(
    forge: ForgeServer, tmp_path: Path
) -> None:
    standalone = forge_runner(tmp_path, forge, token=TOKEN)
    run = await standalone.run(
        [
            step("catalog:register", "register", catalogInfoUrl="https://x.test/c.yaml"),
            step("debug:log", "after", message="still running"),
        ],
        output={"ref": "${{ steps.register.output.entityRef }}"},
    )
    assert run.error is None, run.logs()
    assert run.io.steps["register"]["status"] == "skipped"
    assert run.io.steps["after"]["status"] == "completed"
    warnings = [
        b
        for _, b in run.io.events
        if "no Backstage instance is configured" in str(b.get("message"))
    ]
    assert warnings, run.logs()
    fetch = await standalone.run([step("catalog:fetch", entityRef="component:default/x")])
    assert fetch.error is not None and "no Backstage instance is configured" in str(fetch.error)


async def test_register_in_a_dry_run_is_simulated(runner: ForgeRunner, forge: ForgeServer) -> None:
    before = len(forge.calls)
    run = await runner.run(
        [
            step(
                "catalog:register", "r", catalogInfoUrl=f"{forge.url}/acme/nothing/blob/main/x.yaml"
            )
        ],
        dry_run=True,
    )
    assert run.error is None, run.logs()
    # skipped with no outputs, as the real Backstage's (whose catalog:register
    # declares no output schema): tests/support/compat/oracle/dry-run-skips.json
    assert run.step_output("r") == {}
    assert "Skipping because catalog:register does not support dry-run" in run.logs()
    assert len(forge.calls) == before  # nothing read, nothing registered


CATALOG_EXAMPLES = [
    pytest.param(item.id, index, id=f"{item.id}#{index}")
    for item in ActionRegistry.builtin().list()
    if item.id in ("catalog:register", "catalog:fetch", "http:backstage:request")
    for index in range(len(item.examples))
]


@pytest.mark.parametrize(("action_id", "index"), CATALOG_EXAMPLES)
async def test_every_documented_example_runs_against_backstage(
    forge: ForgeServer, runner: ForgeRunner, action_id: str, index: int
) -> None:
    """The docs' examples, with github.com served by the forge; an example that reads
    an earlier `publish` step's output runs after a real publish:github."""
    example = ActionRegistry.builtin().get(action_id).examples[index]
    text = example.example.replace("https://github.com", forge.url)
    steps = yaml.safe_load(text)["steps"]
    if "steps.publish." in text:
        name = f"example-{index}"
        runner.write({"catalog-info.yaml": CATALOG_INFO.format(name=name)})
        repo_url = f"{forge.netloc}?owner=acme&repo={name}"
        steps.insert(0, step("publish:github", "publish", repoUrl=repo_url))
    run = await runner.run(steps)
    assert run.error is None, run.logs()
