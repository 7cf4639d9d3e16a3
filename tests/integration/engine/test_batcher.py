"""The write-behind batcher: one task's refused write harms no other task in its batch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from falsework.engine import Broker, NewTask
from falsework.engine.batcher import Batcher
from falsework.engine.models import Finish
from falsework.errors import TaskWriteError

SPEC = {"apiVersion": "scaffolder.backstage.io/v1beta3", "steps": [], "output": {}}


@contextlib.asynccontextmanager
async def flushing(broker: Broker) -> AsyncIterator[Batcher]:
    batcher = Batcher(broker.write, broker.hub, lambda _ids: None)
    flusher = asyncio.create_task(batcher.run())
    try:
        yield batcher
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher


async def test_a_refused_write_fails_its_task_only(broker: Broker) -> None:
    a_id, b_id = await broker.create_many([NewTask(SPEC), NewTask(SPEC)])
    claimed = {t.id: t for t in await broker.claim("worker-1", 2)}
    a, b = claimed[a_id], claimed[b_id]

    async with flushing(broker) as batcher:
        # one batch: A's step state is not JSON (the database refuses it), B's
        # writes are fine and must land whatever happens to A's
        batcher.event(a.id, a.claim_token, "log", '{"message": "a1"}')
        batcher.step(a.id, a.claim_token, "s1", "{this is not json")
        a_checkpoint = batcher.checkpoint(a.id, a.claim_token, "k", '"v"')
        batcher.event(b.id, b.claim_token, "log", '{"message": "b1"}')
        batcher.step(b.id, b.claim_token, "s1", '{"status": "completed"}')
        b_done = batcher.finish(
            Finish(b.id, b.claim_token, "completed", "completion", '{"message": "done"}', False)
        )
        await asyncio.wait_for(b_done, 10)
        with pytest.raises(TaskWriteError) as refused:
            await asyncio.wait_for(a_checkpoint, 10)
        assert "refused this task's writes" in refused.value.message

        task_b = await broker.get(b.id)
        assert task_b.status == "completed"
        assert [e.body.get("message") for e in await broker.events(b.id)] == ["b1", "done"]

        # A fails at its next write, but its final write (the failure) goes through
        with pytest.raises(TaskWriteError):
            batcher.event(a.id, a.claim_token, "log", '{"message": "a2"}')
        a_done = batcher.finish(
            Finish(a.id, a.claim_token, "failed", "completion", '{"message": "failed"}', True)
        )
        await asyncio.wait_for(a_done, 10)
    assert (await broker.get(a.id)).status == "failed"
    assert [e.body.get("message") for e in await broker.events(a.id)] == ["failed"]
