"""The executor wrapper that records scaffolds: outputs of steps saved in this
attempt, and of steps a recovered task completed in an earlier one; and the
tasks a scaffold points at kept from retention, on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from falsework.config import Settings
from falsework.engine import Broker, TaskWorker
from falsework.engine.options import RetentionOptions
from falsework.engine.retention import Retention
from falsework.runner import LocalTask, MemoryTaskIO, as_executor
from falsework.taskio import TaskInput, TaskIO
from falsework.types import JSONObject
from falsework.updates.fleet import recording
from falsework.wiring import broker_options, worker_options

SCAFFOLD = {"repository": "/r/a.git#main", "templateRef": "template:default/svc", "version": "v1"}
# negative ages: every finished task is already past them (no test waits)
DUE = RetentionOptions(
    completed=-60.0, failed=-60.0, cancelled=-60.0, audit=-60.0, batch=50, batch_seconds=60.0
)


@pytest.fixture
async def broker(database_url: str, tmp_path: Path) -> AsyncIterator[Broker]:
    settings = Settings(data_dir=tmp_path / "data", poll_interval=0.2, concurrency=4)
    opened = await Broker.open(database_url, broker_options(settings))
    try:
        yield opened
    finally:
        await opened.close()


async def run_one(broker: Broker, spec: JSONObject, tmp_path: Path) -> str:
    """Run one task whose step reports ``spec["scaffold"]`` through the recording
    executor and a real worker; its id."""

    async def run(task: TaskInput, io: TaskIO) -> JSONObject:
        output = {"scaffold": task.spec["scaffold"]}
        await io.save_step("publish", {"status": "completed", "output": output})
        return {}

    task = await broker.create(spec)
    settings = Settings(data_dir=tmp_path / "data", poll_interval=0.2, concurrency=4)
    worker = TaskWorker(broker, as_executor(recording(run, broker)), worker_options(settings))
    await worker.run(burst=True)
    assert (await broker.get(task.id)).status == "completed"
    return task.id


async def test_completed_steps_with_a_scaffold_output_are_recorded(broker: Broker) -> None:
    async def run(task: TaskInput, io: TaskIO) -> JSONObject:
        await io.save_step("publish", {"status": "completed", "output": {"scaffold": SCAFFOLD}})
        await io.save_step("failed", {"status": "failed", "output": {"scaffold": SCAFFOLD}})
        await io.save_step("other", {"status": "completed", "output": {"x": 1}})
        return {"done": True}

    made = await broker.create({"steps": []}, created_by="user:default/alice")
    io = MemoryTaskIO()
    task = LocalTask(spec={}, id=made.id, created_by="user:default/alice")
    assert await recording(run, broker)(task, io) == {"done": True}
    row = await broker.scaffold_get("/r/a.git#main")
    assert row is not None
    assert (row.template_ref, row.version, row.task_id, row.created_by) == (
        "template:default/svc",
        "v1",
        made.id,
        "user:default/alice",
    )
    assert row.record == {"version": "v1", "createTask": made.id}
    assert set(io.steps) == {"publish", "failed", "other"}  # every save reached the real io

    # recovered after the publish step: its saved state is read from the task
    other = await broker.create({"steps": []})
    resumed = LocalTask(
        spec={},
        id=other.id,
        step_state={
            "publish": {
                "status": "completed",
                "output": {"scaffold": {**SCAFFOLD, "version": "v2"}},
            }
        },
    )

    async def rest(task: TaskInput, io: TaskIO) -> JSONObject:
        return {}

    await recording(rest, broker)(resumed, MemoryTaskIO())
    row = await broker.scaffold_get("/r/a.git#main")
    assert row is not None and (row.version, row.task_id) == ("v2", other.id)


async def test_retention_spares_the_tasks_a_scaffold_points_at(
    broker: Broker, tmp_path: Path
) -> None:
    """The create and the last update are kept; an update the row moved on from is
    released to retention; a task of no scaffold is deleted as usual."""
    update: dict[str, Any] = {**SCAFFOLD, "kind": "update"}
    create = await run_one(broker, {"steps": [], "scaffold": SCAFFOLD}, tmp_path)
    first = await run_one(broker, {"steps": [], "scaffold": {**update, "version": "v2"}}, tmp_path)
    row = await broker.scaffold_get("/r/a.git#main")
    assert row is not None and (row.task_id, row.record["createTask"]) == (first, create)
    second = await run_one(broker, {"steps": [], "scaffold": {**update, "version": "v3"}}, tmp_path)
    plain = (await broker.create({"steps": []})).id
    settings = Settings(data_dir=tmp_path / "data", poll_interval=0.2, concurrency=4)
    await TaskWorker(broker, as_executor(noop), worker_options(settings)).run(burst=True)

    ran = await Retention(broker.store, DUE, "node-a").run_pass()
    assert ran is not None and ran.tasks["completed"] == 2  # the first update, the plain task
    left, total = await broker.list()
    assert total == 2 and {t.id for t in left} == {create, second}
    row = await broker.scaffold_get("/r/a.git#main")
    assert row is not None and (row.task_id, row.record["createTask"]) == (second, create)
    assert plain not in {t.id for t in left}


async def noop(task: TaskInput, io: TaskIO) -> JSONObject:
    return {}
