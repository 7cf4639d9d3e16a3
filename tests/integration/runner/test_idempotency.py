"""Each step's idempotency key, seen from the outside: the ``Idempotency-Key``
headers a real loopback server records across interrupted, resumed and retried
runs of the real runner (the in-memory TaskIO keeps what a database would)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from falsework.actions import ActionRegistry
from falsework.actions.integrations import BackstageTarget, Integrations
from falsework.actions.policies import EgressPolicy
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.runner.idempotency import CHECKPOINT, derive
from falsework.templating import Renderer
from support.recorder import Recorder, recording

LOOPBACK = EgressPolicy.from_lists(allow=["127.0.0.0/8"])


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording() as server:
        yield server


@pytest.fixture
def runner(tmp_path: Path, recorder: Recorder) -> WorkflowRunner:
    # the recorder also stands in for a Backstage instance (http:backstage:request)
    backstage = Integrations(backstage=BackstageTarget(recorder.url), egress=LOOPBACK)
    registry = ActionRegistry.builtin((LOOPBACK, backstage))
    return WorkflowRunner(registry, Renderer(), work_dir=tmp_path / "work", step_timeout=30)


def post(url: str, step_id: str = "call", **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "action": "http:request",
        "input": {"method": "POST", "url": url, "idempotencyKey": True, "body": {"a": 1}, **extra},
    }


def task_of(*steps: dict[str, Any]) -> LocalTask:
    return LocalTask(spec={"steps": list(steps), "user": {"ref": "user:default/guest"}})


async def run(runner: WorkflowRunner, task: LocalTask, io: MemoryTaskIO) -> TaskFailedError | None:
    try:
        await runner.run(task, io)
    except TaskFailedError as exc:
        return exc
    return None


async def interrupt(
    runner: WorkflowRunner, recorder: Recorder, task: LocalTask, io: MemoryTaskIO, after: int = 1
) -> None:
    """Run ``task`` until ``after`` requests reached the recorder (the last one held),
    then stop the run there, as a worker dies mid-request: the request may have
    done its work. Held requests are answered from then on."""
    first = asyncio.create_task(runner.run(task, io))
    await asyncio.to_thread(recorder.wait_for, after)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    recorder.release()


async def interrupt_then_resume(
    runner: WorkflowRunner, recorder: Recorder, task: LocalTask, io: MemoryTaskIO
) -> LocalTask:
    """:func:`interrupt`, then run the next attempt to the end; that attempt's task."""
    await interrupt(runner, recorder, task, io)
    resumed = io.resumed(task)
    assert await run(runner, resumed, io) is None
    return resumed


