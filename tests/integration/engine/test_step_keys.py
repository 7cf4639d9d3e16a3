"""Steps' idempotency keys through the real engine (SQLite and Postgres): the key
is stored with the task, so a run handed to another worker sends the same key,
and a user's retry of a failed step a new one (a loopback server records them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from falsework.actions import ActionRegistry
from falsework.actions.policies import EgressPolicy
from falsework.config import Settings
from falsework.engine import TaskWorker
from falsework.runner import WorkflowRunner, as_executor
from falsework.runner.idempotency import derive
from falsework.templating import Renderer
from falsework.wiring import worker_options
from support.engine import open_broker, wait_final, wait_for
from support.recorder import Recorder, recording


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording() as server:
        yield server


def spec(url: str) -> dict[str, Any]:
    step = {
        "id": "submit",
        "action": "http:request",
        "input": {"method": "POST", "url": url, "idempotencyKey": True},
    }
    return {"apiVersion": "scaffolder.backstage.io/v1beta3", "steps": [step]}


def worker_of(broker: Any, settings: Settings, tmp_path: Path) -> TaskWorker:
    registry = ActionRegistry.builtin((EgressPolicy.from_lists(allow=["127.0.0.0/8"]),))
    runner = WorkflowRunner(registry, Renderer(), work_dir=tmp_path / "work")
    return TaskWorker(broker, as_executor(runner), worker_options(settings))


async def test_a_released_run_sends_the_same_key_from_the_next_worker(
    database_url: str,
    make_settings: Callable[..., Settings],
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    settings = make_settings(shutdown_grace=0.3)
    broker = await open_broker(database_url, settings)
    try:
        task = await broker.create(spec(f"{recorder.url}/hold"))
        first = worker_of(broker, settings, tmp_path)
        loop = asyncio.create_task(first.run())
        await asyncio.to_thread(recorder.wait_for, 1)
        await first.stop()  # past its grace the run is stopped and the task handed back
        await loop
        assert (await broker.get(task.id)).status == "open"
        recorder.release()
        second = worker_of(broker, settings, tmp_path)
        loop = asyncio.create_task(second.run())
        try:
            done = await wait_final(broker, task.id)
        finally:
            await second.stop()
            await loop
        assert done.status == "completed" and done.attempt == 2
        assert recorder.keys() == [derive(task.id, "submit", 1)] * 2
    finally:
        await broker.close()


async def test_a_retried_failed_step_sends_a_new_key(
    database_url: str,
    make_settings: Callable[..., Settings],
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    broker = await open_broker(database_url, settings)
    worker = worker_of(broker, settings, tmp_path)
    loop = asyncio.create_task(worker.run())
    try:
        task = await broker.create(spec(f"{recorder.url}/fail"))
        assert (await wait_final(broker, task.id)).status == "failed"
        await broker.retry(task.id)
        await wait_for(lambda: len(recorder.requests) == 2)
        assert (await wait_final(broker, task.id)).status == "failed"
        assert recorder.keys() == [derive(task.id, "submit", 1), derive(task.id, "submit", 2)]
    finally:
        await worker.stop()
        await loop
        await broker.close()
