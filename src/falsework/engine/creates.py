"""Group commit of task creation: concurrent creates share one INSERT.

Each create would otherwise be one transaction; on SQLite every commit waits
for the disk, so creates serialise behind each other. Creates that arrive while
a batch is being written wait for the next one, which takes all of them at
once: a lone create is written immediately, a burst in a few statements. The
per-user cap on open tasks is enforced inside that statement, so a batch
holding five creates by a user with room for two creates two.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from falsework.engine.models import Inserted

Row = TypeVar("Row")


class CreateBatcher(Generic[Row]):
    """``write`` takes what was submitted meanwhile (rows, or rows with what goes
    with them) and answers what became of each row."""

    def __init__(
        self, write: Callable[[list[Row]], Awaitable[list[Inserted]]], *, max_batch: int = 5000
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[Row, asyncio.Future[Inserted]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, rows: list[Row]) -> list[Inserted]:
        """What became of each row, in order, once written with whatever else is
        waiting (a bulk create costs a future per row, no task)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Inserted]] = [loop.create_future() for _ in rows]
        self._pending.extend(zip(rows, futures, strict=True))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run(), name="falsework-create-batch")
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._write([row for row, _ in batch])
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
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        """Stop writing; creates not yet written are cancelled, not left waiting."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        pending, self._pending = self._pending, []
        for _, future in pending:
            future.cancel()
