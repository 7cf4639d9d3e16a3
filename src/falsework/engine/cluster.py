"""Cluster metrics: computed from the database by one node at a time, read by all.

A snapshot (one row of ``cluster_metrics``) holds the gauges (tasks by status,
the oldest open task's wait, the workers alive and their capacity) and two
cumulative histograms: run durations by template and final status, step
durations by action and status. Whoever is asked for the metrics and finds the
snapshot older than ``every`` seconds tries the ``metrics`` lease; the one node
that gets it reads the gauges and the runs and steps that ended in the events
since the snapshot's last event id, adds those to the histograms and stores the
new snapshot (compare-and-set on that id, so a node whose turn ran out never adds
the same events twice). Everyone else reads the row: a scrape of any node costs
one primary-key read, and the counting queries run once per ``every`` for the
whole cluster.

Events are read ``lag`` seconds (``LAG`` by default) behind the clock, so a transaction that commits
late is never passed over; a run appears in the histograms that much later.
The histograms start when the first snapshot is made (no backfill); retention
never makes them go down. Label values are bounded: at most ``MAX_LABELS``
templates and actions, the rest counted as ``other``; no label names a user.
"""

from __future__ import annotations

import uuid
from typing import Any

from falsework.engine.codec import dumps
from falsework.engine.models import Mark, Snapshot
from falsework.engine.store import Store

SNAPSHOT = "cluster"
LEASE = "metrics"
LAG = 30.0
SCAN_LIMIT = 100_000  # events looked at per turn; a backlog goes on at the next one
MAX_LABELS = 200
OTHER = "other"
UNKNOWN = "unknown"
TASK_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
STEP_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
HISTOGRAMS = {"task": TASK_BUCKETS, "step": STEP_BUCKETS}


def empty_body() -> dict[str, Any]:
    return {
        "buckets": {kind: list(b) for kind, b in HISTOGRAMS.items()},
        "task": {},
        "step": {},
        "gauges": {},
    }


def observe(body: dict[str, Any], mark: Mark) -> None:
    """Add one ended run or step to the histograms of ``body``.

    A series is ``{label: {status: [per-bucket counts..., +Inf count, sum]}}``
    (counts per bucket, not cumulative)."""
    if mark.seconds is None:
        return
    series: dict[str, dict[str, list[float]]] = body[mark.kind]
    label = mark.label or UNKNOWN
    if label not in series and len(series) >= MAX_LABELS:
        label = OTHER
    buckets = HISTOGRAMS[mark.kind]
    counts = series.setdefault(label, {}).setdefault(mark.status, [0] * (len(buckets) + 2))
    seconds = max(0.0, mark.seconds)
    slot = next((i for i, le in enumerate(buckets) if seconds <= le), len(buckets))
    counts[slot] += 1
    counts[-1] += seconds


class ClusterMetrics:
    def __init__(self, store: Store, *, scan_limit: int = SCAN_LIMIT) -> None:
        self._store = store
        self._scan_limit = scan_limit

    async def current(
        self, *, every: float, alive_within: float, lag: float = LAG
    ) -> Snapshot | None:
        """The latest snapshot, made anew first when it is older than ``every``
        seconds and this node gets the turn; None before any node made one."""
        snap = await self._store.metrics_snapshot_get(SNAPSHOT)
        if snap is not None and snap.age < every:
            return snap
        # a fresh holder each time: the turn is taken only once the last one lapsed
        if not await self._store.lease_take(LEASE, uuid.uuid4().hex, every):
            return snap
        made = await self.compute(snap, alive_within=alive_within, lag=lag)
        return made if made is not None else await self._store.metrics_snapshot_get(SNAPSHOT)

    async def compute(
        self, previous: Snapshot | None, *, alive_within: float, lag: float = LAG
    ) -> Snapshot | None:
        """Make the next snapshot from ``previous``; None when another node stored
        one first."""
        body = previous.body if previous is not None else empty_body()
        if body.get("buckets") != {kind: list(b) for kind, b in HISTOGRAMS.items()}:
            body = empty_body()  # the buckets changed with a new version: start again
        gauges = await self._store.metrics_gauges(alive_within)
        after = previous.last_event_id if previous is not None else None
        marks = await self._store.metrics_marks(after, lag, self._scan_limit)
        for mark in marks.marks:
            observe(body, mark)
        body["gauges"] = {
            "tasks": gauges.tasks,
            "oldest_open_age": gauges.oldest_open_age,
            "workers_alive": gauges.workers_alive,
            "worker_capacity": gauges.worker_capacity,
        }
        if not await self._store.metrics_snapshot_put(SNAPSHOT, after, marks.until, dumps(body)):
            return None
        return Snapshot(marks.until, body, 0.0)
