"""The TaskWorker: one per process; waits for capacity, claims a batch, spawns.

The loop never awaits a run. Side tasks (heartbeat, janitor, flusher) are
supervised: one that dies is logged and restarted. See docs/engine.md for the
balance formula and every setting.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psutil

from falsework.config import Settings
from falsework.engine.batcher import Batcher
from falsework.engine.broker import MAX_LIMIT, Broker
from falsework.engine.janitor import Janitor
from falsework.engine.models import EVENT_TYPES, ClaimedTask
from falsework.engine.store import Finish, dumps, is_connection_error
from falsework.engine.supervisor import Supervisor
from falsework.errors import FalseworkError, InputError, LeaseLostError
from falsework.runner.io import TaskIO
from falsework.types import JSONObject

log = logging.getLogger("falsework.engine")

Executor = Callable[[ClaimedTask, TaskIO], Awaitable[JSONObject]]

_RUNNER_EVENT_TYPES = frozenset(EVENT_TYPES) - {"completion"}


class TaskChannel:
    """The engine's ``TaskIO`` for one claimed task: fenced, buffered writes."""

    def __init__(self, batcher: Batcher, task: ClaimedTask) -> None:
        self._batcher = batcher
        self._id = task.id
        self._token = task.claim_token
        self._checkpoints = dict(task.checkpoints)

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        if type not in _RUNNER_EVENT_TYPES:
            raise InputError(f"A task cannot emit an event of type {type!r}")
        self._batcher.event(self._id, self._token, type, dumps(body))
        if self._batcher.over_high_water():
            await self._batcher.backpressure()

    async def save_step(self, step_id: str, state: JSONObject) -> None:
        # Buffered like emit: it reaches the database with the next flush, before
        # the task's final write. A crash in between re-runs the step on recovery
        # (actions make that safe with checkpoints, which do wait).
        self._batcher.step(self._id, self._token, step_id, dumps(state))
        if self._batcher.over_high_water():
            await self._batcher.backpressure()

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]:
        if key in self._checkpoints:
            return True, self._checkpoints[key]
        return False, None

    async def checkpoint_set(self, key: str, value: Any) -> None:
        text = dumps(value)
        self._checkpoints[key] = value
        await self._batcher.checkpoint(self._id, self._token, key, text)


_frozen = False


