"""The write-behind buffer: every worker write, across tasks, in few statements.

Writers append to the pending batch and (except ``event``) await its flush. Up to
``parallel`` flushes run at a time, of disjoint tasks (a task's writes wait for
its flush in flight, so they land in order); whatever arrives meanwhile goes into
the next one, so under load a flush carries the writes of many tasks (group
commit) and an idle worker still flushes at once. Every write is fenced by the
writer's claim token: a refused task gets ``LeaseLostError`` now and on every
later write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from falsework.engine.models import Finish, WriteBatch
from falsework.engine.notify import Hub
from falsework.errors import DatabaseUnavailableError, LeaseLostError, TaskWriteError

log = logging.getLogger("falsework.engine")

# Above this many buffered events, emit() waits for a flush (back-pressure).
HIGH_WATER = 20_000
# The events one flush carries at most: under a burst the buffer goes out as
# several statements one after the other, so the first tasks' events reach the
# streams while the next statement is written (docs/engine.md, "Where a pushed
# event's delay goes"). Whole tasks only: a task's writes never straddle two.
MAX_FLUSH_EVENTS = 1000
# The turns of the event loop that runs finishing together take to land (their
# final writes, then their slots): the worker waits this long before it claims
# the freed slots in one batch (see ``Batcher``'s ``hold``).
SETTLE_TURNS = 3
# Before a refused write is tried once more on a fresh connection.
RETRY_PAUSE = 0.05
# The longest wait between two tries of a flush while the database is away.
MAX_BACKOFF = 1.0


# Writes a batch fenced by its tokens and returns the refused task ids (Broker.write).
Write = Callable[[WriteBatch], Awaitable[set[str]]]


class Batcher:
    def __init__(
        self,
        write: Write,
        hub: Hub,
        on_refused: Callable[[set[str]], None],
        on_failed: Callable[[set[str]], None] | None = None,
        *,
        parallel: int = 1,
        hold: Callable[[], bool] | None = None,
    ) -> None:
        """``hold``: while it answers true (the worker is about to claim), a
        flush waits a turn of the loop at a time, at most ``SETTLE_TURNS`` + 1,
        before it encodes its statement: the claim is then on its way first and
        the encoding overlaps its round trip instead of delaying it. The claim
        and the runs it starts are the worker's critical path; a flush of final
        writes is not, since a finishing run holds no slot."""
        self._write = write
        self._hold = hold
        self._parallel = max(1, parallel)
        self._hub = hub
        self._on_refused = on_refused
        self._on_failed = on_failed
        self._batch = WriteBatch()
        self._futures: list[tuple[str, asyncio.Future[None]]] = []
        self._lost: set[tuple[str, str]] = set()
        self._broken: dict[tuple[str, str], TaskWriteError] = {}
        self._wake = asyncio.Event()
        # set with _wake by the writers, cleared with it by the flusher: a write
        # skips Event.set (a Python call) while the flusher is already woken
        self._woken = False
        self._flushed = asyncio.Event()
        # the tasks of the flushes in flight (each task in one at most)
        self._flying: set[str] = set()
        self._flights: set[asyncio.Task[None]] = set()
        self._crashed: BaseException | None = None

    def _check(self, task_id: str, token: str, *, final: bool = False) -> None:
        if self._lost and (task_id, token) in self._lost:
            raise LeaseLostError(f"Task {task_id} is no longer owned by this worker")
        # A task whose writes the database refused fails at its next write; its
        # final write (the failure, with this error) is still let through.
        if self._broken and not final:
            broken = self._broken.get((task_id, token))
            if broken is not None:
                raise broken
        self._batch.tokens[task_id] = token
        if not self._woken:
            self._woken = True
            self._wake.set()

    def _future(self, task_id: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures.append((task_id, fut))
        return fut

    def broken(self, task_id: str, token: str) -> TaskWriteError | None:
        """Why the database refused this run's writes, if it did."""
        return self._broken.get((task_id, token))

    def forget(self, task_id: str, token: str) -> None:
        self._lost.discard((task_id, token))
        self._broken.pop((task_id, token), None)

    # writes ------------------------------------------------------------------
    def event(self, task_id: str, token: str, type: str, body: str) -> bool:
        """Buffer an event; True when the buffer is past its high water, and the
        writer must wait in :meth:`backpressure` (said here, so the common case
        costs no coroutine and no second call: this runs for every event)."""
        if self._lost or self._broken:
            self._check(task_id, token)
        batch = self._batch
        batch.tokens[task_id] = token
        events = batch.events
        events.append((task_id, token, type, body))
        if not self._woken:
            self._woken = True
            self._wake.set()
        return len(events) > HIGH_WATER

    async def backpressure(self) -> None:
        while len(self._batch.events) > HIGH_WATER:
            self._flushed.clear()
            await self._flushed.wait()

    def step(self, task_id: str, token: str, step_id: str, state: str) -> bool:
        """Buffer a step's state; True past the high water (as :meth:`event`)."""
        self._check(task_id, token)
        self._batch.steps.setdefault(task_id, {})[step_id] = state
        return len(self._batch.events) > HIGH_WATER

    def checkpoint(self, task_id: str, token: str, key: str, value: str) -> asyncio.Future[None]:
        self._check(task_id, token)
        self._batch.checkpoints.setdefault(task_id, {})[key] = value
        return self._future(task_id)

    def finish(self, finish: Finish) -> asyncio.Future[None]:
        self._check(finish.task_id, finish.token, final=True)
        self._batch.finishes.append(finish)
        return self._future(finish.task_id)

    def release(self, task_id: str, token: str) -> asyncio.Future[None]:
        self._check(task_id, token)
        self._batch.releases.append(task_id)
        return self._future(task_id)

    def superseded(self, task_id: str, token: str, body: str) -> None:
        """Record that this run stopped because its lease ended (``body``: the
        marker event's JSON). Never refused here: ``lease.plan_writes`` decides,
        in the writing transaction, whether the marker still goes in (and whether
        the task, still ours, is released with it)."""
        self._batch.tokens[task_id] = token
        self._batch.superseded[task_id] = body
        self._wake.set()

    def pending(self) -> bool:
        return bool(self._batch) or bool(self._futures) or bool(self._flights)

    async def flushed(self) -> None:
        """Wait until everything buffered so far is written."""
        while self.pending():
            self._wake.set()
            self._flushed.clear()
            await self._flushed.wait()

    # the flusher side task ---------------------------------------------------
    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._woken = False
                if self._crashed is not None:
                    crashed, self._crashed = self._crashed, None
                    raise crashed
                while self._batch and self._room():
                    taken = self._take()
                    if taken is None:
                        break  # all that is buffered waits for its tasks' flights
                    self._fly(*taken)
                if not self.pending():
                    self._flushed.set()
        finally:
            # stopped (or dying): the flushes in flight end with it, as a single
            # flush awaited here would
            flights = list(self._flights)
            for flight in flights:
                flight.cancel()
            await asyncio.gather(*flights, return_exceptions=True)

    def _room(self) -> bool:
        """Whether a flush may start now: when none is in flight, or, beside
        those in flight, for a whole flush's worth of events (a backlog): a few
        buffered writes wait for the flush in flight and go out with whatever
        joins them meanwhile, as big a group commit as one flush at a time makes."""
        flights = len(self._flights)
        if not flights:
            return True
        return flights < self._parallel and len(self._batch.events) >= MAX_FLUSH_EVENTS

    def _fly(self, batch: WriteBatch, futures: list[tuple[str, asyncio.Future[None]]]) -> None:
        self._flying.update(batch.tokens)
        flight = asyncio.create_task(self._flush(batch, futures), name="falsework-flush")
        self._flights.add(flight)
        flight.add_done_callback(self._landed)

    def _landed(self, flight: asyncio.Task[None]) -> None:
        self._flights.discard(flight)
        if not flight.cancelled() and flight.exception() is not None:
            # a bug, not the database (``_flush`` answers those): run() raises
            # it, so the supervisor logs it and starts the flusher again
            self._crashed = flight.exception()
        self._wake.set()

    async def _flush(
        self, batch: WriteBatch, futures: list[tuple[str, asyncio.Future[None]]]
    ) -> None:
        failed: dict[str, Exception] = {}
        try:
            if self._hold is not None:
                for _ in range(SETTLE_TURNS + 1):
                    if not self._hold():
                        break
                    await asyncio.sleep(0)
            try:
                refused = await self._apply(batch)
            except Exception as exc:
                # The database refused the batch (not the connection): something
                # in it is at fault.
                refused, failed = await self._isolate(batch, exc)
        finally:
            self._flying.difference_update(batch.tokens)
        for tid in refused - batch.superseded.keys():
            self._lost.add((tid, batch.tokens[tid]))
        for tid, error in failed.items():
            self._broken[(tid, batch.tokens[tid])] = TaskWriteError(
                f"The database refused this task's writes: {error}"
            )
        for tid, fut in futures:
            if fut.done():
                continue
            if tid in failed:
                fut.set_exception(self._broken[(tid, batch.tokens[tid])])
            elif tid in refused:
                fut.set_exception(LeaseLostError(f"Task {tid} is no longer owned by this worker"))
            else:
                fut.set_result(None)
        # in-process subscribers learn at once; other nodes through NOTIFY
        self._hub.events((batch.event_task_ids() - refused - failed.keys()) | set(batch.superseded))
        if batch.releases or batch.superseded:
            self._hub.new_tasks()
        if refused:
            self._on_refused(refused)
        if failed and self._on_failed is not None:
            self._on_failed(set(failed))
        self._flushed.set()

    def _take(self) -> tuple[WriteBatch, list[tuple[str, asyncio.Future[None]]]] | None:
        """The next flush's writes: all that is buffered, or under a burst the
        whole tasks of its first ``MAX_FLUSH_EVENTS`` events (the rest stays
        buffered, ahead of whatever is written meanwhile, for the next flush).
        The writes of a task in a flush in flight stay buffered until it lands
        (None: all of them do)."""
        batch, futures = self._batch, self._futures
        flying = self._flying and not self._flying.isdisjoint(batch.tokens)
        if len(batch.events) <= MAX_FLUSH_EVENTS and not flying:
            self._batch, self._futures = WriteBatch(), []
            return batch, futures
        parts = batch.split()
        now, later = WriteBatch(), WriteBatch()
        events = 0
        # tasks in the order of their first event; those without events go now
        order = list(dict.fromkeys(e[0] for e in batch.events))
        with_events = set(order)
        order += [tid for tid in parts if tid not in with_events]
        for tid in order:
            part = parts[tid]
            if tid not in self._flying and (events < MAX_FLUSH_EVENTS or not part.events):
                now.merge(part)
                events += len(part.events)
            else:
                later.merge(part)
        if not now:
            return None  # nothing was moved: the buffer is left as it was
        self._batch = later
        self._futures = [(tid, f) for tid, f in futures if tid in later.tokens]
        self._wake.set()  # the rest goes out next
        return now, [(tid, f) for tid, f in futures if tid not in later.tokens]

    async def _isolate(
        self, batch: WriteBatch, exc: Exception
    ) -> tuple[set[str], dict[str, Exception]]:
        """Write each task's part of a failed batch alone, so that one task's bad
        write fails that task's writers only (their runs end with the error) and
        every other task's writes land. A part that fails is tried once more (the
        store never reuses a connection that failed mid-transaction, so the second
        try runs on a fresh one) before its task is failed. Returns the refused and
        the failed ids."""
        parts = batch.split() if len(batch.tokens) > 1 else dict.fromkeys(batch.tokens, batch)
        refused: set[str] = set()
        failed: dict[str, Exception] = {}
        for tid, part in parts.items():
            for attempt in (1, 2):
                try:
                    refused |= await self._apply(part)
                    break
                except Exception as part_exc:
                    if attempt == 1:
                        log.warning("write of task %s failed (%s); trying once more", tid, part_exc)
                        await asyncio.sleep(RETRY_PAUSE)
                        continue
                    log.error("could not write the writes of task %s: %s", tid, part_exc)
                    failed[tid] = part_exc
        return refused, failed

    async def _apply(self, batch: WriteBatch) -> set[str]:
        backoff = 0.05
        while True:
            try:
                return await self._write(batch)
            except DatabaseUnavailableError as exc:
                log.warning("database unavailable while flushing (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
