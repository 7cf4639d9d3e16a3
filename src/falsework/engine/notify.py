"""Wake-ups: the in-process hub, and the Postgres LISTEN connection that feeds it.

A wake-up is a hint, the table is the truth: every waiter also polls (slowly
while the listener is connected, fast while it is away), and everyone is woken
once when the listener is lost and again when it reconnects (notifications may
have been missed while it was away).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from falsework.engine.store import CHANNEL_CANCEL, CHANNEL_EVENTS, CHANNEL_TASKS

log = logging.getLogger("falsework.engine")


class Hub:
    """In-process signals: new tasks, cancel requests, new events of a task."""

    def __init__(self) -> None:
        self._task_waiters: set[Callable[[], None]] = set()
        self._cancel_handlers: set[Callable[[str], None]] = set()
        self._event_waiters: dict[str, set[asyncio.Event]] = {}

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

    def unwatch_events(self, task_id: str, waiter: asyncio.Event) -> None:
        waiters = self._event_waiters.get(task_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._event_waiters[task_id]

    def events(self, task_ids: list[str] | set[str]) -> None:
        for task_id in task_ids:
            for waiter in self._event_waiters.get(task_id, ()):
                waiter.set()

    def wake_all(self) -> None:
        self.new_tasks()
        for waiters in self._event_waiters.values():
            for waiter in waiters:
                waiter.set()


_SHARED: dict[str, Hub] = {}


def shared_hub(key: str) -> Hub:
    """One hub per SQLite database per process, so brokers on one file see each other."""
    return _SHARED.setdefault(key, Hub())


class Listener:
    """A dedicated asyncpg connection LISTENing on the engine's channels.

    ``run`` returns (or raises) when the connection is lost; the supervisor starts
    it again with backoff, and on connect it wakes every waiter.
    """

    CHANNELS = (CHANNEL_TASKS, CHANNEL_CANCEL, CHANNEL_EVENTS)

    def __init__(self, dsn: str, hub: Hub, *, keepalive: float = 2.0) -> None:
        self._dsn = dsn
        self._hub = hub
        self._keepalive = keepalive
        self.connected = asyncio.Event()
        self.backend_pid: int | None = None
        self.connects = 0

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        if channel == CHANNEL_TASKS:
            self._hub.new_tasks()
        elif channel == CHANNEL_CANCEL:
            self._hub.cancel(payload)
        elif channel == CHANNEL_EVENTS:
            self._hub.events(payload.split(","))

    async def run(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, timeout=10, server_settings={"application_name": "falsework-listener"}
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            for channel in self.CHANNELS:
                await conn.add_listener(channel, self._dispatch)
            self.backend_pid = conn.get_server_pid()
            self.connects += 1
            self.connected.set()
            if self.connects > 1:
                log.info("listener reconnected")
            self._hub.wake_all()
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), timeout=self._keepalive)
                except TimeoutError:
                    # A silent network drop never fires the termination listener.
                    await asyncio.wait_for(conn.execute("SELECT 1"), timeout=self._keepalive)
            raise ConnectionError("listener connection lost")
        finally:
            self.connected.clear()
            if not conn.is_closed():
                conn.terminate()
            # Waiters sleeping on the slow poll of a healthy listener re-read now
            # and poll fast until it is back (see Broker.event_poll_interval).
            self._hub.wake_all()
