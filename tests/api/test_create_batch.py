"""The API's group commit of creates, on the real broker (SQLite and Postgres)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from falsework.api.batch import CreateBatcher
from falsework.config import Settings
from falsework.engine import Broker, NewTask

SPEC = {"apiVersion": "scaffolder.backstage.io/v1beta3", "steps": [], "output": {}}


async def test_concurrent_creates_share_writes_and_close_leaves_none_waiting(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    broker = await Broker.open(settings.resolved_database_url, settings)
    try:
        batcher = CreateBatcher(broker)
        ids = await asyncio.gather(*(batcher.create(NewTask(SPEC)) for _ in range(20)))
        assert len(set(ids)) == 20
        assert [(await broker.get(i)).status for i in ids] == ["open"] * 20
        # closed before its writer ran: the waiting request is cancelled, not left hanging
        waiting = asyncio.create_task(batcher.create(NewTask(SPEC)))
        await asyncio.sleep(0)
        await batcher.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 5)
    finally:
        await broker.close()
