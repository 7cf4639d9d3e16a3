"""Runner fixtures: the real runner and the in-memory TaskIO, plus a few small
test actions (counting, failing, echoing, waiting on the signal)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from falsework.actions import ActionContext, ActionInput, ActionRegistry, action
from falsework.errors import ActionError
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.templating import Renderer

CALLS: list[str] = []


class EchoInput(ActionInput):
    value: Any = Field(None, description="Echoed to the output `value`.")


@action(id="test:echo", description="Outputs its input.", input=EchoInput, dry_run=True)
async def echo(ctx: ActionContext[EchoInput]) -> None:
    CALLS.append(ctx.step_id)
    ctx.logger.info(f"echo {ctx.input.value}")
    ctx.output("value", ctx.input.value)


class FailInput(ActionInput):
    message: str = Field("boom", description="The error message.")


@action(id="test:fail", description="Fails.", input=FailInput, dry_run=True)
async def fail(ctx: ActionContext[FailInput]) -> None:
    raise ActionError(ctx.input.message)


class BlockInput(ActionInput):
    seconds: float = Field(30.0, description="How long to wait.")


SIGNALS: list[asyncio.Event] = []


@action(id="test:block", description="Waits, recording its signal.", input=BlockInput)
async def block(ctx: ActionContext[BlockInput]) -> None:
    SIGNALS.append(ctx.signal)
    ctx.workspace.joinpath("started").write_text("yes")
    ctx.logger.info("blocking")
    await asyncio.sleep(ctx.input.seconds)


THREAD_LOG: list[str] = []


@action(
    id="test:thread", description="Blocking work in a thread until signalled.", input=BlockInput
)
async def in_thread(ctx: ActionContext[BlockInput]) -> None:
    def work() -> None:
        THREAD_LOG.append("started")
        # blocking work checks the signal between units, as fetch:template does per file
        while not ctx.signal.is_set():
            time.sleep(0.001)
        THREAD_LOG.append("stopped")

    ctx.logger.info("blocking")
    await ctx.in_thread(work)


class OnceInput(ActionInput):
    key: str = Field("k", description="Checkpoint key.")


@action(
    id="test:once",
    description="A checkpointed side effect.",
    input=OnceInput,
    output={"type": "object", "properties": {"n": {"type": "integer", "default": 7}}},
)
async def once(ctx: ActionContext[OnceInput]) -> None:
    async def effect() -> int:
        CALLS.append("effect")
        return len(CALLS)

    ctx.output("n", await ctx.checkpoint(ctx.input.key, effect))


class ReadInput(ActionInput):
    path: str = Field(description="A workspace file to read.")
    fail_first: bool = Field(False, description="Fail the first attempt of each task.")


FAILED_ONCE: set[str] = set()
READ_IN: list[Path] = []  # the workspace each test:read ran in


@action(id="test:read", description="Outputs a workspace file's text.", input=ReadInput)
async def read(ctx: ActionContext[ReadInput]) -> None:
    READ_IN.append(ctx.workspace)
    if ctx.input.fail_first and ctx.task_id not in FAILED_ONCE:
        FAILED_ONCE.add(ctx.task_id)
        raise ActionError("not this time")
    target = ctx.workspace / ctx.input.path
    if not target.is_file():
        raise ActionError(f"{ctx.input.path} is not in the workspace")
    ctx.output("text", target.read_text())


@dataclass
class Outcome:
    io: MemoryTaskIO
    task: LocalTask
    output: dict[str, Any] | None = None
    error: TaskFailedError | None = None
    statuses: dict[str, str] = field(default_factory=dict)

    def bodies(self) -> list[dict[str, Any]]:
        return [b for _, b in self.io.events]

    def step_events(self, step_id: str) -> list[dict[str, Any]]:
        return [b for _, b in self.io.events if b.get("stepId") == step_id]


@dataclass
class Harness:
    runner: WorkflowRunner
    tmp: Path

    def task(
        self,
        steps: list[dict[str, Any]],
        parameters: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        output: Mapping[str, Any] | None = None,
    ) -> LocalTask:
        spec = {
            "apiVersion": "scaffolder.backstage.io/v1beta3",
            "steps": steps,
            "output": dict(output or {}),
            "parameters": dict(parameters or {}),
            "user": {"ref": "user:default/ada", "entity": {"metadata": {"name": "ada"}}},
            "templateInfo": {"baseUrl": (self.tmp / "template.yaml").as_uri()},
        }
        return LocalTask(spec=spec, secrets=dict(secrets or {}))

    async def run(self, task: LocalTask, io: MemoryTaskIO | None = None) -> Outcome:
        io = io or MemoryTaskIO()
        outcome = Outcome(io=io, task=task)
        try:
            outcome.output = await self.runner(task, io)
        except TaskFailedError as exc:
            outcome.error = exc
        outcome.statuses = {k: str(v.get("status")) for k, v in io.steps.items()}
        return outcome


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture
def registry() -> ActionRegistry:
    reg = ActionRegistry.builtin()
    for item in (echo, fail, block, once, in_thread, read):
        reg.register(item)
    return reg


@pytest.fixture
def harness(tmp_path: Path, renderer: Renderer, registry: ActionRegistry) -> Harness:
    CALLS.clear()
    SIGNALS.clear()
    THREAD_LOG.clear()
    READ_IN.clear()
    runner = WorkflowRunner(registry, renderer, work_dir=tmp_path / "work", step_timeout=30)
    return Harness(runner=runner, tmp=tmp_path)
