"""The engine's records: what the broker returns, what an executor receives, and
what crosses the store contract (``engine/store.py``) in either direction.

Stores map their rows to these and take these as parameters; no raw row and no
driver type leaves a store.
"""

from __future__ import annotations

import enum
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from falsework.errors import InputError
from falsework.taskio import Recovery
from falsework.types import JSONObject

STATUSES = ("open", "processing", "completed", "failed", "cancelled")
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
EVENT_TYPES = ("log", "completion", "cancelled", "recovered")


# The last timestamp formatted, and its text: the events one flush wrote share
# one ``created_at`` object when a notification carried them (the reference
# held here keeps that object, so ``is`` cannot match a new one at its address).
_LAST_ISO: tuple[datetime | None, str] = (None, "")


def iso(ts: datetime | None) -> str | None:
    """Backstage's timestamp shape: ``2026-11-28T19:04:24.000Z``."""
    global _LAST_ISO
    if ts is None:
        return None
    last, text = _LAST_ISO
    if ts is last:
        return text
    utc_ts = ts if ts.tzinfo is UTC else ts.astimezone(UTC)
    # isoformat truncates to milliseconds like the strftime it replaces, at a
    # third of its cost (every event of every stream goes through here)
    text = utc_ts.isoformat(timespec="milliseconds")[:23] + "Z"
    _LAST_ISO = (ts, text)
    return text


@dataclass(frozen=True)
class Decode:
    """How a store's driver hands back a timestamp and a JSON value (SQLite: text
    for both; asyncpg: already decoded by its codecs)."""

    ts: Callable[[Any], datetime]
    json: Callable[[Any], Any]


def _as_is(value: Any) -> Any:
    return value


DECODED = Decode(ts=_as_is, json=_as_is)

R = TypeVar("R")


_KINDS: dict[type, tuple[tuple[str, str | None], ...]] = {}


def _converters(cls: type) -> tuple[tuple[str, str | None], ...]:
    """Each field of a record and what its value needs: ``ts``, ``json``, ``float``
    or nothing, by the field's type (worked out once per record type)."""
    known = _KINDS.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    kinds: list[tuple[str, str | None]] = []
    for f in fields(cls):
        hint = hints[f.name]
        # X | None: what X needs
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        options = [t for t in typing.get_args(hint) if t is not type(None)] if union else [hint]
        kind = None
        for t in options:
            if t is datetime:
                kind = "ts"
            elif t is float:
                kind = "float"
            elif t is dict or typing.get_origin(t) is dict:
                kind = "json"
        kinds.append((f.name, kind))
    _KINDS[cls] = tuple(kinds)
    return _KINDS[cls]


def record_of(cls: type[R], row: Any, decode: Decode) -> R:
    """The record ``cls`` from a row whose columns bear its fields' names: a
    timestamp field through ``decode.ts``, a JSON field through ``decode.json``, a
    float field through ``float`` (Postgres answers numerics as Decimal); NULL
    stays None. One mapping for both stores instead of one by hand per query."""
    values: dict[str, Any] = {}
    for name, kind in _converters(cls):
        value = row[name]
        if value is not None and kind is not None:
            value = float(value) if kind == "float" else getattr(decode, kind)(value)
        values[name] = value
    return cls(**values)


# -- what higher layers see ------------------------------------------------------
@dataclass(frozen=True)
class Task:
    id: str
    spec: JSONObject
    status: str
    created_by: str | None
    created_at: datetime
    last_heartbeat_at: datetime | None
    attempt: int = 0
    priority: int = 0
    run_after: datetime | None = None
    recovery: Recovery = "resume"
    claimed_by: str | None = None
    cancel_requested: bool = False
    finished_at: datetime | None = None
    step_state: dict[str, JSONObject] = field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_json(self) -> JSONObject:
        """Backstage's task shape; never the secrets."""
        out: JSONObject = {
            "id": self.id,
            "spec": self.spec,
            "status": self.status,
            "createdAt": iso(self.created_at),
            "lastHeartbeatAt": iso(self.last_heartbeat_at),
        }
        if self.created_by is not None:
            out["createdBy"] = self.created_by
        return out


