"""Group commit of task creation: concurrent POSTs share one INSERT.

Each ``POST /v2/tasks`` would otherwise be one transaction; on SQLite every
commit waits for the disk, so creates serialise behind each other. Requests that
arrive while a batch is being written wait for the next one, which takes all of
them at once: a lone request is written immediately, a burst in a few statements.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from falsework.engine import NewTask


class BulkCreator(Protocol):
    async def create_many(self, items: list[NewTask]) -> list[str]: ...


class CreateBatcher:
    def __init__(self, broker: BulkCreator, *, max_batch: int = 500) -> None:
        self._broker = broker
        self._max_batch = max_batch
        self._pending: list[tuple[NewTask, asyncio.Future[str]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def create(self, item: NewTask) -> str:
        """The id of the new task (or of the task that already has its key)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="falsework-create-batch")
        return await future

    async def _write(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                ids = await self._broker.create_many([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if future.done():
                        continue
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:  # the writer itself is cancelled: so are its requests
                        future.cancel()
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), task_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(task_id)

    async def close(self) -> None:
        """Stop writing; requests not yet written are cancelled, not left waiting."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        pending, self._pending = self._pending, []
        for _, future in pending:
            future.cancel()
