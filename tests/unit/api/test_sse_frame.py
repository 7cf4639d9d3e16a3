"""An SSE frame of an engine event is what encoding its JSON shape gives, byte for
byte (api/sse.py writes it without building the dict)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from falsework.api import sse
from falsework.engine.models import Event

TASK = "7f0c2d9e-1b2a-4c3d-8e4f-5a6b7c8d9e0f"
WHEN = datetime(2026, 12, 7, 9, 5, 22, 123456, tzinfo=UTC)

BODIES: list[dict[str, Any]] = [
    {},
    {"message": "hello", "stepId": "first", "status": "processing"},
    {"message": 'quotes " and \\ backslash, tab\t, newline\n, nul \x00'},
    {"message": "ünïcödé, 日本語, emoji 🎉, line separator \u2028 and \u2029"},
    {"nested": {"list": [1, -2, 3.5, 1e100, -0.0, None, True, False, "x"], "empty": []}},
    {"big": 2**70, "float": 0.1, "nan": float("nan"), "inf": float("inf")},
    {"error": {"name": "Error", "message": "m", "stack": "a\nb"}, "": ""},
]


def expected(event: Event) -> bytes:
    data = json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False)
    return f"event: {event.type}\ndata: {data}\nid: {event.id}\n\n".encode()


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("recoverable", [True, False])
def test_an_engine_event_frames_as_its_json(body: dict[str, Any], recoverable: bool) -> None:
    event = Event(
        id=2**40 + 7,
        task_id=TASK,
        type="log",
        body=body,
        created_at=WHEN,
        is_task_recoverable=recoverable,
    )
    assert sse.frame(event) == expected(event)


@pytest.mark.parametrize(
    "created_at",
    [WHEN, WHEN.astimezone(timezone(timedelta(hours=-5))), datetime(1970, 1, 1, tzinfo=UTC)],
)
@pytest.mark.parametrize("kind", ["log", "completion", "cancelled", "recovered", 'odd"type'])
def test_every_type_and_time_frames_as_its_json(created_at: datetime, kind: str) -> None:
    event = Event(id=1, task_id=TASK, type=kind, body={"message": "m"}, created_at=created_at)
    assert sse.frame(event) == expected(event)


def test_the_fast_path_is_the_one_taken() -> None:
    # where the C encoder exists (CPython), an engine event never builds its dict
    assert sse._BODY is not None

    class Counting(Event):
        pass

    event = Event(id=5, task_id=TASK, type="log", body={"a": 1}, created_at=WHEN)
    calls = []
    original = Event.to_json

    def counted(self: Event) -> Any:
        calls.append(self.id)
        return original(self)

    try:
        Event.to_json = counted  # type: ignore[method-assign]
        framed = sse.frame(event)
        # a subclass (an EventLike the module does not know) takes the general path
        general = sse.frame(Counting(id=6, task_id=TASK, type="log", body={}, created_at=WHEN))
    finally:
        Event.to_json = original  # type: ignore[method-assign]
    assert calls == [6]
    assert framed == expected(event)
    assert general.startswith(b"event: log\ndata: {")


def test_an_unencodable_body_fails_as_before() -> None:
    event = Event(id=1, task_id=TASK, type="log", body={"x": object()}, created_at=WHEN)
    with pytest.raises(TypeError, match="not JSON serializable"):
        sse.frame(event)
