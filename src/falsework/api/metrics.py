"""Prometheus metrics of one process, and of the cluster, on a registry of its own.

The engine and runner know nothing of Prometheus: the counters of claimed and
finished tasks, claim latency and step durations are measured by wrapping the
executor the worker calls (and the ``TaskIO`` it hands to the runner). The
cluster's metrics are the engine's snapshot (``engine/cluster.py``), which the
``/metrics`` route refreshes before rendering; ``ClusterCollector`` turns it
into metric families.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from falsework.engine.cluster import HISTOGRAMS
from falsework.engine.models import STATUSES, Snapshot
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
            "falsework_worker_step_duration_seconds",
            "Duration of one step run by this process's worker, by action.",
            ["action"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600),
            registry=r,
        )
        self.eventstream_clients = Gauge(
            "falsework_eventstream_clients", "Open SSE event streams.", registry=r
        )
        self.cluster = ClusterCollector()
        r.register(self.cluster)

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


class ClusterCollector(Collector):
    """The cluster's metrics from the latest snapshot (nothing before the first)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.read_at = 0.0  # time.monotonic() when the snapshot was read
        self.tried_at = -1e9  # ... when the route last asked for it

    def describe(self) -> list[Metric]:
        return []  # the families depend on the snapshot: collected at each scrape

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        gauges = snap.body.get("gauges") or {}
        tasks = GaugeMetricFamily(
            "falsework_tasks", "Tasks in the database, by status.", labels=["status"]
        )
        counts = gauges.get("tasks") or {}
        for status in STATUSES:
            tasks.add_metric([status], float(counts.get(status, 0)))
        yield tasks
        yield GaugeMetricFamily(
            "falsework_oldest_open_task_age_seconds",
            "How long the oldest claimable open task has waited (0: none waits).",
            value=float(gauges.get("oldest_open_age", 0.0)),
        )
        yield GaugeMetricFamily(
            "falsework_workers_alive",
            "Workers whose heartbeat is younger than the stale timeout.",
            value=float(gauges.get("workers_alive", 0)),
        )
        yield GaugeMetricFamily(
            "falsework_worker_capacity",
            "The concurrency limits of the workers alive, summed.",
            value=float(gauges.get("worker_capacity", 0)),
        )
        yield GaugeMetricFamily(
            "falsework_cluster_metrics_age_seconds",
            "Age of the cluster metrics snapshot these values come from.",
            value=snap.age + max(0.0, time.monotonic() - self.read_at),
        )
        yield _histogram(
            "falsework_task_duration_seconds",
            "Runs of tasks, from their first event to their final one, by template and "
            "final status (cluster-wide).",
            "template",
            HISTOGRAMS["task"],
            snap.body.get("task") or {},
        )
        yield _histogram(
            "falsework_step_duration_seconds",
            "Steps, from their start to their end, by action and status (cluster-wide).",
            "action",
            HISTOGRAMS["step"],
            snap.body.get("step") or {},
        )


def _histogram(
    name: str, doc: str, label: str, buckets: tuple[float, ...], series: dict[str, Any]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label, "status"])
    for value, by_status in sorted(series.items()):
        for status, counts in sorted(by_status.items()):
            cumulative: list[tuple[str, float]] = []
            total = 0.0
            for le, n in zip([*map(str, buckets), "+Inf"], counts[:-1], strict=True):
                total += n
                cumulative.append((le, total))
            family.add_metric([value, status], cumulative, sum_value=float(counts[-1]))
    return family


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
