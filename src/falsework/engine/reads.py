"""Group reads of events: the subscribers one NOTIFY batch wakes read together.

A worker's flush writes the events of many tasks at once and notifies their ids
in one message; every process streaming those tasks wakes one subscriber per
task. Each asks for its task's events after its cursor; the requests made in the
same turn of the event loop go to the database as one statement
(``Store.events_after_many``) instead of one read each. Like the batcher's group
commit, but for reads: a lone request still goes out on the next turn.
"""

from __future__ import annotations

import asyncio

from falsework.engine.models import Event
from falsework.engine.store import Store

# Pairs per statement: the statement's JSON argument and plan stay small.
MAX_PAIRS = 500


class EventReads:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[tuple[str, int], asyncio.Future[list[Event]]] = {}
        self._scheduled = False
        self._inflight: set[asyncio.Task[None]] = set()

    async def read(self, task_id: str, after: int) -> list[Event]:
        """The events of ``task_id`` after ``after`` (at most 1,000), in id order."""
        key = (task_id, after)
        future = self._pending.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            # a reader that gave up leaves nobody to look at a failure: look here
            future.add_done_callback(_retrieve)
            self._pending[key] = future
            if not self._scheduled:
                self._scheduled = True
                task = asyncio.create_task(self._flush(), name="falsework-event-reads")
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
        # shielded: one reader giving up does not cancel the read others share
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        # Runs one turn after the first request: every subscriber woken by the
        # same notification has asked by now.
        self._scheduled = False
        pending, self._pending = self._pending, {}
        keys = list(pending)
        for start in range(0, len(keys), MAX_PAIRS):
            chunk = keys[start : start + MAX_PAIRS]
            try:
                pages = await self._store.events_after_many(chunk)
            except BaseException as exc:
                for key in keys[start:]:
                    future = pending[key]
                    if future.done():
                        continue
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:
                        future.cancel()
                if not isinstance(exc, Exception):
                    raise
                return
            for key, page in zip(chunk, pages, strict=True):
                future = pending[key]
                if not future.done():
                    future.set_result(page)

    async def close(self) -> None:
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)


def _retrieve(future: asyncio.Future[list[Event]]) -> None:
    if not future.cancelled():
        future.exception()
