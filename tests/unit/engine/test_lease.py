"""The lease rules as pure functions: no database (the stores execute them; the
contract suite checks that they do)."""

from __future__ import annotations

from falsework.engine.lease import WritePlan, plan_writes, stale_outcome
from falsework.engine.models import Finish, WriteBatch


def batch() -> WriteBatch:
    b = WriteBatch(tokens={"a": "ta", "b": "tb", "c": "tc"})
    b.events += [
        ("a", "ta", "log", '{"m":1}'),
        ("b", "tb", "log", '{"m":2}'),
        ("a", "ta", "log", '{"m":3}'),
    ]
    b.steps = {"a": {"s1": '{"status":"completed"}'}, "b": {"s1": "{}", "s2": "{}"}}
    b.checkpoints = {"c": {"k": "1"}}
    b.finishes.append(Finish("a", "ta", "completed", "completion", '{"done":true}', False))
    b.releases.append("c")
    return b


def test_owned_tasks_write_everything_in_order() -> None:
    current = {tid: (f"t{tid}", "processing") for tid in "abc"}
    plan = plan_writes(batch(), current)
    assert plan.refused == frozenset()
    assert plan.events == [
        ("a", "log", '{"m":1}'),
        ("b", "log", '{"m":2}'),
        ("a", "log", '{"m":3}'),
        ("a", "completion", '{"done":true}'),  # final events after the buffered ones
    ]
    assert plan.steps == [
        ("a", "s1", '{"status":"completed"}'),
        ("b", "s1", "{}"),
        ("b", "s2", "{}"),
    ]
    assert plan.checkpoints == [("c", "k", "1")]
    assert plan.finishes == [("a", "completed", False)]
    assert plan.releases == ["c"]
    assert plan.state_task_ids == ["a", "b", "c"] and plan.event_task_ids == ["a", "b"]
    assert plan.written


def test_a_task_under_another_token_writes_nothing() -> None:
    current = {
        "a": ("ta", "processing"),
        "b": ("someone-else", "processing"),
        "c": ("tc", "processing"),
    }
    plan = plan_writes(batch(), current)
    assert plan.refused == {"b"}
    assert all(e[0] != "b" for e in plan.events)
    assert all(s[0] != "b" for s in plan.steps)


def test_a_task_no_longer_processing_or_gone_is_refused() -> None:
    # finished (its token cleared), re-opened by the janitor, or not found at all
    for current in (
        {"a": (None, "completed"), "b": ("tb", "processing"), "c": ("tc", "processing")},
        {"a": ("ta", "open"), "b": ("tb", "processing"), "c": ("tc", "processing")},
        {"b": ("tb", "processing"), "c": ("tc", "processing")},
    ):
        plan = plan_writes(batch(), current)
        assert plan.refused == {"a"}
        assert plan.finishes == [] and all(e[0] != "a" for e in plan.events)


def test_everything_refused_writes_nothing() -> None:
    plan = plan_writes(batch(), {})
    assert plan.refused == {"a", "b", "c"}
    assert plan == WritePlan(refused=frozenset("abc"))
    assert not plan.written


def test_stale_outcome() -> None:
    assert stale_outcome("resume", cancel_requested=False) == "recovered"
    assert stale_outcome("startOver", cancel_requested=False) == "recovered"
    assert stale_outcome("none", cancel_requested=False) == "failed"
    for recovery in ("resume", "startOver", "none"):
        assert stale_outcome(recovery, cancel_requested=True) == "cancelled"


def test_a_superseded_marker_goes_where_the_task_allows() -> None:
    b = WriteBatch(tokens={"mine": "t1", "taken": "t1", "done": "t1", "gone": "t1"})
    b.events.append(("taken", "t1", "log", '{"m":"lost"}'))
    for tid in b.tokens:
        b.superseded[tid] = '{"superseded":{}}'
    current = {
        "mine": ("t1", "processing"),  # still this run's
        "taken": ("t2", "processing"),  # another run's
        "done": (None, "completed"),  # finished
    }  # "gone": no such task
    plan = plan_writes(b, current)
    assert plan.refused == frozenset({"taken", "done", "gone"})
    # the marker alone, for a live task; the refused run's other writes never
    assert plan.events == [
        ("mine", "log", '{"superseded":{}}'),
        ("taken", "log", '{"superseded":{}}'),
    ]
    assert plan.releases == ["mine"]  # still ours: back to the queue at once
    assert plan.finishes == [] and plan.steps == []
