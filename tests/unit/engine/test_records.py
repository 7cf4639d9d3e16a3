"""``record_of``: one mapping from a store's row to a record, by the record's field
types (no database: rows as each driver hands them back)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from falsework.engine.codec import parse_ts
from falsework.engine.models import (
    DECODED,
    AuditRecord,
    Decode,
    ScaffoldRecord,
    TroubledTask,
    iso,
    record_of,
)

AT = datetime(2026, 12, 6, 21, 0, 0, 123000, tzinfo=UTC)
TEXT = Decode(ts=parse_ts, json=json.loads)


def test_sqlite_text_and_postgres_values_make_the_same_record() -> None:
    as_text = {
        "id": 7,
        "at": "2026-12-06 21:00:00.123",
        "actor": "user:default/al",
        "action": "task.create",
        "target": None,
        "detail": '{"n": [1, 2]}',
    }
    decoded = {**as_text, "at": AT, "detail": {"n": [1, 2]}}
    want = AuditRecord(7, AT, "user:default/al", "task.create", None, {"n": [1, 2]})
    assert record_of(AuditRecord, as_text, TEXT) == want
    assert record_of(AuditRecord, decoded, DECODED) == want


def test_null_stays_none_and_numerics_become_floats() -> None:
    row = {
        "id": "t1",
        "status": "processing",
        "created_by": None,
        "attempt": 2,
        "claimed_by": "w1",
        "created_at": AT,
        "heartbeat_age": Decimal("12.5"),
        "recovered_at": None,
        "template": None,
    }
    troubled = record_of(TroubledTask, row, DECODED)
    assert troubled.heartbeat_age == 12.5 and isinstance(troubled.heartbeat_age, float)
    assert troubled.recovered_at is None and troubled.created_by is None
    scaffold = record_of(
        ScaffoldRecord,
        {
            "repository": "r",
            "template_ref": "template:default/t",
            "version": "v1",
            "record": "{}",
            "task_id": None,
            "created_by": None,
            "updated_at": None,
        },
        TEXT,
    )
    assert scaffold.record == {} and scaffold.updated_at is None


def test_iso_is_backstages_shape_in_utc_truncated_to_milliseconds() -> None:
    assert iso(None) is None
    assert iso(AT) == "2026-12-06T21:00:00.123Z"
    assert iso(AT.replace(microsecond=999_999)) == "2026-12-06T21:00:00.999Z"
    assert iso(AT.replace(microsecond=0)) == "2026-12-06T21:00:00.000Z"
    india = timezone(timedelta(hours=5, minutes=30))
    assert iso(datetime(2026, 12, 7, 2, 30, 0, 5_000, tzinfo=india)) == "2026-12-06T21:00:00.005Z"


def test_iso_of_the_same_timestamp_again_and_of_another_after_it() -> None:
    # the last text is kept for the same object (the events of one flush share
    # theirs); any other timestamp, equal in value or not, is formatted anew
    first = datetime(2026, 12, 7, 3, 0, 0, 1_000, tzinfo=UTC)
    assert iso(first) == iso(first) == "2026-12-07T03:00:00.001Z"
    india = timezone(timedelta(hours=5, minutes=30))
    same_instant = first.astimezone(india)
    assert iso(same_instant) == "2026-12-07T03:00:00.001Z"
    later = first + timedelta(milliseconds=1)
    assert iso(later) == "2026-12-07T03:00:00.002Z"
    assert iso(first) == "2026-12-07T03:00:00.001Z"
