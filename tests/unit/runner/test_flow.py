"""if / each / always() / failure(), validation, timeouts, resume, outputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from falsework.errors import LeaseLostError
from falsework.runner import MemoryTaskIO
from support.runner import CALLS, READ_IN


def echo(step_id: str, value: Any = "x", **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "name": f"Echo {step_id}",
        "action": "test:echo",
        "input": {"value": value},
        **extra,
    }


@pytest.mark.parametrize("falsy", [False, "", 0, None, []])
async def test_falsy_if_skips(harness: Any, falsy: Any) -> None:
    task = harness.task([echo("a", **{"if": "${{ parameters.v }}"}), echo("b")], {"v": falsy})
    result = await harness.run(task)
    assert result.statuses == {"a": "skipped", "b": "completed"}
    assert result.step_events("a") == [
        {"message": "Beginning step Echo a", "stepId": "a", "status": "processing"},
        {
            "message": "Skipping step a because its if condition was false",
            "stepId": "a",
            "status": "skipped",
        },
    ]


@pytest.mark.parametrize("truthy", [True, "yes", 1, ["x"], {"a": 1}])
async def test_truthy_if_runs(harness: Any, truthy: Any) -> None:
    result = await harness.run(
        harness.task([echo("a", **{"if": "${{ parameters.v }}"})], {"v": truthy})
    )
    assert result.statuses == {"a": "completed"}


async def test_literal_false_if(harness: Any) -> None:
    result = await harness.run(harness.task([echo("a", **{"if": False})]))
    assert result.statuses == {"a": "skipped"}


async def test_each_over_list_and_object(harness: Any) -> None:
    steps = [
        echo("l", "${{ each.key }}=${{ each.value }}", each="${{ parameters.items }}"),
        echo("o", "${{ each.key }}:${{ each.value.n }}", each={"x": {"n": 1}, "y": {"n": 2}}),
        echo("after", "${{ steps.l.output.value | join(',') }}"),
    ]
    result = await harness.run(harness.task(steps, {"items": ["a", "b", "c"]}))
    assert result.error is None
    assert result.io.steps["l"]["output"] == {"value": ["0=a", "1=b", "2=c"]}
    assert result.io.steps["o"]["output"] == {"value": ["x:1", "y:2"]}
    assert result.io.steps["after"]["output"] == {"value": "0=a,1=b,2=c"}
    assert any("Running step each:" in b["message"] for b in result.step_events("l"))


async def test_each_must_be_a_collection(harness: Any) -> None:
    result = await harness.run(harness.task([echo("a", each="${{ 3 }}")]))
    assert result.error is not None and "each must be a list or an object" in result.error.message


async def test_failure_skips_later_steps_unless_always_or_failure(harness: Any) -> None:
    steps = [
        echo("a"),
        {"id": "bad", "name": "Bad", "action": "test:fail", "input": {"message": "it broke"}},
        echo("skipped"),
        echo("cleanup", **{"if": "${{ always() }}"}),
        echo("report", "${{ 'failed' if failure() else 'ok' }}", **{"if": "${{ failure() }}"}),
        echo("on-success", **{"if": "${{ not failure() and true }}"}),
    ]
    result = await harness.run(harness.task(steps))
    assert result.error is not None
    assert (result.error.name, result.error.message) == ("ActionError", "it broke")
    assert result.statuses == {
        "a": "completed",
        "bad": "failed",
        "skipped": "skipped",
        "cleanup": "completed",
        "report": "completed",
        "on-success": "skipped",
    }
    assert result.io.steps["report"]["output"] == {"value": "failed"}
    assert {
        "message": "ActionError: it broke",
        "stepId": "bad",
        "status": "failed",
    } in result.bodies()


async def test_always_runs_when_all_succeeded(harness: Any) -> None:
    result = await harness.run(harness.task([echo("a"), echo("b", **{"if": "${{ always() }}"})]))
    assert result.statuses == {"a": "completed", "b": "completed"}


async def test_input_validation_names_step_and_field(harness: Any) -> None:
    steps = [{"id": "fetch", "action": "fetch:template", "input": {"targetPath": "x"}}]
    result = await harness.run(harness.task(steps))
    assert result.error is not None and result.error.name == "InputError"
    assert "step fetch (fetch:template)" in result.error.message
    assert "input.url: Field required" in result.error.message
    wrong = [{"id": "w", "action": "debug:wait", "input": {"seconds": "${{ parameters.s }}"}}]
    result = await harness.run(harness.task(wrong, {"s": "soon"}))
    assert result.error is not None and "input.seconds" in result.error.message


async def test_unknown_action(harness: Any) -> None:
    result = await harness.run(harness.task([{"id": "a", "action": "fetch:tmplate"}]))
    assert result.error is not None and "did you mean fetch:template" in result.error.message


async def test_context_exposes_user_task_and_types(harness: Any) -> None:
    value = {
        "n": "${{ parameters.n }}",
        "who": "${{ user.ref }}",
        "name": "${{ user.entity.metadata.name }}",
        "task": "${{ context.task.id }}",
    }
    steps = [echo("a", value)]
    task = harness.task(steps, {"n": 3})
    result = await harness.run(task)
    assert result.io.steps["a"]["output"]["value"] == {
        "n": 3,
        "who": "user:default/ada",
        "name": "ada",
        "task": task.id,
    }


async def test_output_links_and_text_with_if(harness: Any) -> None:
    output = {
        "links": [
            {"title": "Repo", "url": "${{ steps.a.output.value }}"},
            {"title": "Hidden", "url": "x", "if": "${{ parameters.show }}"},
        ],
        "text": [{"title": "T", "content": "shown", "if": "${{ not parameters.show }}"}],
        "other": "${{ parameters.show }}",
    }
    result = await harness.run(
        harness.task([echo("a", "https://x")], {"show": False}, output=output)
    )
    assert result.output == {
        "links": [{"title": "Repo", "url": "https://x"}],
        "text": [{"title": "T", "content": "shown"}],
        "other": False,
    }


async def test_step_timeout(harness: Any) -> None:
    steps = [
        {
            "id": "w",
            "name": "Wait",
            "action": "debug:wait",
            "input": {"seconds": 20},
            "timeout": 0.05,
        },
        echo("next"),
    ]
    result = await harness.run(harness.task(steps))
    assert result.error is not None and result.error.name == "StepTimeoutError"
    assert "timed out after 0.05 seconds" in result.error.message
    assert result.statuses == {"w": "failed", "next": "skipped"}


async def test_default_timeout_and_duration_strings(harness: Any) -> None:
    harness.runner.step_timeout = 0.05
    result = await harness.run(harness.task([{"id": "b", "action": "test:block", "input": {}}]))
    assert result.error is not None and result.error.name == "StepTimeoutError"
    harness.runner.step_timeout = 30
    bad = await harness.run(harness.task([echo("a", timeout="soon")]))
    assert bad.error is not None and "not a positive duration" in bad.error.message
    ok = await harness.run(harness.task([echo("a", timeout="2m")]))
    assert ok.error is None


async def test_resume_skips_completed_steps_and_restores_outputs(harness: Any) -> None:
    steps = [
        {"id": "once", "action": "test:once", "input": {}},
        {
            "id": "bad",
            "action": "test:fail",
            "input": {"message": "${{ parameters.fail }}"},
            "if": "${{ parameters.fail }}",
        },
        echo("use", "${{ steps.once.output.n }}"),
    ]
    io = MemoryTaskIO()
    task = harness.task(steps, {"fail": "first attempt fails"})
    first = await harness.run(task, io)
    assert first.error is not None and first.statuses["once"] == "completed"
    retry = io.resumed(task)
    retry.spec = {**task.spec, "parameters": {"fail": ""}}
    second = await harness.run(retry, io)
    assert second.error is None
    assert CALLS.count("effect") == 1
    assert io.steps["use"]["output"] == {"value": io.steps["once"]["output"]["n"]}
    assert {
        "message": "Skipping step test:once: completed by an earlier attempt",
        "stepId": "once",
        "status": "completed",
    } in second.bodies()


async def test_checkpoint_survives_a_failed_step(harness: Any) -> None:
    steps = [{"id": "c", "action": "test:once", "input": {}}, {"id": "f", "action": "test:fail"}]
    io = MemoryTaskIO()
    task = harness.task(steps)
    await harness.run(task, io)
    fresh = io.resumed(task)
    fresh.step_state = {}  # even when the step itself re-runs, the side effect does not
    await harness.run(fresh, io)
    assert CALLS.count("effect") == 1


async def test_a_resumed_task_rebuilds_its_workspace(harness: Any, tmp_path: Path) -> None:
    entity = {"kind": "Component", "metadata": {"name": "svc"}}
    steps = [
        {"id": "w", "name": "Write", "action": "catalog:write", "input": {"entity": entity}},
        {"id": "e", "name": "Echo", "action": "test:echo", "input": {"value": 1}},
        {
            "id": "r",
            "action": "test:read",
            "input": {"path": "catalog-info.yaml", "failFirst": True},
        },
    ]
    io = MemoryTaskIO()
    task = harness.task(steps)
    first = await harness.run(task, io)
    assert first.error is not None
    assert first.statuses == {"w": "completed", "e": "completed", "r": "failed"}
    assert READ_IN == [tmp_path / "work" / task.id]
    assert not READ_IN[0].exists()  # gone with the failed attempt

    # the retry (or a recovery on another node) starts from an empty workspace:
    # the workspace-building step runs again, the others are skipped
    CALLS.clear()
    retried = io.resumed(task)
    second = await harness.run(retried, MemoryTaskIO())
    assert second.error is None, second.error
    assert "kind: Component" in second.io.steps["r"]["output"]["text"]
    assert CALLS == []  # test:echo was not run again
    messages = [b["message"] for b in second.bodies()]
    again = (
        "Running step Write again: an earlier attempt completed it, and this attempt's "
        "workspace needs its files"
    )
    assert again in messages
    assert "Skipping step Echo: completed by an earlier attempt" in messages
    assert "e" not in second.io.steps  # skipped: its saved state stays as it was
    assert second.io.steps["w"]["status"] == "completed"
    # each attempt had its own folder, and this one is removed too
    assert READ_IN[1:] == [tmp_path / "work" / f"{task.id}.2"]
    assert not READ_IN[1].exists()


async def test_a_later_attempt_removes_what_crashed_attempts_left(
    harness: Any, tmp_path: Path
) -> None:
    task = harness.task([{"id": "e", "action": "test:echo", "input": {"value": 1}}])
    left = [tmp_path / "work" / task.id, tmp_path / "work" / f"{task.id}.2"]
    for folder in left:  # as a SIGKILLed worker leaves them
        (folder / "half").mkdir(parents=True)
    other = tmp_path / "work" / "another-task"
    other.mkdir()
    third = dataclasses.replace(task, attempt=3)
    result = await harness.run(third)
    assert result.error is None
    assert not any(folder.exists() for folder in left)
    assert other.exists()  # only this task's earlier attempts


async def test_workspace_removed_or_kept_on_failure(harness: Any, tmp_path: Path) -> None:
    write = {"id": "w", "action": "catalog:write", "input": {"entity": {"kind": "X"}}}
    ok = harness.task([write])
    await harness.run(ok)
    assert not (tmp_path / "work" / ok.id).exists()
    harness.runner.keep_workspace_on_failure = True
    failing = harness.task([write, {"id": "f", "action": "test:fail"}])
    await harness.run(failing)
    assert (tmp_path / "work" / failing.id / "catalog-info.yaml").exists()


async def test_no_workspace_for_steps_without_files(harness: Any, tmp_path: Path) -> None:
    await harness.run(harness.task([echo("a")]))
    assert not (tmp_path / "work").exists()


async def test_output_that_fails_to_render_fails_the_task(harness: Any) -> None:
    output = {"text": [{"title": "t", "content": "${{ parameters.x.__class__ }}"}]}
    result = await harness.run(harness.task([echo("a")], {"x": 1}, output=output))
    assert result.error is not None and result.error.name == "TemplateSecurityError"
    assert result.error.message.startswith("spec.output: ")


class LosingIO(MemoryTaskIO):
    """A TaskIO whose lease is taken over after a number of events, as the
    engine's fenced writes behave when another worker recovered the task."""

    def __init__(self, allowed: int) -> None:
        super().__init__()
        self.allowed = allowed

    async def emit(self, body: dict[str, Any], type: str = "log") -> None:
        if len(self.events) >= self.allowed:
            raise LeaseLostError()
        await super().emit(body, type)


async def test_lease_lost_stops_the_run_without_failing_steps(harness: Any) -> None:
    io = LosingIO(allowed=3)
    with pytest.raises(LeaseLostError):
        await harness.runner(harness.task([echo("a"), echo("b")]), io)
    assert all(s.get("status") != "failed" for s in io.steps.values())
