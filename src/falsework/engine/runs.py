"""A worker's runs: each one's lifecycle as explicit states, and the worker's
capacity derived from them (no counter kept in step by hand)."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterator
from dataclasses import dataclass

from falsework.engine.models import ClaimedTask


class RunState(enum.Enum):
    RUNNING = "running"  # the executor runs: the run holds a slot
    FINISHING = "finishing"  # its final write is queued: its slot is free again


class StopReason(enum.Enum):
    """Why the worker stopped a run (it cancels the run's asyncio task)."""

    CANCEL = "cancel"  # the task was cancelled: its final write says so
    LEASE = "lease"  # another worker owns the task now: nothing more is written
    # this worker could not renew its lease in time (engine/fence.py): it stops
    # before anyone may recover the task, and leaves a superseded marker
    FENCED = "fenced"
    # the database refused this run's writes (TaskWriteError): it fails now
    BROKEN = "broken"
    SHUTDOWN = "shutdown"  # this worker is stopping: the task is released, not ended


@dataclass(eq=False, slots=True)
class Run:
    task: ClaimedTask
    state: RunState = RunState.RUNNING
    stop: StopReason | None = None
    handle: asyncio.Task[None] | None = None
    # self-fencing: the run may go on until then (engine/fence.py's clock)
    valid_until: float = 0.0

    def cancel(self, reason: StopReason) -> None:
        """Stop the executor (the first reason given is the one that counts); a
        finishing or finished run is left alone."""
        if self.state is RunState.FINISHING or self.handle is None or self.handle.done():
            return
        if self.stop is None:
            self.stop = reason
        self.handle.cancel()


class Runs:
    """The current run of each task, and which of them are finishing."""

    def __init__(self) -> None:
        self._by_task: dict[str, Run] = {}
        self._finishing: set[Run] = set()

    def __len__(self) -> int:
        return len(self._by_task)

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._by_task.values()))

    def get(self, task_id: str) -> Run | None:
        return self._by_task.get(task_id)

    @property
    def finishing(self) -> int:
        return len(self._finishing)

    def start(self, run: Run) -> Run | None:
        """Make ``run`` its task's current run; returns the run it replaces (the
        task was recovered and claimed again here while the old run still ran)."""
        old = self._by_task.get(run.task.id)
        if old is not None:
            self._finishing.discard(old)
        self._by_task[run.task.id] = run
        return old

    def finish(self, run: Run) -> bool:
        """``run`` has queued its final write; False when it is no longer current."""
        if self._by_task.get(run.task.id) is not run or run.state is RunState.FINISHING:
            return False
        run.state = RunState.FINISHING
        self._finishing.add(run)
        return True

    def end(self, run: Run) -> None:
        if self._by_task.get(run.task.id) is run:
            del self._by_task[run.task.id]
        self._finishing.discard(run)
