"""The Broker: the one object higher layers, and the worker, use.

Higher layers create, read, watch and steer tasks through it; a worker claims,
writes, heartbeats and sweeps through it. It owns the store (the only door to
the database), the wake-up hub, the Postgres listener where the store offers
one, the group commit of creates and the group reads of events.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from falsework.engine.cluster import ClusterMetrics
from falsework.engine.codec import SHARE_FROM_RUNS, dumps, shared
from falsework.engine.creates import CreateBatcher
from falsework.engine.crypto import SecretBox
from falsework.engine.factory import open_store
from falsework.engine.feed import Feed
from falsework.engine.models import (
    FINAL_STATUSES,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    ClaimedTask,
    ClusterFlag,
    Event,
    FinishedTask,
    Heartbeat,
    Inserted,
    ListOrder,
    NewTask,
    QueueOverview,
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
from falsework.engine.notify import Hub, Listener, shared_hub
from falsework.engine.options import BrokerOptions, RetentionOptions
from falsework.engine.reads import EventReads
from falsework.engine.retention import Retention
from falsework.engine.store import Store
from falsework.engine.supervisor import Supervisor
from falsework.errors import ConflictError, InputError, NotFoundError, TooManyRequestsError
from falsework.taskio import Recovery
from falsework.types import JSONObject

log = logging.getLogger("falsework.engine")

MAX_LIMIT = 10_000
# the cluster flag that stops every worker from claiming (engine/sql: task_claim)
PAUSED = "paused"


class Broker:
    def __init__(self, store: Store, options: BrokerOptions, box: SecretBox, hub: Hub) -> None:
        self.store = store
        self.options = options
        self.wording = options.wording
        self.box = box
        self.hub = hub
        self._supervisor = Supervisor()
        self.listener: Listener | None = None
        # subscribers woken together read their events in one statement
        self.reads = EventReads(store)
        # one reader of events for every subscription of this broker (feed.py)
        self.feed = Feed(store, self.event_poll_interval)
        hub.add_feed(self.feed)
        # concurrent creates share one statement
        self._creates = CreateBatcher(self._insert)
        self._cluster = ClusterMetrics(store)

    @classmethod
    async def open(cls, url: str, options: BrokerOptions) -> Broker:
        """Connect, run the migrations, start the listener (where the store has one).

        Raises ``DatabaseUnavailableError`` with one line naming the URL (password
        hidden) when the database cannot be reached.
        """
        # the key first: a bad one must fail before anything is open (an open
        # SQLite store's thread would keep the failing process alive)
        box = SecretBox.from_key_or_file(options.secret_key, options.key_file)
        store = await open_store(url, options.store)
        try:
            await store.migrate()
        except BaseException:
            await store.close()
            raise
        hub = Hub()
        listener = store.listener(hub)
        if listener is None:
            # nothing reaches this process from others: brokers on the same
            # database in this process at least wake each other
            hub = shared_hub(store.key)
        broker = cls(store, options, box, hub)
        if listener is not None:
            broker.listener = listener
            broker._supervisor.start("listener", listener.run)
        return broker

    async def close(self) -> None:
        await self._creates.close()
        await self._supervisor.stop()
        self.hub.remove_feed(self.feed)
        await self.feed.close()
        await self.reads.close()
        await self.store.close()

    async def ping(self) -> None:
        await self.store.ping()

    async def schema_revision(self) -> str:
        return await self.store.schema_revision()

    # -- creating -------------------------------------------------------------
    def _row(self, item: NewTask) -> TaskRow:
        if not isinstance(item.spec, dict):
            raise InputError("A task spec must be a JSON object")
        try:
            spec = dumps(item.spec)
        except (TypeError, ValueError) as exc:
            raise InputError(f"The task spec is not JSON: {exc}") from exc
        return TaskRow(
            id=item.id or str(uuid.uuid4()),
            spec=spec,
            sealed_secrets=self.box.seal(item.secrets),
            created_by=item.created_by,
            priority=int(item.priority),
            run_after=item.run_after,
            recovery=item.recovery,
            idempotency_key=item.idempotency_key,
            # the create's act goes in with its task: one round trip, not two
            act=item.audit,
        )

    async def _insert(self, rows: list[TaskRow]) -> list[Inserted]:
        results = await self.store.tasks_insert(rows, open_cap=self.options.max_open_per_user)
        if any(r.outcome == "new" for r in results):
            self.hub.new_tasks()
        return results

    async def submit(self, item: NewTask) -> str:
        """Create a task (group commit with concurrent creates); returns its id, or
        the id of the task that already has its idempotency key.

        With ``max_open_per_user``, a creator at that many open or running tasks
        gets ``TooManyRequestsError``: the count and the insert are one statement.
        """
        (task_id,) = await self.create_many([item])
        return task_id

    def _refused(self, row: TaskRow) -> str:
        cap = self.options.max_open_per_user
        if cap is None or row.created_by is None:  # pragma: no cover - the key row vanished
            raise ConflictError(f"Idempotency key {row.idempotency_key!r} is in use")
        raise TooManyRequestsError(
            f"{row.created_by} already has {cap} open or running tasks (the limit is {cap}); "
            "wait for one to finish or cancel one."
        )

    async def create(
        self,
        spec: dict[str, Any],
        *,
        created_by: str | None = None,
        secrets: dict[str, str] | None = None,
        priority: int = 0,
        run_after: datetime | None = None,
        idempotency_key: str | None = None,
        recovery: Recovery = "resume",
    ) -> Task:
        """``submit`` one task and return it (a second create with the same key
        returns the first)."""
        item = NewTask(spec, created_by, secrets, priority, run_after, idempotency_key, recovery)
        return await self.get(await self.submit(item))

    async def create_many(self, items: Sequence[NewTask]) -> builtins.list[str]:
        """``submit`` every item (they share statements); ids in the items' order.
        Raises for the first item refused, once every item has been written."""
        rows = [self._row(item) for item in items]
        results = await self._creates.submit(rows)
        return [
            r.id if r.id is not None else self._refused(row)
            for row, r in zip(rows, results, strict=True)
        ]

    # -- reading --------------------------------------------------------------
    async def get(self, task_id: str) -> Task:
        task = await self.store.task_get(str(task_id))
        if task is None:
            raise NotFoundError(f"No task with id '{task_id}' found")
        return task

    async def list(
        self,
        *,
        created_by: str | None = None,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        order: str = "desc:created_at",
    ) -> tuple[builtins.list[Task], int]:
        statuses = [status] if isinstance(status, str) else status
        query = TaskQuery(
            created_by=created_by,
            statuses=tuple(statuses) if statuses else None,
            limit=limit,
            offset=max(0, offset),
            order=ListOrder.parse(order),
        )
        return await self.store.task_list(query)

    # -- steering ---------------------------------------------------------------
    async def cancel(self, task_id: str) -> Task:
        """Open → cancelled at once; processing → the owning worker stops it."""
        before = await self.store.task_cancel(str(task_id), self.wording.cancelled())
        if before is None:
            raise NotFoundError(f"No task with id '{task_id}' found")
        if before in FINAL_STATUSES:
            raise ConflictError(f"Task {task_id} has already finished with status {before}")
        if before == "open":
            self.hub.events([task_id])
        else:
            self.hub.cancel(task_id)
        return await self.get(task_id)

    async def retry(self, task_id: str) -> Task:
        """Re-open a failed or cancelled task; completed steps are kept. It counts
        against its creator's ``max_open_per_user`` like a create."""
        cap = self.options.max_open_per_user
        result = await self.store.task_retry(str(task_id), open_cap=cap)
        if result.before is None:
            raise NotFoundError(f"No task with id '{task_id}' found")
        if result.before not in ("failed", "cancelled"):
            raise ConflictError(f"Only a failed or cancelled task can be retried ({result.before})")
        if result.refused:
            task = await self.get(task_id)
            raise TooManyRequestsError(
                f"{task.created_by} already has {cap} open or running tasks (the limit is {cap}); "
                "wait for one to finish or cancel one."
            )
        self.hub.new_tasks()
        return await self.get(task_id)

    # -- events -----------------------------------------------------------------
    async def events(self, task_id: str, after: int | None = None) -> builtins.list[Event]:
        out: builtins.list[Event] = []
        cursor = after or 0
        while True:
            page = await self.store.events_after(str(task_id), cursor)
            out.extend(page)
            if len(page) < 1000:
                break
            cursor = page[-1].id
        if not out:
            await self.get(task_id)  # NotFoundError for an unknown task
        return out

    def event_poll_interval(self) -> float:
        """How long a waiter for a task's events sleeps between safety-net reads.

        While the Postgres listener is connected, every event write reaches it as
        a NOTIFY, so the re-read is a slow backstop (``max_poll_interval``): an
        idle subscriber costs a query every few seconds, not two a second. When
        the listener is down or reconnecting, and always on SQLite (writers in
        other processes cannot signal this one), it is ``poll_interval``. The
        listener wakes every waiter when it is lost (so they switch to the fast
        poll) and again when it is back (a catch-up read of what it missed).
        """
        o = self.options
        listener = self.listener
        if listener is not None and listener.connected.is_set():
            return max(o.poll_interval, o.max_poll_interval)
        return o.poll_interval

    async def subscribe(self, task_id: str, after: int | None = None) -> AsyncIterator[Event]:
        """Every event after ``after`` in id order, pushed; ends after the final one.

        The subscription is fed by the broker's one reader (``feed.py``): events
        a notification carries arrive without a read, the rest with one read for
        every subscription woken together.
        """
        await self.get(task_id)
        sub = self.feed.join(task_id, after or 0)
        self.hub.watch_started()
        # An empty answer asks for the task's status only on the first read and
        # after a safety-net poll: a notification that found nothing new cannot
        # have ended the task, and under a burst such checks would be many.
        idle_check = True
        try:
            while True:
                page = await sub.take()
                if page is None:  # the safety-net poll
                    idle_check, page = True, []
                for event in page:
                    yield event
                if sub.over:  # a notification said the task ended with these
                    return
                # The final event commits with the final status: once the status
                # is final, one more read has everything. Only a page holding a
                # possible final event, or an empty one (see above), needs that check.
                maybe_final = (not page and idle_check) or any(
                    e.type in ("completion", "cancelled") for e in page
                )
                idle_check = False
                if maybe_final and await self.reads.status(task_id) in FINAL_STATUSES:
                    while True:
                        cursor = sub.cursor
                        last = await self.reads.read(task_id, cursor)
                        sub.apply(last)
                        for event in sub.drain():
                            yield event
                        if sub.behind:  # overflowed meanwhile: from what was taken
                            sub.behind = False
                        elif len(last) < 1000:
                            return
        finally:
            self.feed.leave(sub)

    # `timeout` is the contract's name (docs/internals.md)
    async def wait_events(
        self,
        task_id: str,
        after: int | None,
        timeout: float,  # noqa: ASYNC109
    ) -> builtins.list[Event]:
        """Long-poll: the events after ``after``, waiting up to ``timeout`` for one."""
        await self.get(task_id)
        waiter = asyncio.Event()
        self.hub.watch_events(task_id, waiter)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                waiter.clear()
                page = await self.reads.read(task_id, after or 0)
                remaining = deadline - loop.time()
                if page or remaining <= 0:
                    return page
                if await self.store.task_status(task_id) in FINAL_STATUSES:
                    return await self.store.events_after(task_id, after or 0)
                try:
                    await asyncio.wait_for(
                        waiter.wait(), timeout=min(remaining, self.event_poll_interval())
                    )
                except TimeoutError:
                    pass
        finally:
            self.hub.unwatch_events(task_id, waiter)

    # -- workers ----------------------------------------------------------------
    async def workers(self) -> builtins.list[WorkerInfo]:
        """The registered workers; one not heard from for a stale window is shown
        running nothing (it is dead or cut off, and has fenced itself)."""
        stale = self.options.worker_stale_after
        return [
            w if w.heartbeat_age <= stale else dataclasses.replace(w, running=0)
            for w in await self.store.worker_list()
        ]

    async def set_worker_limit(self, worker_id: str, limit: int) -> WorkerInfo:
        if not 0 <= limit <= MAX_LIMIT:
            raise InputError(f"A worker limit is between 0 and {MAX_LIMIT}, not {limit}")
        if not await self.store.worker_set_limit(worker_id, limit):
            raise NotFoundError(f"No worker with id '{worker_id}' found")
        for info in await self.workers():
            if info.id == worker_id:
                return info
        raise NotFoundError(f"No worker with id '{worker_id}' found")

    # -- for workers --------------------------------------------------------------
    async def claim(self, worker_id: str, n: int, *, holds: int = 1) -> builtins.list[ClaimedTask]:
        """Claim up to ``n`` tasks for this worker, secrets decrypted for it alone.
        ``holds``: the most runs the worker may hold at once (its limit); from
        ``codec.SHARE_FROM_RUNS`` on, each spec's keys and short strings are the
        process's one copy (``codec.shared``)."""
        if n <= 0:
            return []
        share_text = holds >= SHARE_FROM_RUNS
        claims = await self.store.task_claim(
            worker_id, n, per_user_cap=self.options.max_running_per_user
        )
        return [
            ClaimedTask(
                id=c.id,
                # held for the whole run: its repeated text shared between tasks
                spec=shared(c.spec) if share_text else c.spec,
                secrets=self.box.open(c.sealed_secrets),
                created_by=c.created_by,
                attempt=c.attempt,
                claim_token=c.claim_token,
                step_state=c.step_state,
                checkpoints=c.checkpoints,
                priority=c.priority,
                recovery=c.recovery,
                created_at=c.created_at,
            )
            for c in claims
        ]

    async def write(self, batch: WriteBatch) -> set[str]:
        """Write a worker's batch, fenced by its claim tokens; the refused ids."""
        return await self.store.batch_apply(batch)

    def retention(self, options: RetentionOptions, holder: str) -> Retention:
        """The retention pass a worker runs on this broker's store (so the worker
        talks to the broker alone, never to its store)."""
        return Retention(self.store, options, holder)

    @property
    def parallel_writes(self) -> int:
        """How many ``write`` calls (of disjoint tasks) may run at a time."""
        return self.store.parallel_writes

    async def register_worker(self, worker_id: str, host: str, pid: int, limit: int) -> None:
        await self.store.worker_register(worker_id, host, pid, limit)

    async def unregister_worker(self, worker_id: str) -> None:
        await self.store.worker_delete(worker_id)

    async def heartbeat(
        self,
        worker_id: str,
        task_ids: Sequence[str],
        new_limit: int | None,
        *,
        running: int | None = None,
    ) -> Heartbeat:
        return await self.store.worker_heartbeat(worker_id, task_ids, new_limit, running=running)

    async def queue_empty(self) -> bool:
        return await self.store.tasks_count_claimable() == 0

    async def recover_stale(self, older_than: float) -> builtins.list[tuple[str, StaleOutcome]]:
        """Re-open, fail or cancel tasks whose heartbeat is older than ``older_than``
        seconds (``lease.stale_outcome``), and wake whoever waits for them."""
        outcome = await self.store.tasks_recover_stale(older_than, self.wording)
        if outcome:
            self.hub.events([tid for tid, _ in outcome])
            self.hub.new_tasks()
        return outcome

    async def erase_secrets(self, older_than: float) -> int:
        return await self.store.tasks_erase_secrets(older_than)

    async def prune_workers(self, older_than: float) -> int:
        return await self.store.workers_prune(older_than)

    async def keep(self, task_id: str, keep: bool = True) -> None:
        """Flag a task as a record something still needs (a template update's
        base), so retention never deletes it; ``keep=False`` releases it."""
        if not await self.store.task_keep(str(task_id), keep):
            raise NotFoundError(f"No task with id '{task_id}' found")

    # -- cluster metrics ----------------------------------------------------------
    async def cluster_metrics(
        self, *, every: float, alive_within: float, lag: float
    ) -> Snapshot | None:
        """The cluster's metrics snapshot, recomputed by one node at a time when it
        is older than ``every`` seconds (``engine/cluster.py``)."""
        return await self._cluster.current(every=every, alive_within=alive_within, lag=lag)

    # -- scaffolds (template updates) ---------------------------------------------
    async def scaffold_record(self, record: ScaffoldRecord) -> None:
        await self.store.scaffold_upsert(record)

    async def scaffold_list(
        self, template_ref: str | None = None, limit: int = 1000, offset: int = 0
    ) -> builtins.list[ScaffoldRecord]:
        return await self.store.scaffold_list(template_ref, limit, offset)

    async def scaffold_get(self, repository: str) -> ScaffoldRecord | None:
        return await self.store.scaffold_get(repository)

    async def prune_flushes(self, older_than: float) -> int:
        return await self.store.flushes_prune(older_than)

    # -- the audit trail ----------------------------------------------------------
    async def audit_write(self, entries: Sequence[AuditEntry]) -> None:
        await self.store.audit_insert(entries)

    async def audit_list(self, query: AuditQuery) -> builtins.list[AuditRecord]:
        return await self.store.audit_list(query)

    # -- the webhooks' outbox (falsework/webhooks.py) -------------------------------
    async def unhooked(self, limit: int = 200) -> builtins.list[FinishedTask]:
        return await self.store.tasks_unhooked(limit)

    async def mark_hooked(self, marks: Sequence[tuple[str, datetime]]) -> None:
        await self.store.tasks_mark_hooked(marks)

    async def append_event(self, task_id: str, body: JSONObject, type: str = "log") -> bool:
        """One event on ``task_id`` whatever its status (a webhook delivery reports
        on the task it announces); False when the task is gone."""
        added = await self.store.event_append(task_id, type, dumps(body))
        if added:
            self.hub.events([task_id])
        return added

    # -- cluster switches: pause claiming for maintenance ---------------------------
    async def pause(self, by: str | None, reason: str = "") -> ClusterFlag:
        """Stop every worker of the cluster from claiming (running tasks go on);
        durable until ``resume``."""
        await self.store.flag_set(PAUSED, dumps({"reason": reason}), by)
        flag = await self.paused()
        assert flag is not None
        return flag

    async def resume(self) -> bool:
        """Let workers claim again (False: claiming was not paused)."""
        cleared = await self.store.flag_clear(PAUSED)
        if cleared:
            self.hub.new_tasks()
        return cleared

    async def paused(self) -> ClusterFlag | None:
        return next((f for f in await self.store.flags_list() if f.name == PAUSED), None)

    async def overview(self, stale_after: float) -> QueueOverview:
        return await self.store.queue_overview(stale_after)

    async def troubled(self, stale_after: float, limit: int = 100) -> builtins.list[TroubledTask]:
        return await self.store.tasks_troubled(stale_after, limit)
