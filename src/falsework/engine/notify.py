"""Wake-ups: the in-process hub, and what a store's listener must offer.

A wake-up is a hint, the table is the truth: every waiter also polls (slowly
while a listener is connected, fast while it is away), and everyone is woken
once when the listener is lost and again when it reconnects (notifications may
have been missed while it was away). The Postgres listener lives with its
store (``engine/postgres.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from falsework.engine.feed import Feed, Pushed


class Hub:
    """In-process signals: new tasks, cancel requests, new events of a task."""

    def __init__(self) -> None:
        self._task_waiters: set[Callable[[], None]] = set()
        self._cancel_handlers: set[Callable[[str], None]] = set()
        self._event_waiters: dict[str, set[asyncio.Event]] = {}
        self._feeds: set[Feed] = set()
        self._watch_hooks: set[Callable[[], None]] = set()

    # new tasks -------------------------------------------------------------
    def watch_tasks(self, callback: Callable[[], None]) -> None:
        self._task_waiters.add(callback)

    def unwatch_tasks(self, callback: Callable[[], None]) -> None:
        self._task_waiters.discard(callback)

    def new_tasks(self) -> None:
        for callback in list(self._task_waiters):
            callback()

    # cancels -----------------------------------------------------------------
    def on_cancel(self, handler: Callable[[str], None]) -> None:
        self._cancel_handlers.add(handler)

    def off_cancel(self, handler: Callable[[str], None]) -> None:
        self._cancel_handlers.discard(handler)

    def cancel(self, task_id: str) -> None:
        for handler in list(self._cancel_handlers):
            handler(task_id)

    # events ------------------------------------------------------------------
    def watch_events(self, task_id: str, waiter: asyncio.Event) -> None:
        self._event_waiters.setdefault(task_id, set()).add(waiter)
        self.watch_started()

    def on_watch(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` whenever someone here starts waiting for events (the
        Postgres listener then makes sure writers carry events whole)."""
        self._watch_hooks.add(hook)

    def off_watch(self, hook: Callable[[], None]) -> None:
        self._watch_hooks.discard(hook)

    def watch_started(self) -> None:
        for hook in list(self._watch_hooks):
            hook()

    def unwatch_events(self, task_id: str, waiter: asyncio.Event) -> None:
        waiters = self._event_waiters.get(task_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._event_waiters[task_id]

    def add_feed(self, feed: Feed) -> None:
        self._feeds.add(feed)

    def remove_feed(self, feed: Feed) -> None:
        self._feeds.discard(feed)

    def watching(self) -> bool:
        """Whether anyone in this process waits for events (a worker process
        streams nothing: it need not even parse what a notification carries)."""
        return bool(self._event_waiters) or any(feed.subscriptions for feed in self._feeds)

    def events(self, task_ids: list[str] | set[str]) -> None:
        """New events of ``task_ids`` (to be read)."""
        for task_id in task_ids:
            for waiter in self._event_waiters.get(task_id, ()):
                waiter.set()
        for feed in self._feeds:
            feed.notified(task_ids)

    def pushed(self, items: list[Pushed]) -> None:
        """New events carried whole by a notification (``feed.Pushed``)."""
        for item in items:
            for waiter in self._event_waiters.get(item.task_id, ()):
                waiter.set()
        for feed in self._feeds:
            feed.pushed(items)

    def any_events(self) -> None:
        """New events of tasks not named (a notification that could not be
        decoded): every waiter and subscription reads."""
        for waiters in self._event_waiters.values():
            for waiter in waiters:
                waiter.set()
        for feed in self._feeds:
            feed.read_all()

    def wake_all(self) -> None:
        self.new_tasks()
        for waiters in self._event_waiters.values():
            for waiter in waiters:
                waiter.set()
        for feed in self._feeds:
            feed.wake_all()


_SHARED: dict[str, Hub] = {}


def shared_hub(key: str) -> Hub:
    """One hub per database per process, for stores without a listener, so brokers
    on one SQLite file see each other's writes at once."""
    return _SHARED.setdefault(key, Hub())


class Listener(Protocol):
    """A connection that turns other processes' notifications into ``Hub`` calls.

    ``run`` returns or raises when the connection is lost; the broker's supervisor
    starts it again with backoff, and on (re)connect it wakes every waiter.
    """

    @property
    def connected(self) -> asyncio.Event: ...

    @property
    def connects(self) -> int: ...

    @property
    def backend_pid(self) -> int | None: ...

    @property
    def streaming(self) -> asyncio.Event:
        """Set while writers know this process streams (they carry events whole)."""
        ...

    async def run(self) -> None: ...


class Silence:
    """When a listener must ask the server whether its link still works.

    A link that drops silently (a partition, a frozen peer) never ends the
    connection by itself, so a listener asks (``SELECT 1``) once it has heard
    nothing for ``keepalive`` seconds. Anything the server sent counts as word
    from it: while notifications flow, the link is shown to work without a
    question, and a busy listener sends none (each one was a round trip, and a
    backend woken, every ``keepalive`` seconds in every process)."""

    def __init__(self, keepalive: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.keepalive = keepalive
        self._clock = clock
        self._heard = clock()

    def heard(self) -> None:
        """The server said something (a notification, an answer)."""
        self._heard = self._clock()

    def left(self) -> float:
        """Seconds until a question is due (0 or less: ask now)."""
        return self._heard + self.keepalive - self._clock()
