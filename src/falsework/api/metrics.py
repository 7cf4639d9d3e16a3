"""Prometheus metrics of one process, on a registry of its own.

The engine and runner know nothing of Prometheus: the counters of claimed and
finished tasks, claim latency and step durations are measured by wrapping the
executor the worker calls (and the ``TaskIO`` it hands to the runner).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from falsework.taskio import Executor, Outcome, TaskInput, TaskIO
from falsework.types import JSONObject

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.tasks_created = Counter(
            "falsework_tasks_created", "Tasks created through this process.", registry=r
        )
        self.tasks_claimed = Counter(
            "falsework_tasks_claimed", "Tasks claimed by this process's worker.", registry=r
        )
        self.tasks_completed = Counter(
            "falsework_tasks_completed",
            "Tasks this process's worker finished, by final status.",
            ["status"],
            registry=r,
        )
        self.worker_running = Gauge(
            "falsework_worker_running", "Tasks running in this process's worker.", registry=r
        )
        self.worker_limit = Gauge(
            "falsework_worker_limit", "Concurrency limit of this process's worker.", registry=r
        )
        self.claim_latency = Histogram(
            "falsework_claim_latency_seconds",
            "Time from a task's creation to its claim by this process.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.step_duration = Histogram(
            "falsework_step_duration_seconds",
            "Duration of one step, by action.",
            ["action"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600),
            registry=r,
        )
        self.eventstream_clients = Gauge(
            "falsework_eventstream_clients", "Open SSE event streams.", registry=r
        )

    def watch_worker(self, running: Callable[[], float], limit: Callable[[], float]) -> None:
        self.worker_running.set_function(running)
        self.worker_limit.set_function(limit)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def instrument(self, executor: Executor) -> Executor:
        """Wrap the worker's executor to count claims, outcomes and step durations.

        Claim latency is measured from the claimed task's ``created_at`` (the
        engine's ClaimedTask carries it), so no lookup is needed.
        """

        def observe(created: datetime, claimed: datetime) -> None:
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            self.claim_latency.observe(max(0.0, (claimed - created).total_seconds()))

        async def run(task: TaskInput, io: TaskIO) -> Outcome:
            self.tasks_claimed.inc()
            claimed = datetime.now(UTC)
            created = getattr(task, "created_at", None)
            if isinstance(created, datetime):
                observe(created, claimed)
            try:
                outcome = await executor(task, _TimedIO(io, _actions(task.spec), self))
            except asyncio.CancelledError:
                self.tasks_completed.labels("cancelled").inc()
                raise
            except Exception:
                self.tasks_completed.labels("failed").inc()
                raise
            self.tasks_completed.labels(outcome.status).inc()
            return outcome

        return run


def _actions(spec: JSONObject) -> dict[str, str]:
    steps = spec.get("steps") if isinstance(spec, dict) else None
    found: dict[str, str] = {}
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and "id" in step:
            found[str(step["id"])] = str(step.get("action", "unknown"))
    return found


class _TimedIO:
    """A TaskIO that times each step from its 'processing' event to its last one."""

    def __init__(self, inner: TaskIO, actions: dict[str, str], metrics: Metrics) -> None:
        self._inner = inner
        self._actions = actions
        self._metrics = metrics
        self._started: dict[str, float] = {}

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        step = body.get("stepId")
        status = body.get("status")
        if isinstance(step, str) and isinstance(status, str):
            if status == "processing":
                self._started[step] = time.monotonic()
            elif step in self._started:
                elapsed = time.monotonic() - self._started.pop(step)
                action = self._actions.get(step, "unknown")
                self._metrics.step_duration.labels(action).observe(elapsed)
        await self._inner.emit(body, type)

    async def save_step(self, step_id: str, state: JSONObject) -> None:
        await self._inner.save_step(step_id, state)

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]:
        return await self._inner.checkpoint_get(key)

    async def checkpoint_set(self, key: str, value: Any) -> None:
        await self._inner.checkpoint_set(key, value)

    def __getattr__(self, name: str) -> Any:
        # Anything the engine's TaskIO offers beyond the protocol passes through.
        return getattr(self._inner, name)