def _freeze_startup_heap() -> None:
    """Once per process, when the first worker starts: move everything alive now
    (modules, settings, the engine's pools) out of the cyclic GC's reach. A full
    collection would otherwise walk that whole heap again and again while tasks
    churn through short-lived objects (a third of the worker's CPU at 20,000
    small tasks). Garbage made later is collected as before."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


@dataclass
class _Run:
    task: ClaimedTask
    handle: asyncio.Task[None] | None = None
    reason: str | None = None  # why we cancelled it: cancel, lease, shutdown
    finishing: bool = False


class _Wake:
    """A one-waiter wake-up flag, cheaper than ``wait_for(Event.wait())``.

    ``set`` resolves the sleeping loop's future directly, so a notify reaches the
    claim in one turn of the event loop (``wait_for`` wraps the wait in a task:
    two more turns, each running whatever else is ready first).
    """

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


class TaskWorker:
    def __init__(self, broker: Broker, executor: Executor, settings: Settings) -> None:
        self.broker = broker
        self.executor = executor
        self.settings = settings
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._limit = settings.concurrency
        self._pending_limit: int | None = None
        self._runs: dict[str, _Run] = {}
        self._finishing = 0
        self._wake = _Wake()
        self._notified = False
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._supervisor = Supervisor()
        self._batcher = Batcher(broker.store, broker.hub, self._on_refused)
        self._janitor = Janitor(
            broker.store,
            broker.hub,
            interval=settings.janitor_interval,
            stale_timeout=settings.stale_timeout,
            secret_retention=settings.secret_retention,
        )
        self._process = psutil.Process()
        self._rss_checked = 0.0
        self._over_rss = False
        self._running_loop = False
        self.claimed_total = 0

    # -- public -----------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._running_loop and not self._stopped.is_set()

    @property
    def running(self) -> int:
        return len(self._runs)

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, n: int) -> None:
        """Change the concurrency limit now (also stored at the next heartbeat)."""
        if not 0 <= n <= MAX_LIMIT:
            raise InputError(f"A worker limit is between 0 and {MAX_LIMIT}, not {n}")
        self._limit = n
        self._pending_limit = n
        self._wake.set()

    def request_stop(self) -> None:
        """Begin a graceful stop (safe to call from a signal handler)."""
        self._stopping.set()
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, let runs finish within shutdown_grace, release the rest."""
        self.request_stop()
        if self._running_loop:
            await self._stopped.wait()

    async def run(self, *, burst: bool = False) -> None:
        """Work until stopped (or, in burst mode, until the queue is empty)."""
        self._running_loop = True
        _freeze_startup_heap()
        await self._register()
        hub = self.broker.hub
        hub.watch_tasks(self._on_new_tasks)
        hub.on_cancel(self._on_cancel)
        self._supervisor.start("flusher", self._batcher.run)
        self._supervisor.start("heartbeat", self._heartbeat_loop)
        self._supervisor.start("janitor", self._janitor.run)
        try:
            await self._loop(burst)
        finally:
            try:
                await self._shutdown()
            finally:
                hub.unwatch_tasks(self._on_new_tasks)
                hub.off_cancel(self._on_cancel)
                self._stopped.set()

    # -- the loop ---------------------------------------------------------------
    async def _loop(self, burst: bool) -> None:
        while not self._stopping.is_set():
            free = self._free()
            if free <= 0:
                if burst and self._limit <= 0 and not self._runs:
                    log.warning("burst worker with limit 0: nothing can run here; exiting")
                    return
                await self._sleep(self._poll_timeout())
                continue
            claimed = await self._claim(free)
            for task in claimed:
                self._spawn(task)
            if len(claimed) == free:
                continue
            if burst and not claimed:
                if not self._runs and await self._queue_empty():
                    return
                await self._sleep(self._poll_timeout())
                continue
            if await self._sleep(self._poll_timeout()):
                # Woken by a notify: a fuller node waits longer, so the emptiest
                # node claims first (docs/engine.md, "Balance").
                delay = self._fill() * self.settings.max_claim_delay
                if delay > 0:
                    await asyncio.sleep(delay)

    def _fill(self) -> float:
        return min(1.0, self._busy() / self._limit) if self._limit else 1.0

    def _poll_timeout(self) -> float:
        s = self.settings
        return s.poll_interval + self._fill() * max(0.0, s.max_poll_interval - s.poll_interval)

    def _busy(self) -> int:
        # A run whose final write is queued no longer holds a slot, so the next
        # claim overlaps that write instead of waiting for it; at most 10 × `limit`
        # such runs are let off, so a slow database still throttles claiming.
        return len(self._runs) - min(self._finishing, 10 * self._limit)

    def _free(self) -> int:
        if self._limit <= 0 or self._above_rss():
            return 0
        return self._limit - self._busy()

    def _above_rss(self) -> bool:
        ceiling = self.settings.max_rss_mb
        if ceiling is None:
            return False
        now = time.monotonic()
        if now - self._rss_checked >= 0.5:
            self._rss_checked = now
            over = self._process.memory_info().rss > ceiling * 1024 * 1024
            if over != self._over_rss:
                log.warning(
                    "RSS %s the %d MB ceiling: %s claiming",
                    "above" if over else "back below",
                    ceiling,
                    "stopped" if over else "resumed",
                )
            self._over_rss = over
        return self._over_rss

    async def _sleep(self, seconds: float) -> bool:
        """Wait for a wake-up or ``seconds``; True when a notify woke us."""
        await self._wake.wait(seconds)
        self._wake.clear()
        if self._runs:
            # Runs finishing in one flush wake us one after the other: let them
            # all land so the next claim takes the freed slots in one batch. (An
            # idle worker has nothing to wait for: it claims at once.)
            for _ in range(3):
                await asyncio.sleep(0)
        notified, self._notified = self._notified, False
        return notified

    async def _claim(self, n: int) -> list[ClaimedTask]:
        try:
            claimed = await self.broker.claim(self.worker_id, n)
        except Exception as exc:
            if not is_connection_error(exc):
                log.exception("claim failed")
            else:
                log.warning("database unavailable while claiming (%s); retrying", exc)
            await asyncio.sleep(min(self.settings.poll_interval, 1.0))
            return []
        self.claimed_total += len(claimed)
        return claimed

    async def _queue_empty(self) -> bool:
        try:
            return await self.broker.store.count_claimable() == 0
        except Exception as exc:
            log.warning("could not count the queue (%s)", exc)
            return False

    # -- runs -------------------------------------------------------------------
    def _spawn(self, task: ClaimedTask) -> None:
        old = self._runs.get(task.id)
        if old is not None and old.handle is not None:
            # Recovered and claimed again by us while the old run still ran.
            self._cancel_run(old, "lease")
        if old is not None and old.finishing:
            self._finishing -= 1
        run = _Run(task)
        self._runs[task.id] = run
        run.handle = asyncio.create_task(self._execute(run), name=f"falsework-task-{task.id}")

    def _cancel_run(self, run: _Run, reason: str) -> None:
        if run.finishing or run.handle is None or run.handle.done():
            return
        if run.reason is None:
            run.reason = reason
        run.handle.cancel()

    async def _execute(self, run: _Run) -> None:
        task = run.task
        io = TaskChannel(self._batcher, task)
        try:
            try:
                output = await self.executor(task, io)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if run.reason is None:
                    raise  # the worker itself is being torn down
                if current is not None:
                    current.uncancel()
                if run.reason == "cancel":
                    await self._finish(run, "cancelled", "cancelled", {"message": _CANCELLED})
                elif run.reason == "shutdown":
                    self._mark_finishing(run)
                    await self._batcher.release(task.id, task.claim_token)
                return
            except LeaseLostError:
                log.warning("task %s: lease lost, its run stops here", task.id)
                return
            except Exception as exc:
                if run.reason == "cancel":
                    await self._finish(run, "cancelled", "cancelled", {"message": _CANCELLED})
                    return
                if isinstance(exc, FalseworkError):
                    await self._fail(run, exc.name, exc.message)
                else:
                    log.exception("task %s: the executor raised", task.id)
                    await self._fail(run, "Error", str(exc))
                return
            try:
                body = dumps({"message": "Run completed with status: completed", "output": output})
            except (TypeError, ValueError) as exc:
                log.exception("task %s: its output is not JSON", task.id)
                await self._fail(run, "Error", f"The task output is not JSON: {exc}")
                return
            await self._finish_raw(run, "completed", "completion", body)
        except LeaseLostError:
            log.warning("task %s: lease lost before its final write", task.id)
        except Exception:
            log.exception("task %s: its final write failed", task.id)
        finally:
            self._batcher.forget(task.id, task.claim_token)
            if self._runs.get(task.id) is run:
                del self._runs[task.id]
                if run.finishing:
                    self._finishing -= 1
            self._wake.set()

    def _mark_finishing(self, run: _Run) -> None:
        if not run.finishing and self._runs.get(run.task.id) is run:
            run.finishing = True
            self._finishing += 1
            self._wake.set()

    async def _fail(self, run: _Run, name: str, message: str) -> None:
        error = {"name": name, "message": message}
        body = {"message": "Run completed with status: failed", "error": error}
        await self._finish(run, "failed", "completion", body)

    async def _finish(self, run: _Run, status: str, event_type: str, body: JSONObject) -> None:
        await self._finish_raw(run, status, event_type, dumps(body))

    async def _finish_raw(self, run: _Run, status: str, event_type: str, body: str) -> None:
        self._mark_finishing(run)
        await self._batcher.finish(
            Finish(
                task_id=run.task.id,
                token=run.task.claim_token,
                status=status,
                event_type=event_type,
                event_body=body,
                keep_secrets=status != "completed",
            )
        )

    # -- signals ----------------------------------------------------------------
    def _on_new_tasks(self) -> None:
        self._notified = True
        self._wake.set()

    def _on_cancel(self, task_id: str) -> None:
        run = self._runs.get(task_id)
        if run is not None:
            self._cancel_run(run, "cancel")

    def _on_refused(self, task_ids: set[str]) -> None:
        for task_id in task_ids:
            run = self._runs.get(task_id)
            if run is not None:
                self._cancel_run(run, "lease")

    # -- side tasks -------------------------------------------------------------
    async def _register(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self.broker.store.worker_register(
                    self.worker_id, socket.gethostname(), os.getpid(), self._limit
                )
                return
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                log.warning("database unavailable while registering (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            try:
                await self.beat()
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                log.warning("database unavailable for the heartbeat (%s); retrying", exc)

    async def beat(self) -> None:
        """One heartbeat: refresh our tasks' leases, read our limit, spot lost leases."""
        sent = {tid: run.task.claim_token for tid, run in self._runs.items()}
        pending = self._pending_limit
        owned, limit = await self.broker.store.heartbeat(self.worker_id, list(sent), pending)
        if self._pending_limit == pending:
            self._pending_limit = None
        if limit is None:
            await self._register()
        elif pending is None and limit != self._limit:
            log.info("worker limit changed from %d to %d", self._limit, limit)
            self._limit = int(limit)
            self._wake.set()
        for tid, token in sent.items():
            run = self._runs.get(tid)
            if run is None or run.task.claim_token != token:
                continue
            mine = owned.get(tid)
            if mine is None or mine[0] != token:
                log.warning("task %s: lease lost (recovered elsewhere); cancelling", tid)
                self._cancel_run(run, "lease")
            elif mine[1]:
                self._cancel_run(run, "cancel")

    # -- shutdown ---------------------------------------------------------------
    async def _shutdown(self) -> None:
        handles = [r.handle for r in self._runs.values() if r.handle is not None]
        if handles:
            grace = self.settings.shutdown_grace
            log.info("waiting up to %.0fs for %d run(s)", grace, len(handles))
            await asyncio.wait(handles, timeout=self.settings.shutdown_grace)
        left = [r for r in self._runs.values() if r.handle is not None and not r.handle.done()]
        for run in left:
            self._cancel_run(run, "shutdown")
        if left:
            log.info("released %d run(s) for another worker", len(left))
            await asyncio.wait([r.handle for r in left if r.handle is not None], timeout=30)
        try:
            await asyncio.wait_for(self._batcher.flushed(), timeout=30)
        except TimeoutError:
            log.error("could not write the last batch before stopping")
        await self._supervisor.stop()
        try:
            await self.broker.store.worker_delete(self.worker_id)
        except Exception as exc:
            log.warning("could not unregister the worker (%s)", exc)


_CANCELLED = "Run completed with status: cancelled"
