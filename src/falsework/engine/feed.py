"""One reader of events per process: every subscription fed from it, in memory.

A subscription (``Broker.subscribe``) is a cursor and a buffer. It never reads
the database itself: the process's ``Feed`` does, for all of them at once.

- A notification that carries a task's new events whole (Postgres: a worker's
  flush puts small events inside the NOTIFY payload, with the id of the task's
  event before them, ``Pushed.prev``) is appended to each subscription of that
  task whose cursor is exactly ``prev``: no read at all.
- Anything else (a notification with ids only, a payload that does not follow a
  subscription's cursor, a subscription that just joined, the safety-net poll,
  the listener lost or back) marks the subscription *stale*; the stale ones are
  read together, one statement per 500 (task, cursor) pairs
  (``Store.events_after_many``), on the next turn of the event loop.

Each subscription keeps its own cursor, so it stays exact: a read returns a
task's events after the cursor in id order (one task's events commit in id
order: its writers hold the task's row lock), and only events after the cursor
are appended. A pushed payload that follows a subscription's cursor is appended
even while a read is asked for or in flight (the read then appends only what
comes after it); one that does not asks for one more read. A
subscription whose consumer falls behind (more than ``MAX_BUFFER`` events
waiting) drops its buffer, goes back to what the consumer has taken, and reads
again when the consumer asks: memory per subscription is bounded and a slow one
holds nobody else up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from falsework.engine.models import FINAL_STATUSES, Event
from falsework.engine.notify import Hub
from falsework.engine.store import Store

log = logging.getLogger("falsework.engine")

# Pairs per statement, and statements of one read in flight at once (as reads.py).
MAX_PAIRS = 500
MAX_PARALLEL = 4
# Events one read returns per task (Store.events_after_many's default limit).
PAGE = 1000
# Events a subscription holds for a consumer that has not taken them.
MAX_BUFFER = 5000


@dataclass(slots=True)
class Pushed:
    """A task's new events from one write, as its notification carried them."""

    task_id: str
    prev: int  # the id of the task's event before ``events[0]`` (0: none)
    status: str  # the task's status once the write committed
    events: list[Event]


# The wire format of the ``falsework_events`` channel (Postgres). The writers are
# SQL (``sql/postgres.sql``: ``batch_write``'s ``carried``/``note_events`` for a
# worker's flush, ``event_append``) and ``PostgresStore`` (``task_notify`` after a
# cancel or a recovery); this module is the one reader. A payload is either
# - task ids joined by ``,``: those tasks have new events, read them; or
# - a JSON array whose items are ``[task id]`` (new events too long to carry, or,
#   from a writer older than this reader, written while no process streamed:
#   read them) or
#   ``[task id, prev, status, recovery, created_at, events]``: the task's new
#   events whole, ``prev`` the id of its event before them (0: none),
#   ``status`` the task's status once the write committed, ``recovery`` its
#   template's recovery (``"none"``: not recoverable), ``created_at`` the events'
#   ``created_at`` in µs since the epoch, ``events`` ``[[id, type, body], ...]``
#   in id order.
# Anything else (a payload cut short, or from a sender that is not ours) cannot
# say whose events are new: every subscription reads.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def carried_events(payload: str) -> tuple[list[Pushed], list[str]]:
    """A JSON payload of ``falsework_events``: the events it carries whole, and
    the ids of the tasks whose new events it does not carry. ``ValueError`` when
    it does not follow the format."""
    pushed: list[Pushed] = []
    ids: list[str] = []
    try:
        for part in json.loads(payload):
            if len(part) == 1:
                if not isinstance(part[0], str):
                    raise TypeError("a task id is text")
                ids.append(part[0])
                continue
            task_id, prev, status, recovery, micros, events = part
            created_at = _EPOCH + timedelta(microseconds=micros)
            recoverable = recovery != "none"
            carried = [
                Event(
                    id=event_id,
                    task_id=task_id,
                    type=event_type,
                    body=body,
                    created_at=created_at,
                    is_task_recoverable=recoverable,
                )
                for event_id, event_type, body in events
            ]
            # what the feed compares and looks up must be what it expects
            if not isinstance(task_id, str) or not isinstance(status, str):
                raise TypeError("a task id and a status are text")
            if not all(isinstance(n, int) for n in (prev, *(e.id for e in carried))):
                raise TypeError("event ids are integers")
            pushed.append(Pushed(task_id, prev, status, carried))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        raise ValueError(f"not a falsework_events payload: {exc}") from exc
    return pushed, ids


