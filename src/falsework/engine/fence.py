"""Self-fencing: each run's local lease deadline, so two runs of one task never
overlap in time (docs/engine.md, "Timing").

Fencing by claim token protects the database: a worker that lost its lease
cannot write. It does not stop the worker from acting on the world (an HTTP
POST, a git push) while another node already runs the task. So each run also
carries ``valid_until``: the *send* time of the last statement that proved the
task ours (its claim, or a heartbeat whose reply listed it) + ``lease −
margin``, on this process's monotonic clock. The database stamped that proof
at or after the send, and a janitor recovers the task only once the stamp is
``stale_timeout`` > ``lease + margin`` old by the database's clock, so a run
that stops by ``valid_until`` has stopped ``2 × margin`` before anyone may
recover its task, whatever the network delays were.

Past ``valid_until`` no step starts (the step gate waits) and the worker cancels
the run, aborting its in-flight calls. A stall of this process (an event loop
blocked, SIGSTOP, a VM paused) is seen as a jump of the clock between two ticks:
the gate then stays closed for every run until a heartbeat *sent after the
stall* confirms ownership.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# CLOCK_BOOTTIME keeps counting while the machine sleeps (CLOCK_MONOTONIC does
# not on Linux): a suspended host must not wake up believing its leases fresh.
_CLOCK = getattr(time, "CLOCK_BOOTTIME", None)


def clock() -> float:
    """Seconds on a clock that never goes back and counts suspended time."""
    return time.clock_gettime(_CLOCK) if _CLOCK is not None else time.monotonic()


class Fence:
    """The worker's view of its leases: deadlines, stalls, and the step gate."""

    def __init__(self, fence_after: float, stall: float) -> None:
        self.fence_after = fence_after
        # a gap between two ticks longer than this is a stall
        self.stall = stall
        self._suspect_since: float | None = None
        self._confirmed = asyncio.Event()
        self._last_tick = clock()
        self.stalls = 0

    def deadline(self, sent: float) -> float:
        """Until when a run may go on, given the send time of a proof of ownership."""
        return sent + self.fence_after

    def expired(self, sent: float) -> bool:
        """Whether a reply to a statement sent at ``sent`` arrives too late to act on."""
        return clock() >= self.deadline(sent)

    @property
    def suspect(self) -> bool:
        return self._suspect_since is not None

    def tick(self) -> bool:
        """Called every tick by the worker; True when a stall just ended."""
        now = clock()
        stalled = now - self._last_tick > self.stall
        self._last_tick = now
        if stalled:
            self.stalls += 1
            self._suspect_since = now
        return stalled

    def confirmed(self, sent: float) -> None:
        """A heartbeat sent at ``sent`` came back: it clears a stall seen before it."""
        if self._suspect_since is not None and sent > self._suspect_since:
            self._suspect_since = None
        self._confirmed.set()
        self._confirmed = asyncio.Event()

    def open(self, valid_until: float) -> bool:
        return self._suspect_since is None and clock() < valid_until

    async def wait_open(self, valid_until: Callable[[], float]) -> None:
        """Return once a step may start: the run's deadline (read again after each
        heartbeat) is ahead and no stall awaits confirmation. The worker cancels a
        run whose deadline passes, which ends this wait."""
        while not self.open(valid_until()):
            await self._confirmed.wait()
