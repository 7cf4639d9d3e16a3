"""Fixtures of the engine tests: short timings, a broker and a store on each dialect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from falsework.config import Settings
from falsework.engine import Broker, TaskWorker
from falsework.engine.factory import open_store
from falsework.engine.models import TaskRow
from falsework.engine.store import Store
from falsework.runner import as_executor
from falsework.taskio import TaskInput, TaskIO
from falsework.wiring import broker_options, worker_options

FAST = {
    "heartbeat_interval": 0.2,
    "stale_timeout": 2.0,
    "poll_interval": 0.2,
    "max_poll_interval": 0.5,
    "max_claim_delay": 0.01,
    "janitor_interval": 0.3,
    "shutdown_grace": 2.0,
    "concurrency": 20,
}

RunFunction = Callable[[TaskInput, TaskIO], Awaitable[Any]]


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", **FAST, **overrides}
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


async def open_broker(url: str, settings: Settings) -> Broker:
    """A broker on ``url`` with the options ``settings`` give (as the edges build it)."""
    return await Broker.open(url, broker_options(settings))


def make_worker(broker: Broker, run: RunFunction, settings: Settings) -> TaskWorker:
    """A worker running ``run`` (output or raise, like the workflow runner) with
    the runner's words for its outcome."""
    return TaskWorker(broker, as_executor(run), worker_options(settings))


@pytest.fixture
async def pg_pair(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[Broker, Broker]]:
    """A broker that streams and another that writes, on one Postgres database:
    the streaming one's safety-net poll is slow (600 s) while its listener is
    up, so what reaches it within a test came by NOTIFY."""
    settings = make_settings(poll_interval=0.05, max_poll_interval=600.0)
    node = await open_broker(postgres_url, settings)
    writer = await open_broker(postgres_url, settings)
    try:
        assert node.listener is not None
        await asyncio.wait_for(node.listener.connected.wait(), 10)
        yield node, writer
    finally:
        await writer.close()
        await node.close()


@pytest.fixture
async def broker(database_url: str, settings: Settings) -> AsyncIterator[Broker]:
    b = await open_broker(database_url, settings)
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()


async def wait_final(broker: Broker, task_id: str, within: float = 15.0) -> Any:
    """Follow the task's events until its final one; return the task."""
    import asyncio

    async def follow() -> None:
        async for _ in broker.subscribe(task_id):
            pass

    await asyncio.wait_for(follow(), within)
    return await broker.get(task_id)


async def wait_for(predicate: Callable[[], Any], within: float = 10.0) -> None:
    """Poll an async or sync predicate until it is true."""
    import asyncio
    import inspect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def task_rows(numbers: range) -> list[TaskRow]:
    """Open tasks as ``Store.tasks_insert`` takes them, numbered in their ids
    (so sorting the ids sorts the numbers) and specs."""
    return [
        TaskRow(
            id=f"00000000-0000-4000-8000-{i:012d}",
            spec=f'{{"n": {i}}}',
            sealed_secrets=None,
            created_by=None,
            priority=0,
            run_after=None,
            recovery="resume",
            idempotency_key=None,
        )
        for i in numbers
    ]