@dataclass(frozen=True)
class Event:
    id: int
    task_id: str
    type: str
    body: JSONObject
    created_at: datetime
    is_task_recoverable: bool = True

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "isTaskRecoverable": self.is_task_recoverable,
            "taskId": self.task_id,
            "body": self.body,
            "type": self.type,
            "createdAt": iso(self.created_at),
        }


@dataclass
class NewTask:
    """One task to create (``Broker.submit``, ``Broker.create_many``)."""

    spec: JSONObject
    created_by: str | None = None
    secrets: dict[str, str] | None = None
    priority: int = 0
    run_after: datetime | None = None
    idempotency_key: str | None = None
    # decided by the templates layer (Template.recovery), stored with the task
    recovery: Recovery = "resume"
    # the task's id when the caller derives it (a webhook delivery's id is its
    # idempotency key's UUID); None: a fresh random one
    id: str | None = None
    # an act to record with the task (the API's task.create): its row is written
    # in the task's own insert (one statement on Postgres), with the task's id as
    # its target (the id of the task that had the idempotency key, if another
    # did); none when the creator is refused. The task and its act are one: an
    # act the database refuses fails the create
    audit: AuditEntry | None = None


@dataclass
class ClaimedTask:
    """A task as its claiming worker sees it (fits ``falsework.taskio.TaskInput``)."""

    id: str
    spec: JSONObject
    secrets: dict[str, str]
    created_by: str | None
    attempt: int
    claim_token: str
    step_state: dict[str, JSONObject]
    checkpoints: dict[str, Any]
    priority: int = 0
    recovery: Recovery = "resume"
    created_at: datetime | None = None


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    limit: int
    running: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age: float

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "limit": self.limit,
            "running": self.running,
            "startedAt": iso(self.started_at),
            "heartbeatAt": iso(self.heartbeat_at),
        }


# -- what crosses the store contract ----------------------------------------------
@dataclass(frozen=True)
class TaskRow:
    """A task as the store inserts it: spec already JSON text, secrets sealed."""

    id: str
    spec: str
    sealed_secrets: str | None
    created_by: str | None
    priority: int
    run_after: datetime | None
    recovery: Recovery
    idempotency_key: str | None
    # the act recorded with this create (its target: the task's id), or None
    act: AuditEntry | None = None


@dataclass(frozen=True)
class Inserted:
    """What became of one row of ``tasks_insert``: a new task, the task that
    already had its idempotency key, or refused (its creator is at the cap)."""

    outcome: Literal["new", "existing", "refused"]
    id: str | None


@dataclass(frozen=True)
class Claim:
    """A claimed task as the store returns it (secrets still sealed)."""

    id: str
    spec: JSONObject
    sealed_secrets: str | None
    created_by: str | None
    attempt: int
    claim_token: str
    step_state: dict[str, JSONObject]
    checkpoints: dict[str, Any]
    priority: int
    recovery: Recovery
    created_at: datetime


@dataclass(frozen=True)
class Lease:
    """A running task as its worker's heartbeat finds it."""

    claim_token: str
    cancel_requested: bool


@dataclass(frozen=True)
class Heartbeat:
    owned: dict[str, Lease]  # the tasks sent that are still this worker's
    limit: int | None  # the worker's limit as stored; None when its row is gone


@dataclass(frozen=True)
class Retried:
    before: str | None  # the status seen (None: no such task)
    refused: bool = False  # re-opening it would put its creator over the cap


class ListOrder(enum.Enum):
    """The orders a task list may be read in: a closed set, each a fixed clause
    of the ``task_list`` query (never text from a caller)."""

    CREATED_AT_ASC = "seq ASC"
    CREATED_AT_DESC = "seq DESC"
    STATUS_ASC = "status ASC"
    STATUS_DESC = "status DESC"
    ID_ASC = "id ASC"
    ID_DESC = "id DESC"
    CREATED_BY_ASC = "created_by ASC"
    CREATED_BY_DESC = "created_by DESC"
    LAST_HEARTBEAT_AT_ASC = "heartbeat_at ASC"
    LAST_HEARTBEAT_AT_DESC = "heartbeat_at DESC"

    @property
    def query(self) -> str:
        """The name of the ``task_list`` query read in this order."""
        return f"task_list_{self.name.lower()}"

    @classmethod
    def parse(cls, text: str) -> ListOrder:
        """``desc:created_at`` (Backstage's form), ``createdAt`` (descending)."""
        direction, _, name = text.partition(":")
        if not name:
            direction, name = "desc", direction
        key = _ORDER_NAMES.get(name)
        if key is None or direction.lower() not in ("asc", "desc"):
            raise InputError(f"Cannot order tasks by {text!r} (use e.g. desc:created_at)")
        return cls[f"{key}_{direction.upper()}"]


