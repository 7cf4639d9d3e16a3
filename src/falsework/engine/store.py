"""The store contract: the engine's only door to a database.

A narrow interface (River's driver style) of entity-first methods that take and
return engine records (``engine/models.py``). Two stores implement it,
``PostgresStore`` (``engine/postgres.py``) and ``SqliteStore``
(``engine/sqlite.py``), and one contract suite (``tests/engine/test_store_contract.py``)
runs on both; ``engine/factory.py`` picks one for a URL.

Each store runs the named queries of its ``engine/sql/<dialect>.sql`` on its own
driver, maps its rows to records, and wraps every driver error in our own:
``DatabaseUnavailableError`` when the database cannot be reached (connecting
failed, the connection was lost, closed or is closing: retrying on a fresh
connection may succeed), ``DatabaseError`` when it refused the statement, the
driver's exception as ``__cause__``. Nothing above a store knows a driver.

What a backend can or cannot do is said by the store (``listener``), never
found out by its type. Time-dependent operations take their horizon as a
parameter (seconds by the database's clock; negative reaches into the future),
so tests never wait for a lease to expire.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from falsework.engine.models import (
    AuditEntry,
    AuditQuery,
    AuditRecord,
    Claim,
    ClusterFlag,
    Event,
    Expired,
    FinishedTask,
    Gauges,
    Heartbeat,
    Inserted,
    Marks,
    QueueOverview,
    Retried,
    ScaffoldRecord,
    Snapshot,
    StaleOutcome,
    Task,
    TaskQuery,
    TaskRow,
    TroubledTask,
    WorkerInfo,
    WriteBatch,
)
from falsework.engine.notify import Hub, Listener
from falsework.taskio import Outcome, Wording


class Store(Protocol):
    key: str
    """Names the database (password hidden): brokers of one process on the same
    key and without a listener share their wake-ups."""

    parallel_writes: int
    """How many ``batch_apply`` calls of one worker may run at a time (of
    disjoint tasks): more than one where the database writes them side by side
    (Postgres, on as many backends), one where it has a single writer (SQLite)."""

    def listener(self, hub: Hub) -> Listener | None:
        """A connection that feeds ``hub`` with other processes' wake-ups (Postgres
        LISTEN), or None where there is none (SQLite: then only brokers of this
        process wake each other, and everyone polls)."""
        ...

    async def migrate(self) -> None:
        """Create or upgrade the tables (safe when several processes start at once)."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def schema_revision(self) -> str: ...

    # -- tasks ---------------------------------------------------------------------
    async def tasks_insert(
        self, rows: Sequence[TaskRow], *, open_cap: int | None
    ) -> list[Inserted]:
        """Insert open tasks in one statement, in order. A row whose idempotency
        key exists is not inserted (``existing`` with that task's id). With
        ``open_cap``, a creator's rows that would take their open and running
        tasks beyond it are ``refused``, atomically with the insert (rows without a
        creator are not capped). A row's ``act`` is recorded with it, its target
        the new task's id (or the keyed task's, for an ``existing`` row), in the
        same transaction; a refused row records nothing."""
        ...

    async def task_get(self, task_id: str) -> Task | None: ...

    async def task_status(self, task_id: str) -> str | None: ...

    async def tasks_status(self, task_ids: Sequence[str]) -> dict[str, str]:
        """The status of each of these tasks that exists, by id."""
        ...

    async def task_secrets(self, task_id: str) -> str | None:
        """The sealed secrets, for the claiming worker only."""
        ...

    async def task_list(self, query: TaskQuery) -> tuple[list[Task], int]:
        """One page in ``query.order`` and the number of tasks matching."""
        ...

    async def tasks_count_claimable(self) -> int: ...

    async def task_cancel(self, task_id: str, outcome: Outcome) -> str | None:
        """An open task ends now with ``outcome``'s status and event; a processing
        one gets a cancel request for its worker. Returns the status seen before
        (None: no such task)."""
        ...

    async def task_retry(self, task_id: str, *, open_cap: int | None) -> Retried:
        """Re-open a failed or cancelled task, keeping its completed steps; refused
        when its creator already has ``open_cap`` open or running tasks."""
        ...

    async def task_claim(self, worker_id: str, n: int, *, per_user_cap: int | None) -> list[Claim]:
        """Claim up to ``n`` open tasks whose ``run_after`` has passed, highest
        priority first, FIFO within a priority, each with a fresh claim token and
        ``attempt + 1``; with ``per_user_cap``, no creator beyond that many
        processing tasks. Returned in queue order."""
        ...

    async def batch_apply(self, batch: WriteBatch) -> set[str]:
        """Write a worker's batch atomically, as ``lease.plan_writes`` allows
        given its tasks' state when written; returns the refused task ids (their
        writes were dropped). The batch's ``flush_id`` is recorded with it:
        applying it again writes nothing and returns what the first application
        refused."""
        ...

    async def tasks_recover_stale(
        self, older_than: float, wording: Wording
    ) -> list[tuple[str, StaleOutcome]]:
        """Processing tasks whose heartbeat is older than ``older_than`` seconds
        meet ``lease.stale_outcome`` (at most 500 per call, each with its event
        in ``wording``); several callers never take the same task."""
        ...

    async def flushes_prune(self, older_than: float) -> int:
        """Forget the ids of flushes written more than ``older_than`` seconds ago
        (a retry comes within seconds); returns how many."""
        ...

    async def tasks_erase_secrets(self, older_than: float) -> int:
        """Drop the secrets of tasks failed or cancelled more than ``older_than``
        seconds ago; returns how many."""
        ...

    async def tasks_expire(self, status: str, older_than: float, limit: int) -> Expired:
        """Delete up to ``limit`` tasks of final ``status`` that finished more than
        ``older_than`` seconds ago and are not kept, oldest first, with their events,
        in one short transaction; tasks another caller is deleting are skipped."""
        ...

    async def task_keep(self, task_id: str, keep: bool) -> bool:
        """Mark a task as a record something still needs (retention spares it), or
        release it; False when there is no such task."""
        ...

    async def space_reclaim(self, pages: int) -> int:
        """Give up to ``pages`` free pages back to the file system where the backend
        leaves that to its caller (SQLite's incremental vacuum); returns how many
        (0 where the database does it itself: Postgres's autovacuum)."""
        ...

    # -- events --------------------------------------------------------------------
    async def events_after(self, task_id: str, after: int, limit: int = 1000) -> list[Event]:
        """Up to ``limit`` events of the task with an id above ``after``, in order."""
        ...

    async def events_after_many(
        self, wanted: Sequence[tuple[str, int]], limit: int = 1000
    ) -> list[list[Event]]:
        """``events_after`` for each ``(task_id, after)``, in one statement."""
        ...

    # -- workers -------------------------------------------------------------------
    async def worker_register(self, worker_id: str, host: str, pid: int, limit: int) -> None: ...

    async def worker_heartbeat(
        self,
        worker_id: str,
        task_ids: Sequence[str],
        new_limit: int | None,
        *,
        running: int | None = None,
    ) -> Heartbeat:
        """Refresh the lease of every task in ``task_ids`` still this worker's,
        and its own row (storing ``new_limit`` when given, and ``running``: the
        worker's whole count when ``task_ids`` is one part of its beat; by default
        ``len(task_ids)``)."""
        ...

    async def worker_list(self) -> list[WorkerInfo]: ...

    async def worker_set_limit(self, worker_id: str, limit: int) -> bool: ...

    async def worker_delete(self, worker_id: str) -> None: ...

    async def workers_prune(self, older_than: float) -> int:
        """Forget workers not seen for ``older_than`` seconds; returns how many."""
        ...

    # -- one node at a time ---------------------------------------------------------
    async def lease_take(self, name: str, holder: str, ttl: float) -> bool:
        """Take (or renew, when ``holder`` has it) the lease ``name`` for ``ttl``
        seconds; False while another holder's lease has not expired."""
        ...

    # -- cluster metrics -----------------------------------------------------------
    async def metrics_gauges(self, alive_within: float) -> Gauges:
        """Tasks by status, the oldest claimable open task's wait, and the workers
        seen within ``alive_within`` seconds with their summed limits."""
        ...

    async def metrics_marks(self, after: int | None, lag: float, limit: int) -> Marks:
        """The runs and steps that ended in the events after id ``after``, looking at
        up to ``limit`` events older than ``lag`` seconds (so none committing late
        is passed over); ``after`` None starts at the last event, with no marks."""
        ...

    async def metrics_snapshot_get(self, name: str) -> Snapshot | None: ...

    async def metrics_snapshot_put(
        self, name: str, expected: int | None, last_event_id: int, body: str
    ) -> bool:
        """Store the snapshot (``body`` JSON text) if the stored one still has
        ``last_event_id`` == ``expected`` (None: there is none); False otherwise."""
        ...

    # -- scaffolds (template updates) ----------------------------------------------
    async def scaffold_upsert(self, record: ScaffoldRecord) -> None:
        """Create or replace the row of ``record.repository`` (stamped now)."""
        ...

    async def scaffold_list(
        self, template_ref: str | None, limit: int, offset: int = 0
    ) -> list[ScaffoldRecord]:
        """Rows of one template (every template when None), by template and repository."""
        ...

    async def scaffold_get(self, repository: str) -> ScaffoldRecord | None:
        """The row of ``repository`` (``remote#branch``), or None."""
        ...

    # -- the audit trail -----------------------------------------------------------
    async def audit_insert(self, entries: Sequence[AuditEntry]) -> None:
        """Record ``entries`` in one statement, stamped by the database's clock."""
        ...

    async def audit_list(self, query: AuditQuery) -> list[AuditRecord]:
        """Entries matching ``query``, newest first (by id), at most ``query.limit``."""
        ...

    # -- the webhooks' outbox ------------------------------------------------------
    async def tasks_unhooked(self, limit: int) -> list[FinishedTask]:
        """Up to ``limit`` tasks finished (or finished again after a retry) since
        their webhooks were dispatched, oldest finish first. Their ``spec`` holds
        only ``apiVersion``, ``kind`` and ``templateInfo.entityRef``."""
        ...

    async def tasks_mark_hooked(self, marks: Sequence[tuple[str, datetime]]) -> None:
        """Mark each ``(task id, finished_at as read)`` dispatched; a task that has
        finished again since stays in the outbox."""
        ...

    async def event_append(self, task_id: str, type: str, body: str) -> bool:
        """Append one event (``body`` JSON text) to a task whatever its status, not
        fenced by any claim; False when the task is gone."""
        ...

    # -- cluster switches and the admin's view -------------------------------------
    async def flag_set(self, name: str, detail: str, set_by: str | None) -> None: ...

    async def flag_clear(self, name: str) -> bool:
        """Clear a switch; False when it was not set."""
        ...

    async def flags_list(self) -> list[ClusterFlag]: ...

    async def queue_overview(self, stale_after: float) -> QueueOverview: ...

    async def tasks_troubled(self, stale_after: float, limit: int) -> list[TroubledTask]:
        """Tasks in flight that are stale (no heartbeat for ``stale_after`` seconds)
        or run again after a recovery or a retry, in queue order."""
        ...

    async def audit_expire(self, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` of the oldest entries older than ``older_than``
        seconds; returns how many."""
        ...
