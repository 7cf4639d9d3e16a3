"""The audit trail's records: who did what, as the store writes and reads them.

The API decides what is an audited act (``api/audit.py``); the engine only keeps
the rows (table ``audit_events``, migration 0003) and answers queries on them,
newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from falsework.engine.models import iso
from falsework.types import JSONObject


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