class Throttle:
    """Lets one log line through per ``every`` seconds; :meth:`allow` answers how
    many it held back since the last one let through, or None to hold this one."""

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.next_at = float("-inf")
        self.held = 0

    def allow(self) -> int | None:
        now = self.clock()
        if now < self.next_at:
            self.held += 1
            return None
        self.next_at = now + self.every
        held, self.held = self.held, 0
        return held


# Anyone who may NOTIFY on the database can send the channel what is not a payload
# (a broken or hostile peer, thousands a second): each still makes every stream
# read, but the log gets one warning a minute, saying how many it left out.
_bad_payloads = Throttle(60.0)


def deliver(hub: Hub, payload: str) -> None:
    """Hand one ``falsework_events`` payload to ``hub`` (called by the listener,
    inside the driver's callback: it must not raise)."""
    if not hub.watching():
        return  # nobody streams in this process (a worker): not even decoded
    if not payload.startswith("["):
        hub.events(payload.split(","))
        return
    try:
        pushed, ids = carried_events(payload)
    except ValueError as exc:
        held = _bad_payloads.allow()
        if held is not None:
            more = f" ({held} more since the last warning)" if held else ""
            log.warning("%s; every stream reads%s", exc, more)
        hub.any_events()
        return
    if pushed:
        hub.pushed(pushed)
    if ids:
        hub.events(ids)


class Inbox:
    """The listener's ``falsework_events`` payloads, handed to the hub one per turn
    of the event loop.

    A worker's flush commits its notifications together (about 40 events each), so
    they reach the listener in one read, and the driver calls back for each of
    them in one turn. Delivered there and then, every notification was decoded
    before the first stream's events were framed, and every stream framed before
    the first was written: each event waited for about half of the whole flush's
    work. One per turn, each notification's streams go out while the next ones
    are still waiting: the callbacks its delivery schedules (the subscriptions'
    consumers, the watchers they wake) are queued ahead of the next delivery, and
    the oldest notification's writes come first in every turn (issue 17).
    The order of the notifications is kept; what one does to the feed is as
    before (``deliver``)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._payloads: deque[str] = deque()
        self._scheduled = False

    # Payloads kept at most. Anyone who may NOTIFY on the database can send faster
    # than one a turn; past this the kept ones are dropped and every stream reads
    # from its own cursor instead (exact, as after a lost notification), so memory
    # stays bounded whatever arrives.
    LIMIT = 10_000

    def put(self, payload: str) -> None:
        """One payload, in the order the listener heard them."""
        if not self._hub.watching():
            return  # nobody streams in this process (a worker): not even kept
        if len(self._payloads) >= self.LIMIT:
            self._payloads.clear()
            self._hub.any_events()
            return
        self._payloads.append(payload)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._next)

    def __len__(self) -> int:
        return len(self._payloads)

    def _next(self) -> None:
        try:
            deliver(self._hub, self._payloads.popleft())
        finally:
            if self._payloads:
                asyncio.get_running_loop().call_soon(self._next)
            else:
                self._scheduled = False


class Subscription:
    """A task's events after a cursor, buffered for one consumer."""

    def __init__(self, feed: Feed, task_id: str, after: int) -> None:
        self.feed = feed
        self.task_id = task_id
        self.cursor = after  # the last event buffered (or taken)
        self.taken = after  # the last event the consumer took
        self.buffer: list[Event] = []
        # The id of the task's final event, once a payload said the write that
        # carried it ended the task; None while unknown.
        self.final_at: int | None = None
        self.stale = False  # a read is wanted
        self.reading = False  # a read is in flight
        self.behind = False  # the buffer overflowed: read again when taken
        self.first_read = False  # the read made on joining has answered
        self.ticked = False  # the safety-net poll came by
        self.heard = False  # events were appended since the poll came by
        self.error: Exception | None = None
        self.changed = asyncio.Event()

    def apply(self, events: Iterable[Event]) -> None:
        """Append what follows the cursor of ``events`` (a task's events in id
        order with none missing after some point at or before the cursor)."""
        held = len(self.buffer)
        for event in events:
            if event.id > self.cursor:
                self.buffer.append(event)
                self.cursor = event.id
        added = len(self.buffer) > held
        # an empty buffer takes one answer whole (a read's page, a payload)
        if held and len(self.buffer) > MAX_BUFFER:
            self.buffer.clear()
            self.cursor = self.taken
            self.behind = True
        if added:
            self.heard = True
            self.changed.set()

    def drain(self) -> list[Event]:
        out, self.buffer = self.buffer, []
        if out:
            self.taken = out[-1].id
        return out

    @property
    def over(self) -> bool:
        """Everything up to the task's final event has been taken."""
        return self.final_at is not None and self.taken >= self.final_at and not self.buffer

    async def take(self) -> list[Event] | None:
        """The buffered events (at once if any); else wait for some, or for the
        first read's answer (``[]``); ``None`` at the feed's safety-net poll (no
        timer of its own: one per wait per stream cost more than the poll).
        A failed read raises here."""
        while True:
            if self.error is not None:
                error, self.error = self.error, None
                raise error
            if self.buffer:
                return self.drain()
            if self.behind:
                self.behind = False
                self.feed.mark(self)
            if self.first_read:
                self.first_read = False
                return []
            if self.over:
                return []
            if self.ticked:
                self.ticked = False
                return None
            self.changed.clear()
            await self.changed.wait()


