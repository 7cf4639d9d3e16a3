"""Group reads of events: the subscribers one NOTIFY batch wakes read together.

A worker's flush writes the events of many tasks at once and notifies their ids
in one message; every process streaming those tasks wakes one subscriber per
task. Each asks for its task's events after its cursor; the requests made in the
same turn of the event loop go to the database as one statement
(``Store.events_after_many``, one per 500 tasks, up to four side by side)
instead of one read each. Like the batcher's group
commit, but for reads: a lone request still goes out on the next turn. The
check that a task is over (its status, once its final event was read) is
grouped the same way (``Store.tasks_status``): a burst of completions is one
statement, not one query per stream queued for the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from falsework.engine.models import Event
from falsework.engine.store import Store

# Keys per statement: the statement's argument and plan stay small.
MAX_PAIRS = 500
# Statements of one group in flight at once: a burst of thousands of streams
# reads its chunks side by side (the database has more than one core), without
# taking the whole pool from the process's other requests.
MAX_PARALLEL = 4

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Group(Generic[K, V]):
    """Requests made in one turn of the loop, answered by one ``fetch`` call
    (per ``MAX_PAIRS`` keys) that returns the answers in the keys' order."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[Sequence[V]]], name: str) -> None:
        self._fetch = fetch
        self._name = name
        self._pending: dict[K, asyncio.Future[V]] = {}
        self._scheduled = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_PARALLEL)

    async def get(self, key: K) -> V:
        future = self._pending.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            # a reader that gave up leaves nobody to look at a failure: look here
            future.add_done_callback(_retrieve)
            self._pending[key] = future
            if not self._scheduled:
                self._scheduled = True
                task = asyncio.create_task(self._flush(), name=self._name)
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
        chunks = [keys[start : start + MAX_PAIRS] for start in range(0, len(keys), MAX_PAIRS)]
        if len(chunks) == 1:
            await self._answer(chunks[0], pending)
        else:
            await asyncio.gather(*(self._answer(chunk, pending) for chunk in chunks))

    async def _answer(self, chunk: list[K], pending: dict[K, asyncio.Future[V]]) -> None:
        """One statement for ``chunk``; its answers (or its error) to its futures."""
        try:
            async with self._slots:
                answers = await self._fetch(chunk)
        except BaseException as exc:
            for key in chunk:
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
        for key, answer in zip(chunk, answers, strict=True):
            future = pending[key]
            if not future.done():
                future.set_result(answer)

    async def close(self) -> None:
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)


class EventReads:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._events: _Group[tuple[str, int], list[Event]] = _Group(
            self._fetch_events, "falsework-event-reads"
        )
        self._statuses: _Group[str, str | None] = _Group(self._fetch_statuses, "falsework-statuses")

    async def read(self, task_id: str, after: int) -> list[Event]:
        """The events of ``task_id`` after ``after`` (at most 1,000), in id order."""
        return await self._events.get((task_id, after))

    async def status(self, task_id: str) -> str | None:
        """The task's status (``None`` when there is no such task)."""
        return await self._statuses.get(task_id)

    async def _fetch_events(self, wanted: list[tuple[str, int]]) -> list[list[Event]]:
        return await self._store.events_after_many(wanted)

    async def _fetch_statuses(self, task_ids: list[str]) -> list[str | None]:
        found = await self._store.tasks_status(task_ids)
        return [found.get(task_id) for task_id in task_ids]

    async def close(self) -> None:
        await self._events.close()
        await self._statuses.close()


def _retrieve(future: asyncio.Future[V]) -> None:
    if not future.cancelled():
        future.exception()
