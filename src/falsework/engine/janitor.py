"""The janitor: any node re-opens tasks whose worker stopped heartbeating.

It also erases the secrets of failed/cancelled tasks after ``secret_retention``
and forgets workers not seen for a day. What becomes of a stale task is the
lease rule ``lease.stale_outcome``; the store applies it in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time

from falsework.engine.broker import Broker
from falsework.engine.models import StaleOutcome
from falsework.errors import DatabaseUnavailableError

log = logging.getLogger("falsework.engine")

HOUSEKEEPING_EVERY = 60.0
WORKER_FORGET_AFTER = 86_400.0


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

    async def sweep(self) -> list[tuple[str, StaleOutcome]]:
        """One pass: recover stale tasks; now and then erase old secrets."""
        outcome = await self._broker.recover_stale(self._stale)
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
            await self._broker.prune_workers(WORKER_FORGET_AFTER)
        return outcome

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except DatabaseUnavailableError as exc:
                log.warning("database unavailable for the janitor (%s); retrying", exc)
