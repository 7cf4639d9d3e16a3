"""The TaskWorker: one per process; waits for capacity, claims a batch, spawns.

The loop never awaits a run. Side tasks (heartbeat, janitor, retention, flusher) are
supervised: one that dies is logged and restarted. Each run's lifecycle is in
``engine/runs.py``; the worker talks to the database only through its broker.
See docs/engine.md for the balance formula and every option.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid

import psutil

from falsework.engine.batcher import SETTLE_TURNS, Batcher
from falsework.engine.broker import MAX_LIMIT, Broker
from falsework.engine.channel import TaskChannel
from falsework.engine.codec import dumps
from falsework.engine.fence import Fence, clock
from falsework.engine.janitor import Janitor
from falsework.engine.models import ClaimedTask, Finish, Lease
from falsework.engine.options import WorkerOptions
from falsework.engine.runs import Run, Runs, RunState, StopReason
from falsework.engine.supervisor import Supervisor
from falsework.engine.wake import Wake
from falsework.errors import DatabaseUnavailableError, FalseworkError, InputError, LeaseLostError
from falsework.taskio import Executor, Outcome

log = logging.getLogger("falsework.engine")

# How often the worker checks its runs' lease deadlines and its own clock.
_TICK = 0.1
# How soon a heartbeat is tried again after the database was away.
_BEAT_RETRY = 0.25
# The most tasks one claim takes (a worker with more free slots claims again at once).
_CLAIM_BATCH = 500


def _settled(fut: asyncio.Future[None]) -> None:
    """A write nobody waits for: its outcome is read so none goes unretrieved."""
    if not fut.cancelled() and fut.exception() is not None:
        log.info("a release was refused: %s", fut.exception())


class TaskWorker:
    def __init__(self, broker: Broker, executor: Executor, options: WorkerOptions) -> None:
        self.broker = broker
        self.executor = executor
        self.options = options
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._limit = options.concurrency
        self._pending_limit: int | None = None
        self._runs = Runs()
        self._wake = Wake()
        self._notified = False
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._supervisor = Supervisor()
        self._batcher = Batcher(
            broker.write,
            broker.hub,
            self._on_refused,
            self._on_failed,
            parallel=broker.parallel_writes,
            hold=self._settling_is_set,
        )
        self._settling = False  # woken with runs: about to claim their slots
        # the last claim took all it asked for: the queue likely holds more, so
        # the next claim is worth going out ahead of a flush (Batcher's hold)
        self._claims_full = False
        self._janitor = Janitor(
            broker,
            interval=options.janitor_interval,
            stale_timeout=options.stale_timeout,
            secret_retention=options.secret_retention,
        )
        self._fence = Fence(options.fence_after, stall=max(options.lease_margin / 2, 4 * _TICK))
        self._beat_now = asyncio.Event()
        self._beat_failed = False
        self._retention = (
            broker.retention(options.retention, self.worker_id)
            if options.retention is not None
            else None
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
        await self._register()
        hub = self.broker.hub
        hub.watch_tasks(self._on_new_tasks)
        hub.on_cancel(self._on_cancel)
        self._supervisor.start("flusher", self._batcher.run)
        self._supervisor.start("heartbeat", self._heartbeat_loop)
        self._supervisor.start("janitor", self._janitor.run)
        self._supervisor.start("fence", self._fence_loop)
        if self._retention is not None:
            self._supervisor.start("retention", self._retention.run)
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
            # At most _CLAIM_BATCH at a time: the runs one claim spawns take their
            # first steps in one turn of the loop, and 10,000 at once held it long
            # enough to look like a stall (every step then waits for a heartbeat)
            # and to let the leases run out before one came back.
            want = min(free, _CLAIM_BATCH)
            claimed = await self._claim(want)
            for task, sent in claimed:
                self._spawn(task, sent)
            self._claims_full = len(claimed) == want
            if self._claims_full:
                continue
            if burst and not claimed:
                if not self._runs and await self._queue_empty():
                    return
                await self._sleep(self._poll_timeout())
                continue
            if await self._sleep(self._poll_timeout()):
                # Woken by a notify: a fuller node waits longer, so the emptiest
                # node claims first (docs/engine.md, "Balance").
                delay = self._fill() * self.options.max_claim_delay
                if delay > 0:
                    await asyncio.sleep(delay)

    def _busy(self) -> int:
        # A run whose final write is queued no longer holds a slot, so the next
        # claim overlaps that write instead of waiting for it; at most 10 × `limit`
        # such runs are let off, so a slow database still throttles claiming.
        return len(self._runs) - min(self._runs.finishing, 10 * self._limit)

    def _free(self) -> int:
        if self._limit <= 0 or self._above_rss():
            return 0
        return self._limit - self._busy()

    def _fill(self) -> float:
        return min(1.0, self._busy() / self._limit) if self._limit else 1.0

    def _poll_timeout(self) -> float:
        o = self.options
        return o.poll_interval + self._fill() * max(0.0, o.max_poll_interval - o.poll_interval)

    def _above_rss(self) -> bool:
        ceiling = self.options.max_rss_mb
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
            # idle worker has nothing to wait for: it claims at once.) The flush
            # of their final writes waits for the claim (Batcher's hold) when the
            # queue likely has work; otherwise it goes at once, as the claim is
            # likely to find nothing.
            self._settling = self._claims_full
            try:
                for _ in range(SETTLE_TURNS):
                    await asyncio.sleep(0)
            finally:
                self._settling = False
        notified, self._notified = self._notified, False
        return notified

    def _settling_is_set(self) -> bool:
        return self._settling

    async def _claim(self, n: int) -> list[tuple[ClaimedTask, float]]:
        sent = clock()
        try:
            claimed = await self.broker.claim(self.worker_id, n, holds=self._limit)
        except DatabaseUnavailableError as exc:
            log.warning("database unavailable while claiming (%s); retrying", exc)
            await asyncio.sleep(min(self.options.poll_interval, 1.0))
            return []
        except Exception:
            log.exception("claim failed")
            await asyncio.sleep(min(self.options.poll_interval, 1.0))
            return []
        self.claimed_total += len(claimed)
        if claimed and self._fence.expired(sent):
            # The reply came after the lease it started had already run out: the
            # tasks may be someone else's by now. They go back (fenced by token).
            log.warning(
                "a claim of %d task(s) answered after %.1fs, past its lease; released",
                len(claimed),
                clock() - sent,
            )
            for task in claimed:
                self._batcher.release(task.id, task.claim_token).add_done_callback(_settled)
            return []
        return [(task, sent) for task in claimed]

    async def _queue_empty(self) -> bool:
        try:
            return await self.broker.queue_empty()
        except DatabaseUnavailableError as exc:
            log.warning("could not count the queue (%s)", exc)
            return False

    # -- runs -------------------------------------------------------------------
    def _spawn(self, task: ClaimedTask, sent: float) -> None:
        run = Run(task, valid_until=self._fence.deadline(sent))
        old = self._runs.start(run)
        if old is not None:
            # Recovered and claimed again by us while the old run still ran.
            old.cancel(StopReason.LEASE)
        run.handle = asyncio.create_task(self._execute(run), name=f"falsework-task-{task.id}")

    async def _execute(self, run: Run) -> None:
        task = run.task

        async def gate() -> None:
            # a step starts only while this run's lease is sure (engine/fence.py)
            if not self._fence.open(run.valid_until):
                await self._fence.wait_open(lambda: run.valid_until)

        try:
            try:
                outcome = await self.executor(task, TaskChannel(self._batcher, task, gate))
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if run.stop is None:
                    raise  # the worker itself is being torn down
                if current is not None:
                    current.uncancel()
                if run.stop is StopReason.SHUTDOWN:
                    self._finishing(run)
                    await self._batcher.release(task.id, task.claim_token)
                    return
                if run.stop in (StopReason.LEASE, StopReason.FENCED):
                    self._supersede(run)
                    return
                broken = self._batcher.broken(task.id, task.claim_token)
                if run.stop is StopReason.BROKEN and broken is not None:
                    outcome = self.broker.wording.failed(broken.name, broken.message)
                else:
                    outcome = self.broker.wording.cancelled()
            except LeaseLostError:
                log.warning("task %s: lease lost, its run stops here", task.id)
                self._supersede(run)
                return
            except Exception as exc:
                outcome = self._broken(run, exc)
            await self._finish(run, outcome)
        except LeaseLostError:
            log.warning("task %s: lease lost before its final write", task.id)
            self._supersede(run)
        except Exception:
            log.exception("task %s: its final write failed", task.id)
        finally:
            self._batcher.forget(task.id, task.claim_token)
            self._runs.end(run)
            self._wake.set()

    def _supersede(self, run: Run) -> None:
        """Leave a marker in the task's log: this run existed and stopped here."""
        task = run.task
        why = (
            "it could not renew its lease in time"
            if run.stop is StopReason.FENCED
            else "another run owns the task now"
        )
        body = {
            "message": f"Attempt {task.attempt} stopped on worker {self.worker_id}: {why}",
            "superseded": {
                "workerId": self.worker_id,
                "attempt": task.attempt,
                "reason": "fenced" if run.stop is StopReason.FENCED else "lease-lost",
            },
        }
        self._batcher.superseded(task.id, task.claim_token, dumps(body))

    def _broken(self, run: Run, exc: Exception) -> Outcome:
        """The executor raised where it should have answered an outcome."""
        wording = self.broker.wording
        if run.stop is StopReason.CANCEL:
            return wording.cancelled()
        if isinstance(exc, FalseworkError):
            return wording.failed(exc.name, exc.message)
        log.exception("task %s: the executor raised", run.task.id, exc_info=exc)
        return wording.failed("Error", str(exc) or type(exc).__name__)

    def _finishing(self, run: Run) -> None:
        if self._runs.finish(run):
            self._wake.set()

    async def _finish(self, run: Run, outcome: Outcome) -> None:
        try:
            body = dumps(outcome.body)
        except (TypeError, ValueError) as exc:
            log.exception("task %s: its output is not JSON", run.task.id)
            outcome = self.broker.wording.failed("Error", f"The task output is not JSON: {exc}")
            body = dumps(outcome.body)
        self._finishing(run)
        await self._batcher.finish(
            Finish(
                task_id=run.task.id,
                token=run.task.claim_token,
                status=outcome.status,
                event_type=outcome.event_type,
                event_body=body,
                keep_secrets=outcome.keep_secrets,
            )
        )

    # -- signals ----------------------------------------------------------------
    def _on_new_tasks(self) -> None:
        self._notified = True
        self._wake.set()
        if self._beat_failed:
            # the listener is back (it wakes everyone on connect): so may the
            # database be, and the leases want renewing now
            self._beat_now.set()

    def _on_cancel(self, task_id: str) -> None:
        run = self._runs.get(task_id)
        if run is not None:
            run.cancel(StopReason.CANCEL)

    def _on_failed(self, task_ids: set[str]) -> None:
        # the database refused these runs' writes: their steps stop now, not at
        # their next write
        for task_id in task_ids:
            run = self._runs.get(task_id)
            if run is not None:
                run.cancel(StopReason.BROKEN)

    def _on_refused(self, task_ids: set[str]) -> None:
        for task_id in task_ids:
            run = self._runs.get(task_id)
            if run is not None:
                run.cancel(StopReason.LEASE)

    # -- side tasks -------------------------------------------------------------
    async def _register(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self.broker.register_worker(
                    self.worker_id, socket.gethostname(), os.getpid(), self._limit
                )
                return
            except DatabaseUnavailableError as exc:
                log.warning("database unavailable while registering (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _heartbeat_loop(self) -> None:
        while True:
            wait = _BEAT_RETRY if self._beat_failed else self.options.heartbeat_interval
            try:
                await asyncio.wait_for(self._beat_now.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._beat_now.clear()
            try:
                await self.beat()
                if self._beat_failed:
                    log.info("heartbeat back")
                self._beat_failed = False
            except DatabaseUnavailableError as exc:
                if not self._beat_failed:
                    log.warning("database unavailable for the heartbeat (%s); retrying", exc)
                self._beat_failed = True

    async def beat(self) -> None:
        """One heartbeat: refresh our tasks' leases, read our limit, spot lost leases.

        The leases go in parts of at most ``heartbeat_batch`` tasks, one statement
        each (each within the statement timeout, however many tasks run: 10,000
        leases in one statement outlasted it under load, and every run fenced
        itself), in id order like every multi-row writer. Each part's runs are
        confirmed from that part's send time as it returns; a part that fails
        ends the beat (retried soon), the parts before it stay confirmed."""
        sent = {run.task.id: run.task.claim_token for run in self._runs}
        ids = sorted(sent)
        size = self.options.heartbeat_batch
        first_sent: float | None = None
        for start in range(0, max(len(ids), 1), size):
            part = ids[start : start + size]
            pending = self._pending_limit if start == 0 else None
            sent_at = clock()
            if first_sent is None:
                first_sent = sent_at
            beat = await self.broker.heartbeat(self.worker_id, part, pending, running=len(ids))
            if start == 0:
                await self._stored_limit(beat.limit, pending)
            self._confirm(part, sent, beat.owned, self._fence.deadline(sent_at))
        if first_sent is not None:
            # a stall is cleared only by a whole beat sent after it
            self._fence.confirmed(first_sent)

    async def _stored_limit(self, limit: int | None, pending: int | None) -> None:
        if self._pending_limit == pending:
            self._pending_limit = None
        if limit is None:
            await self._register()
        elif pending is None and limit != self._limit:
            log.info("worker limit changed from %d to %d", self._limit, limit)
            self._limit = int(limit)
            self._wake.set()

    def _confirm(
        self, ids: list[str], sent: dict[str, str], owned: dict[str, Lease], deadline: float
    ) -> None:
        """Extend the runs a heartbeat part confirmed; cancel those it did not."""
        for tid in ids:
            token = sent[tid]
            run = self._runs.get(tid)
            if run is None or run.task.claim_token != token:
                continue
            lease = owned.get(tid)
            if lease is None or lease.claim_token != token:
                if run.state is RunState.FINISHING:
                    # its final write (or release) landed between the snapshot and
                    # the statement, which lists processing tasks only: not a loss
                    continue
                log.warning("task %s: lease lost (recovered elsewhere); cancelling", tid)
                run.cancel(StopReason.LEASE)
            else:
                run.valid_until = max(run.valid_until, deadline)
                if lease.cancel_requested:
                    run.cancel(StopReason.CANCEL)

    async def _fence_loop(self) -> None:
        """Self-fencing (engine/fence.py): cancel the runs whose lease deadline has
        passed; after a stall of this process, heartbeat at once."""
        while True:
            await asyncio.sleep(_TICK)
            if self._fence.tick():
                log.warning("this process stalled; steps wait for a heartbeat to confirm")
                self._beat_now.set()
            now = clock()
            fenced = [
                r
                for r in self._runs
                if r.state is RunState.RUNNING and r.stop is None and now >= r.valid_until
            ]
            for run in fenced:
                run.cancel(StopReason.FENCED)
            if fenced:
                log.warning(
                    "no heartbeat confirmed %d task(s) in time (first: %s): their runs stop",
                    len(fenced),
                    fenced[0].task.id,
                )

    # -- shutdown ---------------------------------------------------------------
    async def _shutdown(self) -> None:
        handles = [r.handle for r in self._runs if r.handle is not None]
        if handles:
            grace = self.options.shutdown_grace
            log.info("waiting up to %.0fs for %d run(s)", grace, len(handles))
            await asyncio.wait(handles, timeout=grace)
        left = [r for r in self._runs if r.handle is not None and not r.handle.done()]
        for run in left:
            run.cancel(StopReason.SHUTDOWN)
        if left:
            log.info("released %d run(s) for another worker", len(left))
            await asyncio.wait([r.handle for r in left if r.handle is not None], timeout=30)
        try:
            await asyncio.wait_for(self._batcher.flushed(), timeout=30)
        except TimeoutError:
            log.error("could not write the last batch before stopping")
        await self._supervisor.stop()
        try:
            await self.broker.unregister_worker(self.worker_id)
        except DatabaseUnavailableError as exc:
            log.warning("could not unregister the worker (%s)", exc)
