"""Runs of scaffold:update against a loopback forge, shared by the update tests
(tests/integration/updates): a server's runner, the repository made from v1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from falsework.actions import ActionRegistry
from falsework.actions.integrations import ForgeHost, Integrations
from falsework.actions.policies import PublishPolicy, SourcePolicy, UpdatePolicy
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.templating import Renderer
from falsework.updates.service import ScaffoldUpdates
from support.forge import ForgeServer
from support.forge.harness import GIT, LOOPBACK
from support.updates import TemplateRepo

TOKEN = "ghs_update_bot"


def make_runner(
    tmp_path: Path, forge: ForgeServer, kind: str = "github", username: str | None = None
) -> WorkflowRunner:
    """A server's runner: the forge as a configured ``kind``, loopback allowed for
    it, template repositories read only under the test's folder."""
    api = forge.url + forge.host.api_prefix
    host = ForgeHost(kind, forge.netloc, api, TOKEN, username, (), ("*",))  # type: ignore[arg-type]
    integrations = Integrations(hosts=(host,), egress=LOOPBACK, git=GIT)
    scaffolds = ScaffoldUpdates()  # as falsework.wiring hands it over
    publish = PublishPolicy(
        remotes_dir=tmp_path / "remotes", roots=(tmp_path,), git=GIT, scaffolds=scaffolds
    )
    policies = (integrations, LOOPBACK, GIT, SourcePolicy(git=GIT), publish)
    roots = (tmp_path / "templates",)
    update = UpdatePolicy(publish, integrations, roots, policies, scaffolds=scaffolds)
    registry = ActionRegistry.builtin(settings=[*policies, update])
    return WorkflowRunner(registry, Renderer(), work_dir=tmp_path / "work", step_timeout=120)


async def create_from_v1(runner: WorkflowRunner, template_repo: TemplateRepo, remote: str) -> None:
    """The repository made by a real task from v1: publish:git with scaffold
    recording, to ``remote`` on the forge."""
    document = yaml.safe_load((template_repo.folder / "template.yaml").read_text())
    steps = document["spec"]["steps"]
    steps[1]["input"]["token"] = TOKEN
    await run(
        runner,
        steps,
        parameters={"name": "payments", "owner": "team-a", "remote": remote},
        template_info={
            "entityRef": "template:default/service",
            "baseUrl": (template_repo.folder / "template.yaml").as_uri(),
        },
    )


async def run(runner: WorkflowRunner, steps: list[dict[str, Any]], **kw: Any) -> MemoryTaskIO:
    spec = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "steps": steps,
        "output": {},
        "parameters": kw.pop("parameters", {}),
        "user": {"ref": "user:default/guest"},
        "templateInfo": kw.pop("template_info", {"entityRef": "template:default/update"}),
    }
    io = MemoryTaskIO()
    try:
        await runner.run(LocalTask(spec=spec, secrets={}), io)
    except TaskFailedError as exc:
        raise AssertionError(f"{exc}: {[b.get('message') for _, b in io.events]}") from exc
    return io


def output(io: MemoryTaskIO) -> dict[str, Any]:
    return dict(io.steps["update"]["output"])
