"""The cluster metrics snapshot: made by one node at a time, never counting an
ended run twice, whatever the number of nodes asking; on both dialects."""

from __future__ import annotations

import asyncio
from typing import Any

from falsework.config import Settings
from falsework.engine import Broker
from falsework.engine.cluster import MAX_LABELS, OTHER, TASK_BUCKETS, observe
from falsework.engine.models import Mark
from falsework.taskio import TaskInput, TaskIO
from support.engine import make_worker, open_broker

SPEC = {
    "templateInfo": {"entityRef": "template:default/demo"},
    "steps": [{"id": "one", "action": "debug:log"}],
}


async def two_steps(task: TaskInput, io: TaskIO) -> dict[str, Any]:
    await io.emit({"message": "Beginning step one", "stepId": "one", "status": "processing"})
    await io.emit({"message": "Finished step one", "stepId": "one", "status": "completed"})
    return {}


def runs(body: dict[str, Any]) -> int:
    series = body["task"].get("template:default/demo", {}).get("completed")
    return 0 if series is None else int(sum(series[:-1]))


async def test_many_nodes_asking_at_once_count_each_run_once(
    database_url: str, broker: Broker, settings: Settings
) -> None:
    first = await broker.cluster_metrics(every=0.0, alive_within=60.0, lag=-60.0)
    assert first is not None and runs(first.body) == 0
    for _ in range(12):
        await broker.create(SPEC)
    await make_worker(broker, two_steps, settings).run(burst=True)
    other = await open_broker(database_url, settings)
    try:
        # every=0: each call finds the snapshot stale and races for the turn
        asks = [
            b.cluster_metrics(every=0.0, alive_within=60.0, lag=-60.0)
            for _ in range(5)
            for b in (broker, other)
        ]
        await asyncio.gather(*asks)
        last = await other.cluster_metrics(every=0.0, alive_within=60.0, lag=-60.0)
    finally:
        await other.close()
    assert last is not None and runs(last.body) == 12
    step = last.body["step"]["debug:log"]["completed"]
    assert sum(step[:-1]) == 12
    assert last.body["gauges"]["tasks"]["completed"] == 12


async def test_a_fresh_snapshot_is_served_without_recounting(broker: Broker) -> None:
    made = await broker.cluster_metrics(every=3600.0, alive_within=60.0, lag=0.0)
    again = await broker.cluster_metrics(every=3600.0, alive_within=60.0, lag=0.0)
    assert made is not None and again is not None
    assert again.last_event_id == made.last_event_id and again.body == made.body
    assert again.age >= 0.0


def test_labels_are_bounded_and_buckets_hold_each_duration() -> None:
    body: dict[str, Any] = {"task": {}, "step": {}}
    for i in range(MAX_LABELS + 5):
        observe(body, Mark(i, "task", "completed", f"template:default/t{i}", 0.5))
    assert len(body["task"]) == MAX_LABELS + 1
    assert sum(body["task"][OTHER]["completed"][:-1]) == 5
    observe(body, Mark(0, "task", "failed", "template:default/t0", TASK_BUCKETS[-1] + 1))
    observe(body, Mark(0, "task", "failed", "template:default/t0", None))  # no start: skipped
    failed = body["task"]["template:default/t0"]["failed"]
    assert failed[len(TASK_BUCKETS)] == 1 and sum(failed[:-1]) == 1
    assert failed[-1] == TASK_BUCKETS[-1] + 1
