"""The engine's records: what the broker returns and what an executor receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from falsework.types import JSONObject

STATUSES = ("open", "processing", "completed", "failed", "cancelled")
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
EVENT_TYPES = ("log", "completion", "cancelled", "recovered")


def iso(ts: datetime | None) -> str | None:
    """Backstage's timestamp shape: ``2026-11-28T19:04:24.000Z``."""
    if ts is None:
        return None
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def recovery_of(spec: JSONObject) -> str:
    """How a task whose worker vanished is recovered (see docs/engine.md).

    ``startOver`` re-runs every step, ``none`` fails the task, anything else
    (the field absent included) resumes after the last completed step.
    """
    rec = spec.get("EXPERIMENTAL_recovery")
    strategy = rec.get("EXPERIMENTAL_strategy") if isinstance(rec, dict) else None
    if strategy == "startOver":
        return "startOver"
    if strategy == "none":
        return "none"
    return "resume"


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
    recovery: str = "resume"
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
    """One task for ``Broker.create_many``."""

    spec: JSONObject
    created_by: str | None = None
    secrets: dict[str, str] | None = None
    priority: int = 0
    run_after: datetime | None = None
    idempotency_key: str | None = None


@dataclass
class ClaimedTask:
    """A task as its claiming worker sees it (fits ``runner.io.TaskInput``)."""

    id: str
    spec: JSONObject
    secrets: dict[str, str]
    created_by: str | None
    attempt: int
    claim_token: str
    step_state: dict[str, JSONObject]
    checkpoints: dict[str, Any]
    priority: int = 0
    recovery: str = "resume"
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
