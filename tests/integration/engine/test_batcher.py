"""The write-behind batcher: one task's refused write harms no other task in its batch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from falsework.engine import Broker, NewTask
from falsework.engine import batcher as batcher_module
from falsework.engine.batcher import Batcher
from falsework.engine.models import Finish, WriteBatch
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


async def test_a_burst_goes_out_in_flushes_of_whole_tasks(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batcher_module, "MAX_FLUSH_EVENTS", 4)
    ids = await broker.create_many([NewTask(SPEC) for _ in range(5)])
    claimed = {t.id: t for t in await broker.claim("worker-1", 5)}
    written: list[dict[str, int]] = []
    write = broker.write

    async def noting(batch: WriteBatch) -> set[str]:
        per_task: dict[str, int] = {}
        for task_id, *_ in batch.events:
            per_task[task_id] = per_task.get(task_id, 0) + 1
        written.append(per_task)
        return await write(batch)

    batcher = Batcher(noting, broker.hub, lambda _ids: None)
    # everything buffered before the flusher runs: one burst of 15 events
    done = []
    for tid in ids:
        t = claimed[tid]
        for n in range(3):
            batcher.event(tid, t.claim_token, "log", f'{{"n": {n}}}')
        done.append(
            batcher.finish(Finish(tid, t.claim_token, "completed", "completion", "{}", False))
        )
    flusher = asyncio.create_task(batcher.run())
    try:
        await asyncio.wait_for(asyncio.gather(*done), 10)
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
    # whole tasks (3 events each) until a flush holds 4 or more: 2 tasks a flush
    assert [sorted(w.values()) for w in written] == [[3, 3], [3, 3], [3]]
    for tid in ids:
        assert (await broker.get(tid)).status == "completed"
        events = await broker.events(tid)
        assert [e.body.get("n") for e in events] == [0, 1, 2, None]