_ORDER_NAMES = {
    "created_at": "CREATED_AT",
    "createdAt": "CREATED_AT",
    "status": "STATUS",
    "id": "ID",
    "created_by": "CREATED_BY",
    "createdBy": "CREATED_BY",
    "last_heartbeat_at": "LAST_HEARTBEAT_AT",
    "lastHeartbeatAt": "LAST_HEARTBEAT_AT",
}


@dataclass(frozen=True)
class TaskQuery:
    created_by: str | None = None
    statuses: tuple[str, ...] | None = None
    limit: int | None = None
    offset: int = 0
    order: ListOrder = ListOrder.CREATED_AT_DESC


@dataclass(frozen=True)
class Finish:
    """The final write of a run: status and its closing event, in one transaction."""

    task_id: str
    token: str
    status: str
    event_type: str
    event_body: str  # JSON text (codec.dumps)
    keep_secrets: bool


@dataclass
class WriteBatch:
    """Worker writes gathered across tasks and flushed together, fenced by token
    (``engine/lease.py`` plans what of it may be written).

    ``events`` keep their order; step state and checkpoints are merged per task
    (later writes win); finishes and releases come last. Every text is JSON made
    by ``codec.dumps`` when the write was buffered.
    """

    events: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, token, type, body
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, str]] = field(default_factory=dict)
    finishes: list[Finish] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    # runs stopped because their lease ended: task id -> the marker event's body
    # (``lease.plan_writes`` says where it may go)
    superseded: dict[str, str] = field(default_factory=dict)
    # written with the batch: a retry of a flush that committed is a no-op
    flush_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __bool__(self) -> bool:
        return bool(
            self.events
            or self.steps
            or self.checkpoints
            or self.finishes
            or self.releases
            or self.superseded
        )

    def event_task_ids(self) -> set[str]:
        return (
            {e[0] for e in self.events} | {f.task_id for f in self.finishes} | set(self.superseded)
        )

    def merge(self, other: WriteBatch) -> None:
        """Add ``other``'s writes (of other tasks) after this batch's."""
        self.events.extend(other.events)
        self.steps.update(other.steps)
        self.checkpoints.update(other.checkpoints)
        self.finishes.extend(other.finishes)
        self.releases.extend(other.releases)
        self.tokens.update(other.tokens)
        self.superseded.update(other.superseded)

    def split(self) -> dict[str, WriteBatch]:
        """One batch per task, each task's writes in their order."""
        parts = {tid: WriteBatch(tokens={tid: token}) for tid, token in self.tokens.items()}
        for event in self.events:
            parts[event[0]].events.append(event)
        for tid, steps in self.steps.items():
            parts[tid].steps[tid] = steps
        for tid, cps in self.checkpoints.items():
            parts[tid].checkpoints[tid] = cps
        for finish in self.finishes:
            parts[finish.task_id].finishes.append(finish)
        for tid in self.releases:
            parts[tid].releases.append(tid)
        for tid, body in self.superseded.items():
            parts[tid].superseded[tid] = body
        return parts


StaleOutcome = Literal["recovered", "failed", "cancelled"]


# -- the audit trail (the API decides what is audited; the store keeps the rows) --------
@dataclass(frozen=True)
class AuditEntry:
    """One act to record; the database's clock stamps it."""

    actor: str  # a user ref, or "anonymous"
    action: str  # e.g. task.create, authz.denied
    target: str | None  # what it was done to: a task id, a worker id, a template, a route
    detail: str  # JSON object text (codec.dumps)


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None  # at or after
    before: int | None = None  # ids below this one (the next page of a listing)
    limit: int = 100


@dataclass(frozen=True)
class ScaffoldRecord:
    """A repository (and branch) made with scaffold recording, as its last create
    or update task saw it; what it means is the updates' business."""

    repository: str
    template_ref: str
    version: str
    record: JSONObject
    task_id: str | None = None
    created_by: str | None = None
    updated_at: datetime | None = None

    def to_json(self) -> JSONObject:
        return {
            "repository": self.repository,
            "templateRef": self.template_ref,
            "version": self.version,
            "record": self.record,
            "taskId": self.task_id,
            "createdBy": self.created_by,
            "updatedAt": iso(self.updated_at) if self.updated_at is not None else None,
        }


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: JSONObject

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        }


