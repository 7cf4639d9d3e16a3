"""The lease rules, once, as pure functions both stores execute.

**Fencing**: a worker may write to a task only while the task is ``processing``
and carries the claim token the worker got when it claimed it. A token changes
at every claim and is cleared by the final write, so a worker whose lease
expired (the task was re-opened and claimed elsewhere, or finished) can no
longer touch the task: its writes are refused, none of them lands. What a store
writes is always ``plan_writes(batch, the tasks' (claim_token, status) as locked
by the writing transaction)``: SQLite locks and reads them, asks, and writes in
one transaction; Postgres asks first for the state it expects and sends the plan
with that state in one statement, which writes it only if the locked tasks hold
exactly that state (else it writes nothing and the plan is made again for what
they hold).

**Stale tasks**: what the janitor does with a task whose heartbeat is too old
(``stale_outcome``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from falsework.engine.models import StaleOutcome, WriteBatch


@dataclass(frozen=True)
class WritePlan:
    """What a batch may write: rows in the order they are to be written."""

    refused: frozenset[str]
    events: list[tuple[str, str, str]] = field(default_factory=list)  # task, type, body
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # task, step id, state
    checkpoints: list[tuple[str, str, str]] = field(default_factory=list)  # task, key, value
    finishes: list[tuple[str, str, bool]] = field(default_factory=list)  # task, status, keep
    releases: list[str] = field(default_factory=list)

    @property
    def written(self) -> bool:
        return bool(self.events or self.steps or self.checkpoints or self.finishes or self.releases)

    @property
    def state_task_ids(self) -> list[str]:
        """The tasks whose step state or checkpoints change, each once, sorted."""
        return sorted({r[0] for r in self.steps} | {r[0] for r in self.checkpoints})

    @property
    def event_task_ids(self) -> list[str]:
        """The tasks with new events (their subscribers are notified), sorted."""
        return sorted({e[0] for e in self.events})


def plan_writes(batch: WriteBatch, current: Mapping[str, tuple[str | None, str]]) -> WritePlan:
    """The fencing rule: of ``batch``, what may be written, given ``current``,
    each task's ``(claim_token, status)`` as locked in the writing transaction
    (a task missing from it is refused).

    A task is refused unless it is ``processing`` under the token its writer
    holds; a refused task writes nothing. The others write their events in
    order, then their step state and checkpoints, then their final events and
    statuses, then their releases.

    A *superseded* marker (a run that stopped because its lease ended) is the
    one write a refused task may still make: its event is appended while the
    task is open or processing (another run's), so the log shows that an earlier
    run existed, and never after a final event. A task still under the writer's
    token is released with its marker.
    """
    refused = frozenset(
        tid for tid, token in batch.tokens.items() if current.get(tid) != (token, "processing")
    )
    events = [(tid, typ, body) for tid, _token, typ, body in batch.events if tid not in refused]
    finishes = [f for f in batch.finishes if f.task_id not in refused]
    events += [(f.task_id, f.event_type, f.event_body) for f in finishes]
    releases = [tid for tid in batch.releases if tid not in refused]
    for tid, body in batch.superseded.items():
        if tid not in refused:
            # still ours (the run stopped itself in time): the marker, and the task
            # goes back to the queue at once instead of waiting to be found stale
            events.append((tid, "log", body))
            releases.append(tid)
        elif current.get(tid, (None, ""))[1] in ("open", "processing"):
            # another run has it: the marker joins its log, touching nothing else;
            # never after a final event (the task row is locked, so none can follow)
            events.append((tid, "log", body))
    return WritePlan(
        refused=refused,
        events=events,
        steps=_rows(batch.steps, refused),
        checkpoints=_rows(batch.checkpoints, refused),
        finishes=[(f.task_id, f.status, f.keep_secrets) for f in finishes],
        releases=releases,
    )


def _rows(
    values: Mapping[str, Mapping[str, str]], refused: frozenset[str]
) -> list[tuple[str, str, str]]:
    return [
        (tid, key, value)
        for tid, items in values.items()
        if tid not in refused
        for key, value in items.items()
    ]


def stale_outcome(recovery: str, cancel_requested: bool) -> StaleOutcome:
    """What becomes of a task whose worker stopped heartbeating: a pending cancel
    finishes it ``cancelled``; recovery ``none`` fails it; otherwise it is
    re-opened (``recovered``) for another worker, its step state kept for a
    resume or cleared for a start-over."""
    if cancel_requested:
        return "cancelled"
    if recovery == "none":
        return "failed"
    return "recovered"
