"""The Broker: the one object higher layers use to create, watch and steer tasks."""

from __future__ import annotations

import asyncio
import builtins
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from falsework.config import Settings
from falsework.engine.crypto import SecretBox
from falsework.engine.models import (
    FINAL_STATUSES,
    ClaimedTask,
    Event,
    NewTask,
    Task,
    WorkerInfo,
    recovery_of,
)
from falsework.engine.notify import Hub, Listener, shared_hub
from falsework.engine.reads import EventReads
from falsework.engine.store import (
    Store,
    _json,
    _ts,
    dumps,
    hide_password,
    is_connection_error,
    open_store,
)
from falsework.engine.supervisor import Supervisor
from falsework.errors import (
    ConflictError,
    DatabaseUnavailableError,
    InputError,
    NotFoundError,
)

MAX_LIMIT = 10_000
CANCELLED_BODY = dumps({"message": "Run completed with status: cancelled"})


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


class Broker:
    def __init__(self, store: Store, settings: Settings, box: SecretBox, hub: Hub) -> None:
        self.store = store
        self.settings = settings
        self.box = box
        self.hub = hub
        self._supervisor = Supervisor()
        self.listener: Listener | None = None
        # subscribers woken together read their events in one statement
        self.reads = EventReads(store)

    @classmethod
    async def open(cls, url: str, settings: Settings) -> Broker:
        """Connect, run the migrations, start the listener (Postgres).

        Raises ``DatabaseUnavailableError`` with one line naming the URL (password
        hidden) when the database cannot be reached.
        """
        store = await open_store(url)
        try:
            await store.migrate()
        except Exception as exc:
            await store.close()
            if is_connection_error(exc) or isinstance(exc, OSError):
                raise DatabaseUnavailableError(
                    f"Cannot reach the database at {hide_password(url)}: {_one_line(exc)}"
                ) from exc
            raise
        box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
        hub = Hub() if store.supports_listen else shared_hub(str(store.url))
        broker = cls(store, settings, box, hub)
        if store.supports_listen:
            from falsework.engine.postgres import PostgresStore

            assert isinstance(store, PostgresStore)
            broker.listener = Listener(store.listen_dsn, hub)
            broker._supervisor.start("listener", broker.listener.run)
        return broker

    async def close(self) -> None:
        await self._supervisor.stop()
        await self.reads.close()
        await self.store.close()

    async def ping(self) -> None:
        try:
            await self.store.ping()
        except Exception as exc:
            raise DatabaseUnavailableError(
                f"Cannot reach the database at {hide_password(str(self.store.url))}: "
                f"{_one_line(exc)}"
            ) from exc

    # -- creating -------------------------------------------------------------
    def _row(self, item: NewTask) -> dict[str, Any]:
        if not isinstance(item.spec, dict):
            raise InputError("A task spec must be a JSON object")
        return {
            "id": str(uuid.uuid4()),
            "spec": item.spec,
            "secrets": self.box.seal(item.secrets),
            "created_by": item.created_by,
            "priority": int(item.priority),
            "run_after": item.run_after,
            "recovery": recovery_of(item.spec),
            "idempotency_key": item.idempotency_key,
        }

    async def create(
        self,
        spec: dict[str, Any],
        *,
        created_by: str | None = None,
        secrets: dict[str, str] | None = None,
        priority: int = 0,
        run_after: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Task:
        """Insert an open task; a second create with the same key returns the first."""
        item = NewTask(spec, created_by, secrets, priority, run_after, idempotency_key)
        try:
            task = await self.store.create_task(self._row(item))
        except (TypeError, ValueError) as exc:
            raise InputError(f"The task spec is not JSON: {exc}") from exc
        if task is not None:
            self.hub.new_tasks()
            return task
        assert idempotency_key is not None
        existing = await self.store.task_id_by_key(idempotency_key)
        if existing is None:  # pragma: no cover - the key row vanished meanwhile
            raise ConflictError(f"Idempotency key {idempotency_key!r} is in use")
        return await self.get(existing)

    async def create_many(self, items: list[NewTask]) -> list[str]:
        """Bulk insert (one statement per 5,000); returns ids in the items' order."""
        out: list[str] = []
        for start in range(0, len(items), 5000):
            chunk = items[start : start + 5000]
            rows = [self._row(item) for item in chunk]
            try:
                inserted = set(await self.store.insert_tasks(rows))
            except (TypeError, ValueError) as exc:
                raise InputError(f"A task spec is not JSON: {exc}") from exc
            for row, item in zip(rows, chunk, strict=True):
                if row["id"] in inserted:
                    out.append(row["id"])
                else:
                    existing = await self.store.task_id_by_key(str(item.idempotency_key))
                    out.append(str(existing))
        self.hub.new_tasks()
        return out

    # -- reading --------------------------------------------------------------
    async def get(self, task_id: str) -> Task:
        task = await self.store.get_task(str(task_id))
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
    ) -> tuple[list[Task], int]:
        statuses = [status] if isinstance(status, str) else status
        return await self.store.list_tasks(
            created_by=created_by,
            statuses=list(statuses) if statuses else None,
            limit=limit,
            offset=max(0, offset),
            order=order,
        )

    async def count_open(self, created_by: str) -> int:
        """Tasks of this user that are not finished (open or processing)."""
        return await self.store.count_active(created_by)

    # -- steering ---------------------------------------------------------------
    async def cancel(self, task_id: str) -> Task:
        """Open → cancelled at once; processing → the owning worker stops it."""
        before = await self.store.cancel(str(task_id), CANCELLED_BODY)
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
        """Re-open a failed or cancelled task; completed steps are kept."""
        before = await self.store.retry(str(task_id))
        if before is None:
            raise NotFoundError(f"No task with id '{task_id}' found")
        if before not in ("failed", "cancelled"):
            raise ConflictError(f"Only a failed or cancelled task can be retried ({before})")
        self.hub.new_tasks()
        return await self.get(task_id)

    # -- events -----------------------------------------------------------------
    async def events(self, task_id: str, after: int | None = None) -> builtins.list[Event]:
        out: builtins.list[Event] = []
        cursor = after or 0
        while True:
            page = await self.store.events(str(task_id), cursor)
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
        s = self.settings
        listener = self.listener
        if listener is not None and listener.connected.is_set():
            return max(s.poll_interval, s.max_poll_interval)
        return s.poll_interval

    async def subscribe(self, task_id: str, after: int | None = None) -> AsyncIterator[Event]:
        """Every event after ``after`` in id order, pushed; ends after the final one."""
        await self.get(task_id)
        cursor = after or 0
        waiter = asyncio.Event()
        self.hub.watch_events(task_id, waiter)
        try:
            while True:
                waiter.clear()
                page = await self.reads.read(task_id, cursor)
                for event in page:
                    cursor = event.id
                    yield event
                if len(page) >= 1000:
                    continue
                # The final event commits with the final status: once the status
                # is final, one more read has everything. Only an empty page or
                # one holding a possible final event needs that check.
                maybe_final = not page or any(e.type in ("completion", "cancelled") for e in page)
                if maybe_final and await self.store.task_status(task_id) in FINAL_STATUSES:
                    for event in await self.events(task_id, cursor):
                        yield event
                    return
                try:
                    await asyncio.wait_for(waiter.wait(), timeout=self.event_poll_interval())
                except TimeoutError:
                    pass
        finally:
            self.hub.unwatch_events(task_id, waiter)

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
                    return await self.store.events(task_id, after or 0)
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
        return await self.store.worker_list()

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
    async def claim(self, worker_id: str, n: int) -> builtins.list[ClaimedTask]:
        """Claim up to ``n`` tasks for this worker, secrets decrypted for it alone."""
        if n <= 0:
            return []
        rows = await self.store.claim(worker_id, n, self.settings.max_running_per_user)
        out = []
        for row in rows:
            m = row._mapping
            out.append(
                ClaimedTask(
                    id=m["id"],
                    spec=_json(m["spec"]),
                    secrets=self.box.open(m["secrets"]),
                    created_by=m["created_by"],
                    attempt=int(m["attempt"]),
                    claim_token=m["claim_token"],
                    step_state=_json(m["step_state"]),
                    checkpoints=_json(m["checkpoints"]),
                    priority=int(m["priority"]),
                    recovery=m["recovery"],
                    created_at=_ts(m["created_at"]),
                )
            )
        return out
