"""``Wake``: the worker loop's one-waiter wake-up flag."""

from __future__ import annotations

import asyncio


class Wake:
    """Cheaper than ``wait_for(Event.wait())``: ``set`` resolves the sleeping
    loop's future directly, so a notify reaches the claim in one turn of the event
    loop (``wait_for`` wraps the wait in a task: two more turns, each running
    whatever else is ready first)."""

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._flag = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self, seconds: float) -> None:
        """Return when set, or after ``seconds``."""
        if self._flag:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _release, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
