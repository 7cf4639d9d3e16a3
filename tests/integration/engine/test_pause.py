"""Pausing claiming cluster-wide, on both dialects: a worker claims nothing while
the switch is on, whichever node set it, and runs the queue once another node
clears it (woken, not left to its slow poll)."""

from __future__ import annotations

import asyncio
from typing import Any

from falsework.config import Settings
from falsework.taskio import TaskInput, TaskIO
from support.engine import make_worker, open_broker, wait_final


async def _run(task: TaskInput, io: TaskIO) -> dict[str, Any]:
    return {"ran": task.id}


async def test_a_paused_cluster_claims_nothing_until_resumed(
    database_url: str, settings: Settings
) -> None:
    # two brokers: the worker's node, and the node an admin pauses and resumes from
    node = await open_broker(database_url, settings)
    admin = await open_broker(database_url, settings)
    # a slow poll: only a wake-up makes the worker claim soon after the resume
    worker = make_worker(
        node, _run, settings.model_copy(update={"poll_interval": 30.0, "max_poll_interval": 30.0})
    )
    running = asyncio.create_task(worker.run())
    try:
        flag = await admin.pause("user:default/root", "upgrade")
        assert (flag.name, flag.set_by, flag.detail) == (
            "paused",
            "user:default/root",
            {"reason": "upgrade"},
        )
        assert (await node.paused()) == flag
        tasks = [await admin.create({"steps": []}) for _ in range(3)]
        await asyncio.sleep(0.5)  # the new tasks' wake-ups came and went
        assert {(await node.get(t.id)).status for t in tasks} == {"open"}
        assert worker.claimed_total == 0
        overview = await admin.overview(60)
        assert (overview.claimable, overview.processing) == (3, 0)
        assert await admin.resume()
        assert not await admin.resume()
        assert await node.paused() is None
        for t in tasks:
            assert (await wait_final(node, t.id, within=10)).status == "completed"
    finally:
        await worker.stop()
        await running
        await node.close()
        await admin.close()
