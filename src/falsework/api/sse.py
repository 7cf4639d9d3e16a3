"""Live event streams: one shared subscription per task per process, fanned out.

However many clients watch a task, this process holds one ``Broker.subscribe``
for it (a *channel*), keeps the events seen so far, and wakes every watcher when
new ones arrive. A watcher that joins late, or resumes with ``Last-Event-ID``,
reads the history from the channel's memory, not from the database. The channel
ends when the task's final event has been read and goes away with its last
watcher.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from falsework.api.outage import OUTAGES
from falsework.engine.codec import compact_encoder
from falsework.engine.models import Event, iso
from falsework.errors import DatabaseUnavailableError
from falsework.types import JSONObject

log = logging.getLogger("falsework.api.sse")


class EventLike(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def type(self) -> str: ...

    def to_json(self) -> JSONObject: ...


class Subscribable(Protocol):
    def subscribe(self, task_id: str, after: int | None = None) -> AsyncIterator[Any]: ...


# json.dumps with options builds an encoder per call; every event goes through here
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_ENCODE = _ENCODER.encode
_QUOTE = json.encoder.encode_basestring  # a str as _ENCODE writes it (ensure_ascii off)
# The C encoder behind _ENCODE, made once: JSONEncoder.encode makes it anew for
# every dict it writes, a third of what framing an event cost (issue 17, target 2).
# No circular check (an event body is parsed JSON, never circular), so it keeps
# no state between calls. None where the C accelerator is missing: every event
# then takes the general path.
_BODY = compact_encoder(None, allow_nan=_ENCODER.allow_nan)


def frame(event: EventLike) -> bytes:
    """One SSE message: ``event:``, ``data:`` (one line of JSON) and ``id:``."""
    if _BODY is not None and type(event) is Event:
        # the engine's events, written as ``_ENCODE(event.to_json())`` would write
        # them, byte for byte, without building the dict
        created = iso(event.created_at)
        data = (
            f'{{"id":{event.id:d},'
            f'"isTaskRecoverable":{"true" if event.is_task_recoverable else "false"},'
            f'"taskId":{_QUOTE(event.task_id)},"body":{"".join(_BODY(event.body, 0))},'
            f'"type":{_QUOTE(event.type)},'
            f'"createdAt":{"null" if created is None else _QUOTE(created)}}}'
        )
    else:
        data = _ENCODE(event.to_json())
    return f"event: {event.type}\ndata: {data}\nid: {event.id}\n\n".encode()


KEEPALIVE = b": keep-alive\n\n"
# The most events one chunk of a stream carries (a late joiner's history is
# sent in chunks of this many).
MAX_FRAMES_PER_CHUNK = 256
# Seconds a stream whose database went away waits before it reads on.
RESUME_AFTER = 1.0


class _Channel:
    def __init__(self, hub: EventHub, task_id: str) -> None:
        self.hub = hub
        self.task_id = task_id
        self.events: list[Any] = []
        self.frames: list[bytes] = []  # each event framed once, sent to every watcher
        self.ids: list[int] = []
        self.done = False
        self.watchers = 0
        self.changed = asyncio.Event()
        self.waking = False
        self.pump = asyncio.create_task(self._pump(), name=f"sse-channel-{task_id}")

    async def _pump(self) -> None:
        try:
            while True:
                try:
                    await self._follow()
                    return
                except DatabaseUnavailableError as exc:
                    # an outage: one line per outage, and the stream goes on from
                    # the last event read once the database is back
                    OUTAGES.note(f"the event stream of task {self.task_id}", exc)
                    await asyncio.sleep(RESUME_AFTER)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event subscription for task %s failed", self.task_id)
        finally:
            self.done = True
            self._wake()

    async def _follow(self) -> None:
        after = self.ids[-1] if self.ids else None
        async for event in self.hub.broker.subscribe(self.task_id, after):
            self.events.append(event)
            self.frames.append(frame(event))
            self.ids.append(int(event.id))
            # the events one read or notification brought wake the watchers
            # once, on the next turn (they run no sooner anyway)
            if not self.waking:
                self.waking = True
                asyncio.get_running_loop().call_soon(self._wake_soon)

    def _wake_soon(self) -> None:
        self.waking = False
        self._wake()

    def _wake(self) -> None:
        # Each wake-up replaces the Event, so a watcher that grabbed the old one
        # is released exactly once, and later waiters wait for the next change.
        old, self.changed = self.changed, asyncio.Event()
        old.set()


class EventHub:
    """Fan-out of ``Broker.subscribe`` to any number of local watchers."""

    def __init__(self, broker: Subscribable, *, keepalive: float = 15.0) -> None:
        self.broker = broker
        self.keepalive = keepalive
        self._channels: dict[str, _Channel] = {}
        self.closing = False

    def _join(self, task_id: str) -> _Channel:
        channel = self._channels.get(task_id)
        # A finished channel is not reused: the task may have been retried since,
        # and a new subscription reads its new events.
        if channel is None or channel.done or self.closing:
            channel = _Channel(self, task_id)
            self._channels[task_id] = channel
        channel.watchers += 1
        return channel

    def _leave(self, channel: _Channel) -> None:
        channel.watchers -= 1
        if channel.watchers <= 0:
            if self._channels.get(channel.task_id) is channel:
                del self._channels[channel.task_id]
            channel.pump.cancel()

    async def watch(self, task_id: str, after: int | None = None) -> AsyncIterator[bytes]:
        """Every event of a task with id > ``after`` as an SSE frame, in order,
        then the end; a keep-alive comment after ``self.keepalive`` idle seconds."""
        channel = self._join(task_id)
        try:
            sent = after
            while True:
                # The channel may still be loading history: find our place each time.
                position = bisect.bisect_right(channel.ids, sent) if sent is not None else 0
                while position < len(channel.frames):
                    # Whatever arrived since the last send goes out as one chunk:
                    # a burst of events costs a watcher one send, not one each.
                    end = min(len(channel.frames), position + MAX_FRAMES_PER_CHUNK)
                    yield b"".join(channel.frames[position:end])
                    sent = channel.ids[end - 1]
                    position = end
                if channel.done or self.closing:
                    return
                changed = channel.changed
                try:
                    async with asyncio.timeout(self.keepalive):
                        await changed.wait()
                except TimeoutError:
                    yield KEEPALIVE
        finally:
            self._leave(channel)

    async def wait(self, task_id: str, after: int | None, within: float) -> list[Any]:
        """Events after ``after`` at once if there are any, else the first new
        ones within ``within`` seconds, else ``[]`` (also when the task is over)."""
        channel = self._join(task_id)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + within
            while True:
                position = bisect.bisect_right(channel.ids, after) if after is not None else 0
                if position < len(channel.events):
                    return list(channel.events[position:])
                remaining = deadline - loop.time()
                if channel.done or remaining <= 0:
                    return []
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await channel.changed.wait()
        finally:
            self._leave(channel)

    @property
    def channels(self) -> int:
        return len(self._channels)

    def end_streams(self) -> None:
        """End every open stream now (the server is shutting down): clients
        reconnect, with Last-Event-ID, to a node that stays up."""
        self.closing = True
        for channel in list(self._channels.values()):
            channel.pump.cancel()
            channel.done = True
            channel._wake()

    async def close(self) -> None:
        """End every stream and wait for the subscriptions to stop."""
        self.end_streams()
        for channel in list(self._channels.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await channel.pump
        self._channels.clear()