# -- the webhooks' outbox and the admin's view ------------------------------------------
@dataclass(frozen=True)
class FinishedTask:
    """A task finished since its webhooks were dispatched (``Store.tasks_unhooked``):
    its spec cut to ``apiVersion``, ``kind`` and ``templateInfo.entityRef``, its
    ``step_state`` empty."""

    task: Task
    final: JSONObject | None  # the body of its final event (completion or cancelled)


@dataclass(frozen=True)
class ClusterFlag:
    """A switch every node obeys while it is set (``paused``: no worker claims)."""

    name: str
    detail: JSONObject
    set_by: str | None
    set_at: datetime

    def to_json(self) -> JSONObject:
        return {
            "name": self.name,
            "detail": self.detail,
            "setBy": self.set_by,
            "setAt": iso(self.set_at),
        }


@dataclass(frozen=True)
class QueueOverview:
    open: int  # open tasks, due or not
    claimable: int  # open tasks whose run_after has passed
    processing: int
    stale: int  # processing tasks without a heartbeat for the horizon asked
    oldest_open_age: float | None  # seconds the oldest claimable task has waited

    @classmethod
    def of(cls, row: Any) -> QueueOverview:
        """From a row of either store's ``queue_overview`` query (numbers only)."""
        age = row["oldest_open_age"]
        return cls(
            open=int(row["open"]),
            claimable=int(row["claimable"]),
            processing=int(row["processing"]),
            stale=int(row["stale"]),
            oldest_open_age=float(age) if age is not None else None,
        )

    def to_json(self) -> JSONObject:
        return {
            "open": self.open,
            "claimable": self.claimable,
            "processing": self.processing,
            "stale": self.stale,
            "oldestOpenAgeSeconds": self.oldest_open_age,
        }


@dataclass(frozen=True)
class TroubledTask:
    """A task in flight that is stale or runs again (recovered or retried)."""

    id: str
    status: str
    created_by: str | None
    attempt: int
    claimed_by: str | None
    created_at: datetime
    heartbeat_age: float | None
    recovered_at: datetime | None  # its last recovery; None: retried by hand
    template: str | None

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "status": self.status,
            "createdBy": self.created_by,
            "attempt": self.attempt,
            "claimedBy": self.claimed_by,
            "createdAt": iso(self.created_at),
            "heartbeatAgeSeconds": self.heartbeat_age,
            "recoveredAt": iso(self.recovered_at),
            "template": self.template,
        }


# -- retention and cluster metrics (engine/retention.py, engine/cluster.py) ------------
@dataclass(frozen=True)
class Expired:
    """What one retention batch deleted."""

    tasks: int
    events: int


@dataclass(frozen=True)
class Mark:
    """A run or a step that ended, read from the events for the cluster metrics.

    ``label`` is the template's entity ref (a run) or the step's action (a step);
    ``seconds`` is None when its start is not in the events (a step completed by
    an earlier attempt, a start deleted by retention)."""

    event_id: int
    kind: Literal["task", "step"]
    status: str
    label: str | None
    seconds: float | None


@dataclass(frozen=True)
class Marks:
    until: int  # the last event id looked at: the next scan starts after it
    marks: list[Mark]


@dataclass(frozen=True)
class Gauges:
    tasks: dict[str, int]  # by status, every status present
    oldest_open_age: float  # seconds the oldest claimable open task has waited; 0: none
    workers_alive: int
    worker_capacity: int  # the limits of the workers alive, summed

    @classmethod
    def of(cls, counts: Any, oldest: Any, alive: Any, capacity: Any) -> Gauges:
        """From a store's rows: ``counts`` as (status, n) pairs, numbers as the
        driver returns them."""
        tasks = dict.fromkeys(STATUSES, 0)
        for status, n in counts:
            tasks[str(status)] = int(n)
        return cls(tasks, max(0.0, float(oldest)), int(alive), int(capacity))


@dataclass(frozen=True)
class Snapshot:
    last_event_id: int
    body: JSONObject
    age: float  # seconds since it was computed, by the database's clock
