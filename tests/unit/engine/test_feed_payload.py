"""The ``falsework_events`` payload decoder (engine/feed.py), without a database."""

from __future__ import annotations

import pytest

from falsework.engine.feed import carried_events


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
