"""Running template steps against a forge server: a real WorkflowRunner built with the
forge as a configured integration, a workspace to fill, and helpers to read back what
landed in the forge's git repositories."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falsework.actions import ActionRegistry
from falsework.actions.egress import EgressPolicy
from falsework.actions.git import GitPolicy
from falsework.actions.integrations import BackstageTarget, ForgeHost, GithubApp, Integrations
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.runner.idempotency import CHECKPOINT, derive
from falsework.templating import Renderer
from support.forge.server import ForgeServer

LOOPBACK = EgressPolicy.from_lists(allow=["127.0.0.0/8"])
GIT = GitPolicy(allow_http=True, egress=LOOPBACK, timeout=60)


@dataclass
class Run:
    io: MemoryTaskIO
    output: dict[str, Any] | None = None
    error: TaskFailedError | None = None
    task: LocalTask | None = None

    def interrupted(self, *scopes: str) -> LocalTask:
        """The next attempt of this run's task as it would be had the run been
        interrupted right after its side effects: nothing of its steps recorded
        but the idempotency keys of ``scopes`` (stored before any effect)."""
        assert self.task is not None
        task = self.task
        keys: dict[str, dict[str, str]] = {}
        for scope in scopes:
            step_id = scope.split("[", 1)[0]
            keys.setdefault(CHECKPOINT + step_id, {})[scope] = derive(task.id, scope, task.attempt)
        return LocalTask(
            spec=task.spec,
            secrets=task.secrets,
            id=task.id,
            attempt=task.attempt + 1,
            checkpoints=dict(keys),
        )

    def logs(self) -> list[str]:
        return [str(b.get("message")) for _, b in self.io.events]

    def step_output(self, step_id: str) -> dict[str, Any]:
        return dict(self.io.steps.get(step_id, {}).get("output") or {})


@dataclass
class ForgeRunner:
    runner: WorkflowRunner
    workspace: Path
    tmp: Path
    template_dir: Path
    runs: list[Run] = field(default_factory=list)

    async def run(
        self,
        steps: list[dict[str, Any]],
        *,
        output: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
        dry_run: bool = False,
        task: LocalTask | None = None,
    ) -> Run:
        """Run ``steps`` as a new task (or as ``task``: a later attempt, see
        ``Run.interrupted``)."""
        spec = {
            "apiVersion": "scaffolder.backstage.io/v1beta3",
            "steps": steps,
            "output": output or {},
            "parameters": {},
            "user": {"ref": "user:default/guest"},
            "templateInfo": {
                "entityRef": "template:default/forge-test",
                "baseUrl": (self.template_dir / "template.yaml").as_uri(),
            },
        }
        task = task or LocalTask(spec=spec, secrets=dict(secrets or {}))
        io = MemoryTaskIO(checkpoints=dict(task.checkpoints))  # what the task has kept
        run = Run(io, task=task)
        try:
            run.output = await self.runner.run(task, io, workspace=self.workspace, dry_run=dry_run)
        except TaskFailedError as exc:
            run.error = exc
        self.runs.append(run)
        return run

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            path = self.workspace / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def forge_runner(
    tmp: Path,
    forge: ForgeServer | None,
    *,
    kind: str = "github",
    token: str | None = None,
    backstage: BackstageTarget | None = None,
    username: str | None = None,
    host: str | None = None,
    apps: tuple[GithubApp, ...] = (),
    owners: tuple[str, ...] = ("*",),
) -> ForgeRunner:
    """A runner whose integration for ``kind`` at ``host`` (default: the forge's own
    host:port) is the forge. The forge is on loopback, which the egress policy
    refuses by default: these runners allow loopback explicitly (and git over http),
    as a server's configuration would for a forge on its own network."""
    hosts = ()
    if forge is not None:
        api = forge.url + forge.host.api_prefix
        name = host or forge.netloc
        forge_host = ForgeHost(kind, name, api, token, username, apps, owners)  # type: ignore[arg-type]
        hosts = (forge_host,)
    integrations = Integrations(hosts=hosts, backstage=backstage, egress=LOOPBACK, git=GIT)
    template_dir = tmp / "template"
    template_dir.mkdir(parents=True, exist_ok=True)
    (template_dir / "template.yaml").write_text("kind: Template\n")
    workspace = tmp / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    runner = WorkflowRunner(
        ActionRegistry.builtin(settings=[integrations, LOOPBACK, GIT]),
        Renderer(),
        work_dir=tmp / "work",
        step_timeout=60,
    )
    return ForgeRunner(runner, workspace, tmp, template_dir)


@contextmanager
def serving(host: Any) -> Iterator[ForgeServer]:
    """``host`` (a forge model) served on loopback; no call may break its contract."""
    server = ForgeServer(host).start()
    try:
        yield server
    finally:
        server.stop()
    assert server.take_violations() == []


def step(action: str, step_id: str = "s", **input: Any) -> dict[str, Any]:
    return {"id": step_id, "name": action, "action": action, "input": input}


def git(bare: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={bare}", *args], capture_output=True, text=True, check=True
    ).stdout


def clone(bare: Path, dest: Path, branch: str | None = None) -> Path:
    args = ["git", "clone", "-q", *(["--branch", branch] if branch else []), str(bare), str(dest)]
    subprocess.run(args, check=True, capture_output=True)
    return dest
