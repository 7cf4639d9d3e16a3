"""Fixtures for action tests: a real runner over a real template folder and
workspace, and the in-memory TaskIO (a real implementation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from falsework.actions import ActionRegistry
from falsework.actions.policies import EgressPolicy, GitPolicy, PublishPolicy, SourcePolicy
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.templating import Renderer

# The loopback servers of these tests are reached only because the policy says
# so, as an operator's `egress.allow` would.
LOOPBACK = EgressPolicy.from_lists(allow=["127.0.0.0/8", "::1"])


@dataclass
class Outcome:
    io: MemoryTaskIO
    output: dict[str, Any] | None = None
    error: TaskFailedError | None = None
    steps: dict[str, Any] = field(default_factory=dict)

    def logs(self, step_id: str | None = None) -> list[str]:
        return [
            str(b["message"])
            for _, b in self.io.events
            if step_id is None or b.get("stepId") == step_id
        ]


@dataclass
class Harness:
    runner: WorkflowRunner
    template_dir: Path
    workspace: Path
    policies: tuple[object, ...] = ()

    def configure(self, *changed: object) -> None:
        """Rebuild the runner's registry with ``changed`` replacing the policies
        of the same types (what a server's config would give)."""
        kinds = {type(c) for c in changed}
        self.policies = (*(p for p in self.policies if type(p) not in kinds), *changed)
        self.runner = make_runner(self.runner.work_dir, self.runner.renderer, self.policies)

    def policy(self, kind: type[Any]) -> Any:
        return next(p for p in self.policies if isinstance(p, kind))

    async def run(
        self,
        steps: list[dict[str, Any]],
        parameters: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        output: Mapping[str, Any] | None = None,
    ) -> Outcome:
        spec = {
            "apiVersion": "scaffolder.backstage.io/v1beta3",
            "steps": steps,
            "output": dict(output or {}),
            "parameters": dict(parameters or {}),
            "user": {"ref": "user:default/guest"},
            "templateInfo": {
                "entityRef": "template:default/test",
                "baseUrl": (self.template_dir / "template.yaml").as_uri(),
            },
        }
        io = MemoryTaskIO()
        task = LocalTask(spec=spec, secrets=dict(secrets or {}))
        outcome = Outcome(io=io)
        try:
            outcome.output = await self.runner.run(task, io, workspace=self.workspace)
        except TaskFailedError as exc:
            outcome.error = exc
        outcome.steps = io.steps
        return outcome


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()


def make_runner(work_dir: Path, renderer: Renderer, policies: tuple[object, ...]) -> WorkflowRunner:
    registry = ActionRegistry.builtin(policies)
    return WorkflowRunner(registry, renderer, work_dir=work_dir, step_timeout=30)


def harness_policies(tmp_path: Path) -> tuple[object, ...]:
    """fetch:* reads under tmp/allowed, publish:git writes to tmp/remotes and
    tmp/allowed; git (http allowed) and http:request reach loopback."""
    git = GitPolicy(allow_http=True, egress=LOOPBACK, timeout=30)
    return (
        LOOPBACK,
        git,
        SourcePolicy(roots=(tmp_path / "allowed",), git=git),
        PublishPolicy(remotes_dir=tmp_path / "remotes", roots=(tmp_path / "allowed",), git=git),
    )


@pytest.fixture
def harness(tmp_path: Path, renderer: Renderer) -> Harness:
    template_dir = tmp_path / "template"
    template_dir.mkdir()
    (template_dir / "template.yaml").write_text("kind: Template\n")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    policies = harness_policies(tmp_path)
    runner = make_runner(tmp_path / "work", renderer, policies)
    return Harness(runner=runner, template_dir=template_dir, workspace=workspace, policies=policies)


def step(action: str, **input: Any) -> dict[str, Any]:
    return {"id": "s", "name": action, "action": action, "input": input}


@pytest.fixture
def one_step() -> Any:
    return step