class Feed:
    """The process's one reader for every subscription of a broker."""

    def __init__(self, store: Store, poll_interval: Callable[[], float]) -> None:
        self._store = store
        self._poll_interval = poll_interval
        self._subs: dict[str, set[Subscription]] = {}
        self._stale: set[Subscription] = set()
        self._scheduled = False
        self._slots = asyncio.Semaphore(MAX_PARALLEL)
        self._inflight: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        # joined and not yet answered: their first read's answer wakes them even
        # when it is empty (the consumer then asks whether the task is over)
        self._first: set[Subscription] = set()
        self.reads = 0  # statements sent (for tests and metrics)

    # subscriptions ----------------------------------------------------------
    def join(self, task_id: str, after: int) -> Subscription:
        sub = Subscription(self, task_id, after)
        self._subs.setdefault(task_id, set()).add(sub)
        self.mark(sub, first=True)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="falsework-feed-poll")
        return sub

    def leave(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.task_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.task_id]
        self._stale.discard(sub)
        self._first.discard(sub)

    @property
    def subscriptions(self) -> int:
        """The tasks with a subscription (0: nobody to feed)."""
        return len(self._subs)

    # what the hub tells -------------------------------------------------------
    def notified(self, task_ids: Iterable[str]) -> None:
        """New events of ``task_ids``, not carried: their subscriptions read."""
        for task_id in task_ids:
            for sub in self._subs.get(task_id, ()):
                self.mark(sub)

    def pushed(self, items: Iterable[Pushed]) -> None:
        """New events carried whole: appended where they follow the cursor."""
        for item in items:
            subs = self._subs.get(item.task_id)
            if not subs or not item.events:
                continue
            last = item.events[-1].id
            final = item.status in FINAL_STATUSES
            for sub in subs:
                if final:
                    sub.final_at = last
                if sub.behind:
                    continue  # reads again once its consumer catches up
                if sub.cursor == item.prev:
                    # They follow the cursor, so they go in even with a read
                    # asked for or under way (the safety-net poll marks every
                    # subscription): the read's answer appends only what is
                    # after the cursor then, a run of the same events.
                    sub.apply(item.events)
                elif sub.cursor >= last:
                    if final:
                        sub.changed.set()  # may be over now
                else:
                    # a gap (a notification lost or not carried), or events a
                    # read under way is still to bring: one more read after it
                    self.mark(sub)

    def wake_all(self) -> None:
        """Notifications may have been missed (the listener lost, or back):
        every subscription reads, and the poll starts over at the interval
        that holds now (fast while the listener is away)."""
        self.read_all()
        if self._poller is not None and not self._poller.done():
            self._poller.cancel()
            self._poller = asyncio.create_task(self._poll(), name="falsework-feed-poll")

    def read_all(self) -> None:
        """Every subscription reads (its task may have new events)."""
        for subs in self._subs.values():
            for sub in subs:
                self.mark(sub)

    # reads ---------------------------------------------------------------------
    def mark(self, sub: Subscription, *, first: bool = False) -> None:
        if sub.behind:
            return  # reads again once its consumer catches up (Subscription.take)
        sub.stale = True
        if first:
            sub.first_read = False
            self._first.add(sub)
        self._stale.add(sub)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start_read)

    def _start_read(self) -> None:
        self._scheduled = False
        subs = [s for s in self._stale if not s.reading and not s.behind]
        self._stale = {s for s in self._stale if s.reading}  # asked again meanwhile
        if not subs:
            return
        for sub in subs:
            sub.stale = False
            sub.reading = True
        task = asyncio.create_task(self._read(subs), name="falsework-feed-read")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _read(self, subs: list[Subscription]) -> None:
        cursors = [(sub, sub.cursor) for sub in subs]
        # subscriptions of one task at one cursor share their pair
        pairs = list(dict.fromkeys((sub.task_id, cursor) for sub, cursor in cursors))
        chunks = [pairs[i : i + MAX_PAIRS] for i in range(0, len(pairs), MAX_PAIRS)]
        answers: dict[tuple[str, int], list[Event] | Exception] = {}

        async def one(chunk: list[tuple[str, int]]) -> None:
            try:
                async with self._slots:
                    self.reads += 1
                    pages = await self._store.events_after_many(chunk)
            except Exception as exc:
                for pair in chunk:
                    answers[pair] = exc
                return
            for pair, page in zip(chunk, pages, strict=True):
                answers[pair] = page

        try:
            await asyncio.gather(*(one(c) for c in chunks))
        finally:
            for sub, cursor in cursors:
                sub.reading = False
                answer = answers.get((sub.task_id, cursor))
                if sub.stale and sub not in self._stale:
                    self._stale.add(sub)
                if isinstance(answer, Exception):
                    sub.error = answer
                    sub.changed.set()
                elif answer is not None:
                    sub.apply(answer)
                    if len(answer) >= PAGE:
                        sub.stale = True
                        self._stale.add(sub)
                    if sub in self._first:
                        self._first.discard(sub)
                        sub.first_read = True
                        sub.changed.set()
            if self._stale and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._start_read)

    async def _poll(self) -> None:
        """The safety net: one ``poll`` per poll interval."""
        while self._subs:
            await asyncio.sleep(self._poll_interval())
            self.poll()

    def poll(self) -> None:
        """Every subscription reads, and the consumer of one that heard nothing
        since the last poll is told (``take`` answers None: it asks whether the
        task is over). One that did hear is not: its task was alive then, and a
        final write ends its stream by itself; under a burst that question held
        every consumer, and the events arriving meanwhile, for a read of every
        stream's status (issue 17)."""
        self.read_all()
        for subs in self._subs.values():
            for sub in subs:
                if sub.heard:
                    sub.heard = False
                    continue
                sub.ticked = True
                sub.changed.set()

    async def close(self) -> None:
        tasks = list(self._inflight)
        if self._poller is not None:
            tasks.append(self._poller)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
