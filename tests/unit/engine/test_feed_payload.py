"""The ``falsework_events`` payload decoder (engine/feed.py), without a database."""

from __future__ import annotations

import asyncio
import logging

import pytest

from falsework.engine import feed
from falsework.engine.feed import carried_events
from falsework.engine.notify import Hub


def test_payloads_not_in_the_format_raise_value_error() -> None:
    for payload in ("[1", "[5]", "[[[]]]", '[["t", 0, "open", "none", 1e300, []]]', "[" * 5000):
        with pytest.raises(ValueError, match="not a falsework_events payload"):
            carried_events(payload)
    # the ids form and the carried form, as batch_write writes them
    pushed, ids = carried_events(
        '[["a"], ["b", 3, "completed", "none", 1000000, [[4, "log", {}]]]]'
    )
    assert ids == ["a"]
    (item,) = pushed
    assert (item.task_id, item.prev, item.status) == ("b", 3, "completed")
    assert [(e.id, e.type, e.body, e.is_task_recoverable) for e in item.events] == [
        (4, "log", {}, False)
    ]
    assert item.events[0].created_at.timestamp() == 1.0


def test_bad_payloads_log_one_warning_a_minute_and_each_still_wakes_every_waiter(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A flood of what is not a payload (a broken or hostile peer on the channel):
    # every one still makes every waiter read, the log gets one line a minute.
    now = [1000.0]
    monkeypatch.setattr(feed, "_bad_payloads", feed.Throttle(60.0, clock=lambda: now[0]))
    hub = Hub()
    waiter = asyncio.Event()
    hub.watch_events("t", waiter)
    woken = 0
    with caplog.at_level(logging.WARNING, logger="falsework.engine"):
        for second in range(150):
            now[0] = 1000.0 + second
            for _ in range(100):
                waiter.clear()
                feed.deliver(hub, "[1")
                woken += waiter.is_set()
    assert woken == 15_000
    lines = [r.getMessage() for r in caplog.records]
    # at 0 s, 60 s and 120 s; each after the first counts the 59 s x 100 + 99 held
    assert len(lines) == 3
    assert all(line.startswith("not a falsework_events payload: ") for line in lines)
    assert lines[0].endswith("; every stream reads")
    for line in lines[1:]:
        assert line.endswith("; every stream reads (5999 more since the last warning)")
