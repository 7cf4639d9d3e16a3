"""Each forge's `integrations` entry, written as a platform team ports it from
Backstage's app-config (`${VAR}` secrets, Falsework's scope line), drives its publish
action: a runner whose action families are configured by the settings
(Settings.action_policies, as a server's) publishes to the loopback forge.

Bitbucket Cloud's entry has no host (it is always bitbucket.org) and Azure's API is
always https://HOST, so neither can point at a loopback forge over http: their entries
are checked in tests/unit/runner/test_integrations_config.py, their actions with the same
values built directly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from falsework.actions import ActionRegistry
from falsework.config import Settings
from falsework.runner import LocalTask, MemoryTaskIO, WorkflowRunner
from falsework.templating import Renderer
from support.forge import ForgeServer
from support.forge.bitbucket_server import BitbucketServer
from support.forge.gitea import Gitea
from support.forge.gitlab import GitLab
from support.forge.harness import step

SECRET = "the-integration-secret"


def gitlab(root: Path) -> Any:
    return GitLab(root, tokens={SECRET: "bot"}, users=["bot"], groups={"acme": ["bot"]})


def gitea(root: Path) -> Any:
    return Gitea(root, tokens={SECRET: "bot"}, users=["bot"], orgs={"acme": ["bot"]})


def bitbucket_server(root: Path) -> Any:
    return BitbucketServer(root, tokens={SECRET: "bot"}, projects={"ACME": ["bot"]})


# (kind, the forge, its integrations entry, the publish step's input)
CASES: list[tuple[str, Callable[[Path], Any], dict[str, Any], str, dict[str, Any]]] = [
    (
        "gitlab",
        gitlab,
        {"apiBaseUrl": "{url}/api/v4", "token": "${FORGE_SECRET}", "allowedOwners": ["acme"]},
        "publish:gitlab",
        {"repoUrl": "{netloc}?owner=acme&repo=svc"},
    ),
    (
        "gitea",
        gitea,
        {
            "baseUrl": "{url}",
            "username": "bot",
            "password": "${FORGE_SECRET}",
            "allowedOwners": ["acme"],
        },
        "publish:gitea",
        {"repoUrl": "{netloc}?owner=acme&repo=svc"},
    ),
    (
        "bitbucketServer",
        bitbucket_server,
        {"apiBaseUrl": "{url}/rest/api/1.0", "token": "${FORGE_SECRET}", "allowedOwners": ["ACME"]},
        "publish:bitbucketServer",
        {"repoUrl": "{netloc}?project=ACME&repo=svc"},
    ),
]


@pytest.mark.parametrize(("kind", "make", "entry", "action_id", "given"), CASES)
async def test_a_ported_integration_entry_publishes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    make: Callable[[Path], Any],
    entry: dict[str, Any],
    action_id: str,
    given: dict[str, Any],
) -> None:
    forge = ForgeServer(make(tmp_path / "forge")).start()
    try:

        def fill(value: Any) -> Any:
            if not isinstance(value, str):
                return value
            return value.replace("{url}", forge.url).replace("{netloc}", forge.netloc)

        entry = {"host": forge.netloc, **{k: fill(v) for k, v in entry.items()}}
        config = {"integrations": {kind: [entry]}, "egress": {"allow": ["127.0.0.1"]}}
        (tmp_path / "falsework.yaml").write_text(yaml.safe_dump(config))
        monkeypatch.setenv("FALSEWORK_CONFIG", str(tmp_path / "falsework.yaml"))
        monkeypatch.setenv("FALSEWORK_GIT_ALLOW_HTTP", "true")
        monkeypatch.setenv("FORGE_SECRET", SECRET)
        settings = Settings(data_dir=tmp_path / "data")
        registry = ActionRegistry.builtin(settings.action_policies())
        runner = WorkflowRunner(registry, Renderer(), work_dir=tmp_path / "work")
        workspace = tmp_path / "ws"
        workspace.mkdir()
        (workspace / "README.md").write_text("# svc\n")
        spec = {
            "steps": [step(action_id, **{k: fill(v) for k, v in given.items()})],
            "parameters": {},
            "output": {},
        }
        io = MemoryTaskIO()
        await runner.run(LocalTask(spec=spec), io, workspace=workspace)
        assert forge.pushes and forge.pushes[0][1] == "bot"
        assert {c.user for c in forge.calls} == {"bot"}
        assert SECRET not in str(io.events)
    finally:
        forge.stop()
    assert forge.take_violations() == []