async def test_an_interrupted_step_sends_the_same_key_when_run_again(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    task, io = task_of(post(f"{recorder.url}/hold")), MemoryTaskIO()
    resumed = await interrupt_then_resume(runner, recorder, task, io)
    keys = recorder.keys()
    assert len(keys) == 2 and keys[0] is not None and keys[0] == keys[1]
    assert str(uuid.UUID(keys[0])) == keys[0] == derive(task.id, "call", task.attempt)
    # a third run of the same task (the step completed: skipped) sends nothing more
    assert await run(runner, io.resumed(resumed), io) is None
    assert len(recorder.requests) == 2


async def test_a_failed_step_gets_a_new_key_when_retried(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    task, io = task_of(post(f"{recorder.url}/fail")), MemoryTaskIO()
    failed = await run(runner, task, io)
    assert failed is not None and "500" in failed.message
    retried = io.resumed(task)  # what a user's retry hands the runner: attempt + 1
    assert await run(runner, retried, io) is not None
    first, second = recorder.keys()
    assert first == derive(task.id, "call", 1) and second == derive(task.id, "call", 2)


async def test_keys_differ_by_step_and_each_item_and_task(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    looped = {**post(f"{recorder.url}/ok", "many"), "each": ["x", "y"]}
    task = task_of(post(f"{recorder.url}/ok", "one"), looped)
    assert await run(runner, task, MemoryTaskIO()) is None
    other = task_of(post(f"{recorder.url}/ok", "one"))
    assert await run(runner, other, MemoryTaskIO()) is None
    keys = recorder.keys()
    assert keys[:3] == [
        derive(task.id, "one", 1),
        derive(task.id, "many[0]", 1),
        derive(task.id, "many[1]", 1),
    ]
    assert len(set(keys)) == 4 and None not in keys


async def test_a_cleanup_step_run_again_for_a_new_attempt_gets_a_new_key(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    cleanup = {**post(f"{recorder.url}/ok", "notify"), "if": "${{ always() }}"}
    task = task_of(
        {"id": "boom", "action": "http:request", "input": {"url": f"{recorder.url}/fail"}},
        cleanup,
    )
    io = MemoryTaskIO()
    assert await run(runner, task, io) is not None
    assert await run(runner, io.resumed(task), io) is not None
    notify = [r.header("Idempotency-Key") for r in recorder.requests if r.path == "/ok"]
    assert notify == [derive(task.id, "notify", 1), derive(task.id, "notify", 2)]


async def test_without_the_option_no_key_is_sent(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    step = {"id": "s", "action": "http:request", "input": {"url": f"{recorder.url}/ok"}}
    assert await run(runner, task_of(step), MemoryTaskIO()) is None
    assert recorder.keys() == [None]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"headers": {"idempotency-key": "mine"}}, "headers already has Idempotency-Key"),
        ({"until": "${{ response.code == 200 }}"}, "polling request"),
    ],
)
async def test_conflicting_input_is_refused_before_anything_is_sent(
    runner: WorkflowRunner, recorder: Recorder, extra: dict[str, Any], problem: str
) -> None:
    failed = await run(runner, task_of(post(f"{recorder.url}/ok", **extra)), MemoryTaskIO())
    assert failed is not None and problem in failed.message and "idempotencyKey" in failed.message
    assert recorder.requests == []


async def test_backstage_requests_send_the_key_too(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    def call(step_id: str, key: bool | str) -> dict[str, Any]:
        return {
            "id": step_id,
            "action": "http:backstage:request",
            "input": {"method": "POST", "path": "/hold/x", "idempotencyKey": key},
        }

    task, io = task_of(call("flag", True), call("named", "notify-once")), MemoryTaskIO()
    resumed = await interrupt_then_resume(runner, recorder, task, io)
    assert recorder.keys() == [derive(task.id, "flag", 1)] * 2 + [derive(task.id, "named", 2)]
    # the named checkpoint (the step's own): the same answer, nothing sent again
    assert await run(runner, LocalTask(**{**vars(resumed), "step_state": {}}), io) is None
    assert len(recorder.requests) == 4  # "flag" again (its step state was dropped), not "named"


async def test_templates_read_the_key_as_context_step_idempotency_key(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    step = {
        "id": "dispatch",
        "each": ["a", "b"],
        "action": "http:request",
        "input": {
            "method": "POST",
            "url": f"{recorder.url}/hold",
            "headers": {"X-Request-Id": "${{ context.step.idempotencyKey }}"},
            "body": {"scope": "${{ context.step.id }}", "task": "${{ context.task.id }}"},
        },
    }
    task, io = task_of(step), MemoryTaskIO()
    await interrupt_then_resume(runner, recorder, task, io)
    sent = [(r.body["scope"], r.header("X-Request-Id")) for r in recorder.requests]
    a, b = derive(task.id, "dispatch[0]", 1), derive(task.id, "dispatch[1]", 2)
    assert sent == [("dispatch[0]", a), ("dispatch[0]", a), ("dispatch[1]", b)]
    assert all(r.body["task"] == task.id for r in recorder.requests)


async def test_start_over_gives_completed_steps_new_keys_and_the_interrupted_one_its_own(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    task = task_of(post(f"{recorder.url}/ok", "first"), post(f"{recorder.url}/hold", "second"))
    io = MemoryTaskIO()
    await interrupt(runner, recorder, task, io, after=2)
    # startOver: the engine re-opens the task with no step state, its checkpoints kept
    again = LocalTask(spec=task.spec, id=task.id, attempt=2, checkpoints=dict(io.checkpoints))
    assert await run(runner, again, MemoryTaskIO(checkpoints=dict(io.checkpoints))) is None
    assert recorder.keys() == [
        derive(task.id, "first", 1),
        derive(task.id, "second", 1),
        derive(task.id, "first", 2),
        derive(task.id, "second", 1),
    ]


class StallingSpends(MemoryTaskIO):
    """The in-memory TaskIO as the engine's behaves when the database goes away
    right after a step completed: the step's state and its spent key are queued
    (applied here), and waiting for them to be durable never ends."""

    stalled: asyncio.Event | None = None

    async def checkpoint_set(self, key: str, value: Any) -> None:
        await super().checkpoint_set(key, value)
        if key.startswith(CHECKPOINT) and value == {}:
            assert self.stalled is not None
            self.stalled.set()
            await asyncio.Event().wait()


async def test_a_run_stopped_after_its_step_completed_does_not_undo_the_completion(
    runner: WorkflowRunner, recorder: Recorder
) -> None:
    task, io = task_of(post(f"{recorder.url}/ok", "call")), StallingSpends()
    io.stalled = asyncio.Event()
    first = asyncio.create_task(runner.run(task, io))
    await io.stalled.wait()
    first.cancel()  # e.g. the worker's lease ran out while the database was away
    with pytest.raises(asyncio.CancelledError):
        await first
    assert io.steps["call"]["status"] == "completed"  # not overwritten by "cancelled"
    assert await run(runner, io.resumed(task), MemoryTaskIO(checkpoints=io.checkpoints)) is None
    assert len(recorder.requests) == 1  # the next run skips it: no second call
