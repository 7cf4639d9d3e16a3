"""The TaskWorker with real small executors, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from falsework.config import Settings
from falsework.engine import Broker, ClaimedTask, TaskChannel, TaskWorker, heap
from falsework.engine.codec import SHARE_FROM_RUNS, dumps
from falsework.engine.models import Finish, Heartbeat, WriteBatch
from falsework.engine.runs import Run, RunState
from falsework.errors import ConflictError, InputError, LeaseLostError, NotFoundError
from falsework.runner import as_executor
from falsework.taskio import TaskIO
from falsework.wiring import worker_options
from support.engine import make_worker, open_broker, wait_final, wait_for
from support.engine_executors import steps


@contextlib.asynccontextmanager
async def running(
    broker: Broker, settings: Settings, executor: Any = steps
) -> AsyncIterator[TaskWorker]:
    worker = make_worker(broker, executor, settings)
    loop_task = asyncio.create_task(worker.run())
    await wait_for(lambda: worker.alive)
    try:
        yield worker
    finally:
        await worker.stop()
        await loop_task


def spec(*steps_: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "scaffolder.backstage.io/v1beta3", "steps": list(steps_), **extra}


async def test_runs_to_completion_with_backstage_events(broker: Broker, settings: Settings) -> None:
    task = await broker.create(spec({"id": "a", "log": "hello"}), created_by="user:default/al")
    assert task.to_json()["status"] == "open"
    async with running(broker, settings):
        done = await wait_final(broker, task.id)
    assert done.status == "completed"
    events = await broker.events(task.id)
    assert [e.body["message"] for e in events] == [
        "Starting up task with 1 steps",
        "Beginning step a",
        "hello",
        "Finished step a",
        "Run completed with status: completed",
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    last = events[-1].to_json()
    assert set(last) == {"id", "isTaskRecoverable", "taskId", "body", "type", "createdAt"}
    assert last["type"] == "completion" and last["taskId"] == task.id
    assert last["body"]["output"] == {"done": ["a"], "secrets": [], "attempt": 1}
    assert last["createdAt"].endswith("Z")
    shape = done.to_json()
    assert set(shape) == {"id", "spec", "status", "createdAt", "lastHeartbeatAt", "createdBy"}
    assert shape["lastHeartbeatAt"] is not None
    assert done.step_state == {"a": {"status": "completed", "output": {"attempt": 1}}}


async def test_failures_become_completion_errors(
    broker: Broker, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    failing = await broker.create(spec({"id": "a", "fail": True}))
    raising = await broker.create(spec({"id": "b", "raise": True}))
    with caplog.at_level(logging.ERROR, logger="falsework.engine"):
        async with running(broker, settings):
            one = await wait_final(broker, failing.id)
            two = await wait_final(broker, raising.id)
    assert one.status == two.status == "failed"
    body = (await broker.events(failing.id))[-1].body
    assert body == {
        "message": "Run completed with status: failed",
        "error": {"name": "ActionError", "message": "step a failed on purpose"},
    }
    body = (await broker.events(raising.id))[-1].body
    assert body["error"] == {"name": "Error", "message": "boom in b"}
    assert "Traceback" in caplog.text and "boom in b" in caplog.text


async def test_unknown_ids_and_finished_tasks(broker: Broker, settings: Settings) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    for call in (broker.get, broker.cancel, broker.retry, broker.events):
        with pytest.raises(NotFoundError):
            await call(missing)  # type: ignore[operator]
    with pytest.raises(NotFoundError):
        await broker.set_worker_limit("nobody", 3)
    task = await broker.create(spec({"id": "a"}))
    with pytest.raises(ConflictError):
        await broker.retry(task.id)
    async with running(broker, settings):
        await wait_final(broker, task.id)
    with pytest.raises(ConflictError):
        await broker.cancel(task.id)


async def test_idempotency_key_returns_the_first_task(broker: Broker) -> None:
    first = await broker.create(spec(), idempotency_key="same")
    second = await broker.create(spec({"id": "other"}), idempotency_key="same")
    assert first.id == second.id and second.spec == spec()


async def test_cancel_open_and_running(broker: Broker, settings: Settings) -> None:
    open_task = await broker.create(spec({"id": "a"}))
    cancelled = await broker.cancel(open_task.id)
    assert cancelled.status == "cancelled"
    assert [e.type for e in await broker.events(open_task.id)] == ["cancelled"]
    blocked = await broker.create(spec({"id": "a", "block": True}))
    async with running(broker, settings):
        await wait_for(lambda: broker.get(blocked.id), within=5)
        await wait_for(
            lambda: _has_event(broker, blocked.id, "Beginning step a"),
        )
        requested = await broker.cancel(blocked.id)
        # the owning worker is in this process: it may already have stopped the run
        assert requested.status in ("processing", "cancelled")
        done = await wait_final(broker, blocked.id)
    assert done.status == "cancelled"
    last = (await broker.events(blocked.id))[-1]
    assert last.type == "cancelled"
    assert last.body == {"message": "Run completed with status: cancelled"}


async def _has_event(broker: Broker, task_id: str, message: str) -> bool:
    return any(e.body.get("message") == message for e in await broker.events(task_id))


async def test_retry_resumes_after_completed_steps(broker: Broker, settings: Settings) -> None:
    task = await broker.create(
        spec({"id": "a"}, {"id": "b", "fail": True}), secrets={"token": "s3cret"}
    )
    async with running(broker, settings):
        assert (await wait_final(broker, task.id)).status == "failed"
        # the failed task keeps its (encrypted) secrets for the retry
        assert await broker.store.task_secrets(task.id) is not None
    retried = await broker.retry(task.id)
    assert retried.status == "open"
    assert retried.step_state == {"a": {"status": "completed", "output": {"attempt": 1}}}
    async with running(broker, settings):
        assert (await wait_final(broker, task.id)).status == "failed"
    events = await broker.events(task.id)
    begun = [e.body["message"] for e in events if e.body.get("status") == "processing"]
    assert begun == ["Beginning step a", "Beginning step b", "Beginning step b"]


async def test_secrets_encrypted_at_rest_and_erased_on_completion(
    broker: Broker, settings: Settings
) -> None:
    seen: list[dict[str, str]] = []

    async def record(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        seen.append(task.secrets)
        return {}

    task = await broker.create(spec(), secrets={"token": "very-s3cret-value"})
    raw = await broker.store.task_secrets(task.id)
    assert raw is not None and "very-s3cret-value" not in raw and "token" not in raw
    assert "very-s3cret" not in str(task.to_json())
    async with running(broker, settings, record):
        await wait_final(broker, task.id)
    assert seen == [{"token": "very-s3cret-value"}]
    assert await broker.store.task_secrets(task.id) is None


async def test_failed_task_secrets_erased_after_retention(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(secret_retention=0.3)
    broker = await open_broker(database_url, settings)
    try:
        task = await broker.create(spec({"id": "a", "fail": True}), secrets={"k": "v"})
        async with running(broker, settings):
            await wait_final(broker, task.id)
            assert await broker.store.task_secrets(task.id) is not None
            await wait_for(lambda: _erased(broker, task.id), within=10)
    finally:
        await broker.close()


async def _erased(broker: Broker, task_id: str) -> bool:
    return await broker.store.task_secrets(task_id) is None


async def test_limit_changes_at_runtime(broker: Broker, settings: Settings) -> None:
    peak = 0
    current = 0

    async def slow(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        nonlocal peak, current
        current += 1
        peak = max(peak, current)
        try:
            await asyncio.sleep(0.1)
        finally:
            current -= 1
        return {}

    ids = [(await broker.create(spec())).id for _ in range(12)]
    idle = settings.model_copy(update={"concurrency": 0})
    async with running(broker, idle, slow) as worker:
        assert worker.limit == 0
        await asyncio.sleep(0.3)
        assert [(await broker.get(i)).status for i in ids] == ["open"] * 12
        info = await broker.set_worker_limit(worker.worker_id, 2)
        assert info.limit == 2
        await wait_for(lambda: worker.limit == 2, within=3)
        for i in ids:
            await wait_final(broker, i)
        assert peak == 2
        with pytest.raises(InputError):
            await broker.set_worker_limit(worker.worker_id, 10_001)
        worker.set_limit(5)
        await wait_for(lambda: _limit_stored(broker, worker.worker_id, 5), within=3)


async def _limit_stored(broker: Broker, worker_id: str, limit: int) -> bool:
    return any(w.id == worker_id and w.limit == limit for w in await broker.workers())


async def test_fairness_cap(database_url: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(max_running_per_user=2, concurrency=10)
    broker = await open_broker(database_url, settings)
    release = asyncio.Event()
    started: list[str | None] = []

    async def hold(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        started.append(task.created_by)
        await release.wait()
        return {}

    try:
        flood = [(await broker.create(spec(), created_by="a")).id for _ in range(8)]
        single = await broker.create(spec(), created_by="b")
        async with running(broker, settings, hold):
            await wait_for(lambda: len(started) == 3, within=5)
            await asyncio.sleep(0.3)
            assert sorted(map(str, started)) == ["a", "a", "b"]
            release.set()
            for tid in [*flood, single.id]:
                await wait_final(broker, tid)
    finally:
        await broker.close()


async def test_burst_mode_drains_the_queue(broker: Broker, settings: Settings) -> None:
    ids = [(await broker.create(spec({"id": "a"}))).id for _ in range(30)]
    worker = make_worker(broker, steps, settings)
    await asyncio.wait_for(worker.run(burst=True), 30)
    assert [(await broker.get(i)).status for i in ids] == ["completed"] * 30
    assert worker.claimed_total == 30
    assert await broker.workers() == []


async def test_a_worker_leaves_the_collector_as_its_process_set_it(
    broker: Broker, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The GC's tuning is the serve and worker commands' start-up choice, not the engine's.
    monkeypatch.setattr(heap, "_frozen", False)  # as in a process that never tuned it
    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    threshold = gc.get_threshold()
    for _ in range(3):
        await broker.create(spec({"id": "a"}))
    await asyncio.wait_for(make_worker(broker, steps, settings).run(burst=True), 30)
    assert frozen == [] and gc.get_threshold() == threshold


async def test_burst_worker_with_limit_zero_exits_and_leaves_the_queue(
    database_url: str, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(concurrency=0)
    broker = await open_broker(database_url, settings)
    try:
        task = await broker.create(spec({"id": "a"}))
        worker = make_worker(broker, steps, settings)
        with caplog.at_level(logging.WARNING, logger="falsework.engine"):
            await asyncio.wait_for(worker.run(burst=True), 10)
        assert "limit 0" in caplog.text
        assert (await broker.get(task.id)).status == "open"
        assert worker.claimed_total == 0
    finally:
        await broker.close()


async def test_graceful_stop_finishes_or_releases(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(shutdown_grace=0.5)
    broker = await open_broker(database_url, settings)
    try:
        quick = await broker.create(spec({"id": "a", "sleep": 0.2}))
        stuck = await broker.create(spec({"id": "a", "block": True}))
        worker = make_worker(broker, steps, settings)
        loop_task = asyncio.create_task(worker.run())
        await wait_for(lambda: worker.running == 2, within=5)
        await worker.stop()
        await loop_task
        assert (await broker.get(quick.id)).status == "completed"
        released = await broker.get(stuck.id)
        assert released.status == "open" and released.claimed_by is None
        # another worker picks the released task up
        async with running(broker, settings) as other:
            await wait_for(lambda: other.claimed_total == 1, within=5)
            await broker.cancel(stuck.id)
            assert (await wait_final(broker, stuck.id)).status == "cancelled"
    finally:
        await broker.close()


async def test_subscribe_and_wait_events(broker: Broker, settings: Settings) -> None:
    task = await broker.create(spec({"id": "a", "sleep": 0.3, "log": "x"}))
    assert await broker.wait_events(task.id, None, timeout=0.2) == []
    got: list[int] = []

    async def follow() -> None:
        async for event in broker.subscribe(task.id):
            got.append(event.id)

    follower = asyncio.create_task(follow())
    async with running(broker, settings):
        first = await broker.wait_events(task.id, None, timeout=5)
        assert first and first[0].body["message"].startswith("Starting up")
        await asyncio.wait_for(follower, 10)
    events = await broker.events(task.id)
    assert got == [e.id for e in events] and events[-1].type == "completion"
    # a subscriber joining after the end gets the rest and stops
    late = [e.id async for e in broker.subscribe(task.id, after=events[2].id)]
    assert late == [e.id for e in events[3:]]


async def test_recovery_resumes_with_recovered_event(broker: Broker, settings: Settings) -> None:
    task = await broker.create(spec({"id": "a"}, {"id": "b"}))
    # a worker that claims, completes step a, then dies without a trace
    (dead,) = await broker.claim("dead-worker", 1)
    batch = WriteBatch(tokens={task.id: dead.claim_token})
    batch.steps[task.id] = {"a": dumps({"status": "completed", "output": {"attempt": 1}})}
    assert await broker.write(batch) == set()
    async with running(broker, settings):
        done = await wait_final(broker, task.id, within=20)
    assert done.status == "completed" and done.attempt == 2
    events = await broker.events(task.id)
    assert events[0].type == "recovered"
    assert [e.body.get("message") for e in events if e.body.get("status") == "processing"] == [
        "Beginning step b"
    ]
    assert events[-1].body["output"] == {"done": ["a", "b"], "secrets": [], "attempt": 2}


async def test_claimed_task_carries_its_creation_time(broker: Broker) -> None:
    task = await broker.create(spec({"id": "a"}), created_by="user:default/al")
    (claimed,) = await broker.claim("w", 1)
    assert claimed.id == task.id
    assert claimed.created_at == task.created_at
    assert claimed.created_at is not None and claimed.created_at.tzinfo is not None


async def test_no_recovery_strategy_fails_the_task(broker: Broker, settings: Settings) -> None:
    # the templates layer decides the recovery (Template.recovery) at create time
    task = await broker.create(spec({"id": "a"}), recovery="none")
    await broker.claim("dead-worker", 1)
    async with running(broker, settings):
        done = await wait_final(broker, task.id, within=20)
    assert done.status == "failed"
    (event,) = await broker.events(task.id)
    assert event.type == "completion" and event.to_json()["isTaskRecoverable"] is False


async def test_lease_fencing_stops_a_stale_run(broker: Broker, settings: Settings) -> None:
    gate = asyncio.Event()
    outcome: list[str] = []

    async def stale(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        await io.emit({"message": "before"})
        await gate.wait()
        try:
            # buffered: refused with the flush that carries the awaited checkpoint
            await io.save_step("a", {"status": "completed", "output": {}})
            await io.checkpoint_set("k", 1)
        except LeaseLostError:
            outcome.append("refused")
            raise
        return {}

    task = await broker.create(spec())
    worker = make_worker(broker, stale, settings)
    (claimed,) = await broker.claim(worker.worker_id, 1)
    flusher = asyncio.create_task(worker._batcher.run())  # the flusher only
    run = asyncio.create_task(stale(claimed, _channel(worker, claimed)))
    await wait_for(lambda: _has_event(broker, task.id, "before"))
    # the lease expires (a horizon a minute ahead: no waiting for it) and
    # another worker takes the task over
    assert await broker.recover_stale(-60.0) == [(task.id, "recovered")]
    (new_claim,) = await broker.claim("new-owner", 1)
    assert new_claim.claim_token != claimed.claim_token
    gate.set()
    with pytest.raises(LeaseLostError):
        await run
    assert outcome == ["refused"]
    flusher.cancel()
    fresh = await broker.get(task.id)
    assert fresh.claimed_by == "new-owner" and fresh.step_state == {}
    with pytest.raises(LeaseLostError):  # and every later write of that run
        await _channel(worker, claimed).emit({"message": "late"})


def _channel(worker: TaskWorker, claimed: ClaimedTask) -> TaskIO:
    return TaskChannel(worker._batcher, claimed)


async def test_heartbeat_detects_lost_lease_and_cancels_the_run(
    broker: Broker, settings: Settings
) -> None:
    cancelled = asyncio.Event()

    async def long(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return {}

    task = await broker.create(spec())
    # one slot, held by the run: the worker cannot claim the task back itself
    single = settings.model_copy(update={"concurrency": 1})
    async with running(broker, single, long) as worker:
        await wait_for(lambda: worker.running == 1)
        # someone else re-opens and claims it (as a janitor would after a stall)
        assert await broker.recover_stale(-60.0) == [(task.id, "recovered")]
        await broker.claim("thief", 1)
        await asyncio.wait_for(cancelled.wait(), 5)
        await wait_for(lambda: worker.running == 0)
    fresh = await broker.get(task.id)
    assert fresh.status == "processing" and fresh.claimed_by == "thief"


async def test_memory_ceiling_stops_claiming(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    # every Python process is above 1 MB resident: this worker must not claim
    tight = make_settings(max_rss_mb=1)
    roomy = make_settings(max_rss_mb=1_000_000)
    broker = await open_broker(database_url, tight)
    try:
        task = await broker.create(spec({"id": "a"}))
        async with running(broker, tight) as worker:
            await asyncio.sleep(0.6)
            assert worker.claimed_total == 0
            assert (await broker.get(task.id)).status == "open"
        async with running(broker, roomy):
            assert (await wait_final(broker, task.id)).status == "completed"
    finally:
        await broker.close()


async def test_awkward_json_is_stored_or_refused_cleanly(
    broker: Broker, settings: Settings
) -> None:
    async def awkward(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        await io.emit({"message": "nul\x00byte"})
        await io.save_step("a", {"status": "completed", "output": {"v": "x\x00"}})
        with pytest.raises(ValueError):
            await io.emit({"message": "nan", "value": float("nan")})
        return {"out": "\x00"}

    with pytest.raises(InputError):
        await broker.create({"steps": [], "bad": float("inf")})
    task = await broker.create(spec())
    async with running(broker, settings, awkward):
        done = await wait_final(broker, task.id)
    assert done.status == "completed"
    events = await broker.events(task.id)
    assert events[0].body == {"message": "nul\ufffdbyte"}
    assert events[-1].body["output"] == {"out": "\ufffd"}
    assert done.step_state == {"a": {"status": "completed", "output": {"v": "x\ufffd"}}}


async def test_integers_beyond_64_bits_come_back_as_the_same_integers(
    broker: Broker, settings: Settings
) -> None:
    # orjson would read each of these as a float (engine/codec.py sends them to json)
    big = 2**70 + 1
    seen: dict[str, Any] = {}

    async def echo(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        seen.update(task.spec["values"])
        await io.emit({"message": "big", "value": -big})
        await io.save_step("a", {"status": "completed", "output": {"v": big}})
        return {"out": big}

    values = {"n": big, "id": "1234567890123456789012345", "neg": -(10**30)}
    task = await broker.create(spec(values=values))
    async with running(broker, settings, echo):
        done = await wait_final(broker, task.id)
    assert done.status == "completed"
    assert seen == values and type(seen["n"]) is int
    events = await broker.events(task.id)
    assert [e.body for e in events if e.body.get("message") == "big"] == [
        {"message": "big", "value": -big}
    ]
    assert events[-1].body["output"] == {"out": big}
    assert done.step_state == {"a": {"status": "completed", "output": {"v": big}}}
    assert type(done.step_state["a"]["output"]["v"]) is int


async def test_a_heartbeat_crossing_a_final_write_is_no_lost_lease(
    broker: Broker, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The heartbeat snapshots its runs, then the flush of a run's final write
    # commits before the heartbeat's statement, which lists processing tasks
    # only: the finishing run is not owned any more, and that is no loss (a
    # loaded machine logged 'lease lost' for a hundred tasks per burst).
    created = await broker.create(spec({"id": "a", "log": "hi"}))
    worker = make_worker(broker, steps, settings)
    (task,) = await broker.claim(worker.worker_id, 1)
    assert task.id == created.id
    run = Run(task)
    worker._runs.start(run)
    assert worker._runs.finish(run) and run.state is RunState.FINISHING
    final = Finish(task.id, task.claim_token, "completed", "completion", dumps({}), False)
    assert (
        await broker.write(WriteBatch(finishes=[final], tokens={task.id: task.claim_token}))
        == set()
    )
    with caplog.at_level(logging.WARNING, logger="falsework.engine"):
        await worker.beat()
    assert "lease lost" not in caplog.text
    assert run.stop is None
    # a run still running whose task is gone is a loss, and is said so
    other = await broker.create(spec({"id": "a", "log": "hi"}))
    (task2,) = await broker.claim(worker.worker_id, 1)
    assert task2.id == other.id
    worker._runs.start(Run(task2))
    assert await broker.recover_stale(-60.0) == [(task2.id, "recovered")]
    with caplog.at_level(logging.WARNING, logger="falsework.engine"):
        await worker.beat()
    assert f"task {task2.id}: lease lost" in caplog.text


async def test_a_heartbeat_goes_in_parts_each_confirming_its_runs(
    broker: Broker, settings: Settings
) -> None:
    # 10,000 leases in one statement outlasted the statement timeout under load,
    # and the worker fenced all its runs: a beat is sent in parts of at most
    # heartbeat_batch tasks, in id order, each part's runs confirmed by it.
    options = dataclasses.replace(worker_options(settings), heartbeat_batch=2)
    worker = TaskWorker(broker, as_executor(steps), options)
    await broker.register_worker(worker.worker_id, "host", 1, 10)
    for _ in range(5):
        await broker.create(spec({"id": "a"}))
    claimed = await broker.claim(worker.worker_id, 5)
    runs = [Run(task, valid_until=0.0) for task in claimed]
    for run in runs:
        worker._runs.start(run)
    parts: list[list[str]] = []
    real = broker.heartbeat

    async def recorded(
        worker_id: str, task_ids: Sequence[str], new_limit: int | None, **kw: Any
    ) -> Heartbeat:
        parts.append(list(task_ids))
        return await real(worker_id, task_ids, new_limit, **kw)

    broker.heartbeat = recorded  # type: ignore[method-assign]
    await worker.beat()
    ids = sorted(t.id for t in claimed)
    assert parts == [ids[0:2], ids[2:4], ids[4:5]]
    assert all(run.valid_until > 0.0 and run.stop is None for run in runs)
    (me,) = [w for w in await broker.workers() if w.id == worker.worker_id]
    assert me.running == 5  # the whole count, not the last part's


async def test_claimed_specs_share_their_text_in_a_worker_that_holds_many(broker: Broker) -> None:
    for _ in range(4):
        await broker.create(spec({"id": "a", "action": "debug:log"}))
    one, two = await broker.claim("w", 2, holds=SHARE_FROM_RUNS)
    assert one.spec == two.spec
    assert one.spec["steps"][0]["action"] is two.spec["steps"][0]["action"]
    three, four = await broker.claim("w", 2, holds=SHARE_FROM_RUNS - 1)
    assert three.spec == four.spec == one.spec
    assert three.spec["steps"][0]["action"] is not four.spec["steps"][0]["action"]


async def test_a_worker_claims_as_one_that_holds_its_limit(
    broker: Broker, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    real = broker.claim

    async def recorded(worker_id: str, n: int, **kw: Any) -> list[ClaimedTask]:
        asked.append(kw["holds"])
        return await real(worker_id, n, **kw)

    monkeypatch.setattr(broker, "claim", recorded)
    for limit in (SHARE_FROM_RUNS, 7):
        options = dataclasses.replace(worker_options(settings), concurrency=limit)
        await TaskWorker(broker, as_executor(steps), options)._claim(1)
    assert asked == [SHARE_FROM_RUNS, 7]


@pytest.mark.parametrize(
    ("queued", "before_first_write"),
    [
        # full claims: the queue has more, so the claim of the freed slots goes first
        (12, [("claim", 4), ("claim", 4)]),
        # the first claim came back short: the flush goes at once, before a
        # claim that would likely find nothing
        (2, [("claim", 4)]),
    ],
    ids=["queue-has-more", "queue-drained"],
)
async def test_the_next_claim_goes_out_before_the_flush_of_the_final_writes(
    database_url: str,
    make_settings: Callable[..., Settings],
    queued: int,
    before_first_write: list[tuple[str, int]],
) -> None:
    """Runs that end together free their slots: while the queue likely has more
    (the last claim was full), the worker's claim of them is sent before the
    flush of their final writes is (Batcher's ``hold``), so the flush overlaps
    the claim's round trip (docs/engine.md, "The write-behind buffer")."""
    settings = make_settings(concurrency=4)
    broker = await open_broker(database_url, settings)
    order: list[tuple[str, int]] = []
    claim, write = broker.claim, broker.write

    async def claim_logged(worker_id: str, n: int, *, holds: int = 1) -> list[ClaimedTask]:
        order.append(("claim", n))
        return await claim(worker_id, n, holds=holds)

    async def write_logged(batch: WriteBatch) -> set[str]:
        order.append(("write", len(batch.finishes)))
        return await write(batch)

    try:
        ids = [(await broker.create(spec({"id": "a"}))).id for _ in range(queued)]
        broker.claim = claim_logged  # type: ignore[method-assign]
        broker.write = write_logged  # type: ignore[method-assign]
        worker = make_worker(broker, steps, settings)
        await asyncio.wait_for(worker.run(burst=True), 30)
        assert [(await broker.get(i)).status for i in ids] == ["completed"] * queued
    finally:
        await broker.close()
    first_write = next(i for i, (kind, _) in enumerate(order) if kind == "write")
    assert order[:first_write] == before_first_write, order
    assert sum(n for kind, n in order if kind == "write") == queued
