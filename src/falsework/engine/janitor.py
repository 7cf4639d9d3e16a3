"""The janitor: any node re-opens tasks whose worker stopped heartbeating.

It also erases the secrets of failed/cancelled tasks after ``secret_retention``
and forgets workers not seen for ``forget_after``. What becomes of a stale task
is the lease rule ``lease.stale_outcome``; the store applies it in one
transaction.

**Outage-aware**: a heartbeat can only be old because its worker died *or*
because nobody could reach the database. So a janitor recovers nothing until it
has itself seen the database answer continuously for a full stale window
(every sweep or ping answered, no gap between them longer than ``interval`` +
the time a statement may take): after an outage, or a stall of this process,
every live worker has had that long to heartbeat again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from falsework.engine.broker import Broker
from falsework.engine.fence import clock
from falsework.engine.models import StaleOutcome
from falsework.errors import DatabaseUnavailableError

log = logging.getLogger("falsework.engine")

HOUSEKEEPING_EVERY = 60.0
# Workers not seen for this long leave the workers table (killed ones never
# unregister): at least 5 minutes, at least 10 stale windows.
WORKER_FORGET_MIN = 300.0
# How long a flush's id is kept, at least. Its retries come within seconds; one
# that comes later finds its tasks recovered by then (a janitor that could prune
# could also recover them after the stale timeout), so the fencing rule refuses
# it anyway: the ids only need to outlive the stale timeout, and are kept for 10
# stale windows. Short, because a busy worker writes hundreds of flushes a second.
FLUSH_IDS_MIN = 600.0


class Janitor:
    def __init__(
        self,
        broker: Broker,
        *,
        interval: float,
        stale_timeout: float,
        secret_retention: float,
    ) -> None:
        self._broker = broker
        self._interval = interval
        self._stale = stale_timeout
        self._retention = secret_retention
        self._last_housekeeping = 0.0
        self.forget_after = max(WORKER_FORGET_MIN, 10 * stale_timeout)
        self.flush_ids_kept = max(FLUSH_IDS_MIN, 10 * stale_timeout)
        # the longest gap between two answers that still counts as continuous
        self._gap = 2 * interval + max(1.0, stale_timeout / 3)
        self._seen_since: float | None = None  # start of the current unbroken view
        self._last_seen = float("-inf")

    @property
    def trusted(self) -> bool:
        """Whether this janitor has seen the database for a full stale window."""
        return self._seen_since is not None and clock() - self._seen_since >= self._stale

    def _answered(self, sent: float) -> None:
        now = clock()
        if self._seen_since is None or sent - self._last_seen > self._gap:
            if self._seen_since is not None:
                log.info(
                    "janitor: a gap of %.1fs in its view of the database", sent - self._last_seen
                )
            self._seen_since = now
        self._last_seen = now

    def _lost(self) -> None:
        self._seen_since = None

    async def sweep(self) -> list[tuple[str, StaleOutcome]]:
        """One pass: recover stale tasks (once trusted, else only look at the
        database); now and then erase old secrets and forget dead workers."""
        sent = clock()
        try:
            if not self.trusted:
                await self._broker.ping()
                self._answered(sent)
                if not self.trusted:
                    return []
                sent = clock()
            outcome = await self._broker.recover_stale(self._stale)
        except DatabaseUnavailableError:
            self._lost()
            raise
        self._answered(sent)
        if outcome:
            counts: dict[str, int] = {}
            for _tid, o in outcome:
                counts[o] = counts.get(o, 0) + 1
            log.warning(
                "janitor: stale leases: %s (first: %s)",
                ", ".join(f"{n} {o}" for o, n in sorted(counts.items())),
                ", ".join(tid for tid, _ in outcome[:3]),
            )
        now = time.monotonic()
        if now - self._last_housekeeping >= min(HOUSEKEEPING_EVERY, self._retention or 1.0):
            self._last_housekeeping = now
            await self._broker.erase_secrets(self._retention)
            await self._broker.prune_workers(self.forget_after)
            await self._broker.prune_flushes(self.flush_ids_kept)
        return outcome

    def _pause(self) -> float:
        """How long to sleep before the next sweep: an interval, or less when the
        window of trust ends sooner (the sweep that may recover comes at once)."""
        if self._seen_since is None or self.trusted:
            return self._interval
        due = self._seen_since + self._stale - clock()
        return min(self._interval, max(0.0, due) + 0.01)

    async def run(self) -> None:
        # The first sweep at once: the window of trust opens when this node starts,
        # not an interval later (a node started beside a dying one recovers its
        # tasks as soon as their heartbeats are stale and its own window is full).
        while True:
            try:
                await self.sweep()
            except DatabaseUnavailableError as exc:
                log.warning("database unavailable for the janitor (%s); retrying", exc)
            await asyncio.sleep(self._pause())
