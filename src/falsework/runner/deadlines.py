"""Step timeouts on one timer per event loop.

Each step runs under an ``asyncio.timeout``. With a timer per step, 10,000
waiting tasks held 10,000 loop timers (a timer handle, its copy of the context,
uvloop's own timer: about 700 bytes each) beside their actions' own. Here a
step's timeout is entered with no deadline and its deadline kept in one heap per
loop; one timer waits for the earliest, and when a deadline passes its scope is
handed back to asyncio (``Timeout.reschedule`` to now), which cancels the step
and raises ``TimeoutError`` exactly as ``asyncio.timeout(delay)`` would.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import weakref
from typing import Any

# Deadlines this close are due (uvloop's clock counts milliseconds, and asyncio
# runs a timer that early too): re-arming for them would spin.
_DUE = 0.001
# A heap this large, of which over half are steps that ended, is rebuilt.
_COMPACT_FROM = 64


class Deadlines:
    """The steps' deadlines of one event loop. Use only on its thread."""

    __slots__ = ("_arming", "_dead", "_heap", "_order", "_timer", "_timer_at")

    def __init__(self) -> None:
        # [when, order, scope]; scope None once its step ended or it fired
        self._heap: list[list[Any]] = []
        self._order = itertools.count()
        self._dead = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._arming = False  # a turn of the loop will set the timer

    def __len__(self) -> int:
        return len(self._heap) - self._dead

    def add(self, delay: float, scope: asyncio.Timeout) -> list[Any]:
        """Time ``scope`` (entered, with no deadline of its own) out after
        ``delay`` seconds; give the entry back to :meth:`discard`."""
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        entry = [when, next(self._order), scope]
        heapq.heappush(self._heap, entry)
        if (
            not self._arming
            and self._heap[0] is entry
            and (self._timer is None or when < self._timer_at)
        ):
            # The timer is set at the loop's next turn, for the earliest deadline
            # then: a step that ends before it (one that never waits, such as a
            # log step) costs no loop timer, and all the steps that start in one
            # turn cost one callback. Deadlines are absolute: none fires late.
            self._arming = True
            loop.call_soon(self._arm_soon)
        return entry

    def _arm_soon(self) -> None:
        self._arming = False
        self._arm()

    def discard(self, entry: list[Any]) -> None:
        """The step ended (before leaving its scope): its deadline no longer counts."""
        if entry[2] is None:
            return  # already fired
        entry[2] = None
        self._dead += 1
        heap = self._heap
        if len(heap) >= _COMPACT_FROM and self._dead * 2 > len(heap):
            heap = self._heap = [e for e in heap if e[2] is not None]
            heapq.heapify(heap)
            self._dead = 0
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
            self._dead -= 1
        if not heap and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # Otherwise the timer stays set for the deadline that ended, which is no
        # later than the earliest left: when it fires it finds nothing due and is
        # set for the next one. Steps end mostly in the order they began, so
        # re-arming here would cancel and make a loop timer at nearly every step.

    def _arm(self) -> None:
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
            self._dead -= 1
        if not heap:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        when = heap[0][0]
        if self._timer is not None:
            if self._timer_at <= when:
                return  # set for a deadline that ended: it fires, then sets the next
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        heap = self._heap
        while heap and (heap[0][2] is None or heap[0][0] <= now + _DUE):
            entry = heapq.heappop(heap)
            scope: asyncio.Timeout | None = entry[2]
            if scope is None:
                self._dead -= 1
                continue
            entry[2] = None
            try:
                scope.reschedule(now)  # asyncio's own expiry: cancel, TimeoutError
            except RuntimeError:
                pass  # the scope is already leaving
        self._arm()


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
    weakref.WeakKeyDictionary()
)


# The loop asked for last and its deadlines: nearly every call is from the same
# loop, and a weak reference's call is cheaper than the weak dictionary's lookup
# (a Python method and a new reference object, once per step).
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], Deadlines] | None = None


def deadlines() -> Deadlines:
    """The running loop's deadlines."""
    global _last
    loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last[0]() is loop:
        return last[1]
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = Deadlines()
    _last = (weakref.ref(loop), found)
    return found
