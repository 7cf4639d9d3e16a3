"""Retention: finished tasks, their events and old audit rows are deleted after
their ages (``RetentionOptions``), by one node of the cluster at a time.

Every worker runs a ``Retention`` loop; a pass begins only for the node that
takes the ``retention`` lease (a row, so it works the same on SQLite and
Postgres, and shows who ran last), and deletes in small batches, one short
transaction each (``Store.tasks_expire``), renewing the lease between batches.
A batch holds its locks (on SQLite, the one write lock) for as long as it takes,
so its size follows its time: a batch that took longer than ``batch_seconds`` makes
the next one proportionally smaller (tasks with many events), a quick one lets it
grow back, up to ``batch``. A pass stops after ``budget`` seconds; a backlog (the
first run on an old database) goes on in the next pass, soon after. Tasks flagged
``keep`` (records a template update still needs) are never deleted. On SQLite up to
``reclaim_pages`` freed pages per pass are then given back to the file system in
small incremental-vacuum steps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from falsework.engine.options import RetentionOptions
from falsework.engine.store import Store
from falsework.errors import DatabaseUnavailableError

log = logging.getLogger("falsework.engine")

LEASE = "retention"
# how long a node may go quiet inside a pass before another may take over
LEASE_TTL = 60.0
# the next pass after a backlog was left by the budget
BACKLOG_PAUSE = 1.0
MIN_BATCH = 10


@dataclass
class Pass:
    """What one pass deleted (by status), and whether it left a backlog."""

    tasks: dict[str, int] = field(default_factory=dict)
    events: int = 0
    audit: int = 0
    pages: int = 0
    batches: int = 0
    seconds: float = 0.0
    backlog: bool = False

    @property
    def deleted(self) -> int:
        return sum(self.tasks.values()) + self.audit


class Retention:
    def __init__(self, store: Store, options: RetentionOptions, holder: str) -> None:
        self._store = store
        self._options = options
        self._holder = holder
        self.size = options.batch  # the next batch's size, kept across passes

    def _adapt(self, took: float) -> None:
        o = self._options
        if took > o.batch_seconds:
            self.size = max(MIN_BATCH, int(self.size * o.batch_seconds / took))
        elif took < o.batch_seconds / 2:
            self.size = min(o.batch, self.size * 2)

    def _ages(self) -> list[tuple[str, float]]:
        o = self._options
        ages = [("cancelled", o.cancelled), ("completed", o.completed), ("failed", o.failed)]
        return [(status, age) for status, age in ages if age != 0]  # 0: forever

    async def run_pass(self) -> Pass | None:
        """One pass if this node gets the turn (None when another node has it)."""
        o = self._options
        if not await self._store.lease_take(LEASE, self._holder, max(LEASE_TTL, o.interval)):
            return None
        started = time.monotonic()
        done = Pass()
        for status, age in self._ages():
            done.tasks[status] = 0
            while True:
                if time.monotonic() - started > o.budget:
                    done.backlog = True
                    break
                size = min(self.size, o.batch)
                began = time.monotonic()
                expired = await self._store.tasks_expire(status, age, size)
                self._adapt(time.monotonic() - began)
                done.batches += 1
                done.tasks[status] += expired.tasks
                done.events += expired.events
                if expired.tasks < size:
                    break
                await self._store.lease_take(LEASE, self._holder, LEASE_TTL)
                await asyncio.sleep(0)  # let this process's own work run between batches
        if o.audit != 0 and not done.backlog:
            while time.monotonic() - started <= o.budget:
                gone = await self._store.audit_expire(o.audit, o.batch)
                done.audit += gone
                if gone < o.batch:
                    break
        if done.deleted or done.backlog:
            done.pages = await self._store.space_reclaim(o.reclaim_pages)
        done.seconds = time.monotonic() - started
        # the next pass, by whichever node, after `interval` (sooner for a backlog)
        await self._store.lease_take(
            LEASE, self._holder, BACKLOG_PAUSE if done.backlog else o.interval
        )
        if done.deleted:
            log.info(
                "retention: deleted %s tasks with %d events and %d audit rows in %d batches "
                "(%.2fs%s)",
                ", ".join(f"{n} {s}" for s, n in done.tasks.items() if n) or "no",
                done.events,
                done.audit,
                done.batches,
                done.seconds,
                "; more next time" if done.backlog else "",
            )
        return done

    async def run(self) -> None:
        """Try for a turn every ``interval`` seconds (sooner while a backlog lasts)."""
        wait = min(self._options.interval, 5.0)  # a first look soon after start
        while True:
            await asyncio.sleep(wait)
            wait = self._options.interval
            try:
                done = await self.run_pass()
            except DatabaseUnavailableError as exc:
                log.warning("database unavailable for retention (%s); retrying", exc)
                continue
            if done is not None and done.backlog:
                wait = BACKLOG_PAUSE
