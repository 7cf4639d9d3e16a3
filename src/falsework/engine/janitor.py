"""The janitor: any node re-opens tasks whose worker stopped heartbeating.

It also erases the secrets of failed/cancelled tasks after ``secret_retention``
and forgets workers not seen for a day.
"""

from __future__ import annotations

import asyncio
import logging
import time

from falsework.engine.notify import Hub
from falsework.engine.store import Store, dumps, is_connection_error

log = logging.getLogger("falsework.engine")

BODIES = {
    "recovered": dumps({"message": "Task recovered after its worker stopped heartbeating"}),
    "failed": dumps(
        {
            "message": "Run completed with status: failed",
            "error": {
                "name": "Error",
                "message": "The worker running this task stopped heartbeating and the "
                "task's EXPERIMENTAL_recovery strategy is 'none'",
            },
        }
    ),
    "cancelled": dumps({"message": "Run completed with status: cancelled"}),
}

HOUSEKEEPING_EVERY = 60.0
WORKER_FORGET_AFTER = 86_400.0


class Janitor:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        *,
        interval: float,
        stale_timeout: float,
        secret_retention: float,
    ) -> None:
        self._store = store
        self._hub = hub
        self._interval = interval
        self._stale = stale_timeout
        self._retention = secret_retention
        self._last_housekeeping = 0.0

    async def sweep(self) -> list[tuple[str, str]]:
        """One pass: recover stale tasks; now and then erase old secrets."""
        outcome = await self._store.recover_stale(self._stale, BODIES)
        if outcome:
            counts: dict[str, int] = {}
            for _tid, o in outcome:
                counts[o] = counts.get(o, 0) + 1
            log.warning(
                "janitor: stale leases: %s (first: %s)",
                ", ".join(f"{n} {o}" for o, n in sorted(counts.items())),
                ", ".join(tid for tid, _ in outcome[:3]),
            )
            self._hub.events([tid for tid, _ in outcome])
            self._hub.new_tasks()
        now = time.monotonic()
        if now - self._last_housekeeping >= min(HOUSEKEEPING_EVERY, self._retention or 1.0):
            self._last_housekeeping = now
            await self._store.erase_secrets(self._retention)
            await self._store.worker_prune(WORKER_FORGET_AFTER)
        return outcome

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                log.warning("database unavailable for the janitor (%s); retrying", exc)
