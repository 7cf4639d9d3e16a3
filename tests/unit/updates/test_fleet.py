"""The executor wrapper that records scaffolds: outputs of steps saved in this
attempt, and of steps a recovered task completed in an earlier one."""

from __future__ import annotations

from falsework.engine.models import ScaffoldRecord
from falsework.runner import LocalTask, MemoryTaskIO
from falsework.taskio import TaskInput, TaskIO
from falsework.types import JSONObject
from falsework.updates.fleet import recording

SCAFFOLD = {"repository": "/r/a.git#main", "templateRef": "template:default/svc", "version": "v1"}


async def test_completed_steps_with_a_scaffold_output_are_recorded() -> None:
    written: list[ScaffoldRecord] = []

    async def write(record: ScaffoldRecord) -> None:
        written.append(record)

    async def run(task: TaskInput, io: TaskIO) -> JSONObject:
        await io.save_step("publish", {"status": "completed", "output": {"scaffold": SCAFFOLD}})
        await io.save_step("failed", {"status": "failed", "output": {"scaffold": SCAFFOLD}})
        await io.save_step("other", {"status": "completed", "output": {"x": 1}})
        return {"done": True}

    io = MemoryTaskIO()
    task = LocalTask(spec={}, created_by="user:default/alice")
    assert await recording(run, write)(task, io) == {"done": True}
    assert written == [
        ScaffoldRecord(
            "/r/a.git#main",
            "template:default/svc",
            "v1",
            {"version": "v1"},
            task.id,
            "user:default/alice",
        )
    ]
    assert set(io.steps) == {"publish", "failed", "other"}  # every save reached the real io

    # recovered after the publish step: its saved state is read from the task
    written.clear()
    resumed = LocalTask(
        spec={}, step_state={"publish": {"status": "completed", "output": {"scaffold": SCAFFOLD}}}
    )

    async def rest(task: TaskInput, io: TaskIO) -> JSONObject:
        return {}

    await recording(rest, write)(resumed, MemoryTaskIO())
    assert [r.repository for r in written] == ["/r/a.git#main"]
