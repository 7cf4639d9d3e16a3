"""An action's log lines: written while its step still runs, before the step's
next event, and a line the task's I/O refuses fails the step (a step that logs
and ends at once has its lines written by its own flush, without a drainer)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from falsework.runner import MemoryTaskIO
from falsework.runner.workflow import LEVEL_PREFIX

INFO = LEVEL_PREFIX["info"]


async def test_a_line_is_written_while_its_step_still_waits(harness: Any) -> None:
    io = MemoryTaskIO()
    step = {"id": "b", "action": "test:block", "input": {"seconds": 30}}
    run = asyncio.ensure_future(harness.run(harness.task([step]), io))
    messages: list[Any] = []
    for _ in range(1_000):  # loop turns, not time: the line comes within a few
        await asyncio.sleep(0)
        messages = [b.get("message") for _, b in io.events]
        if INFO + "blocking" in messages:
            break
    assert INFO + "blocking" in messages, messages
    assert not run.done()  # the step is still waiting
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    bodies = [b for _, b in io.events if b.get("stepId") == "b"]
    assert [b.get("status") for b in bodies] == ["processing", None, "cancelled"]


async def test_a_log_step_writes_its_lines_before_it_finishes(harness: Any) -> None:
    steps = [
        {"id": "one", "action": "debug:log", "input": {"message": "first"}},
        {"id": "two", "action": "debug:log", "input": {"message": "second"}},
    ]
    result = await harness.run(harness.task(steps))
    assert result.error is None and result.output == {}
    for step_id, text in (("one", "first"), ("two", "second")):
        events = result.step_events(step_id)
        assert events[0]["status"] == "processing"
        assert [e.get("status") for e in events[1:-1]] == [None] * (len(events) - 2)
        assert any(text in str(e["message"]) for e in events[1:-1])
        assert events[-1]["status"] == "completed"
    ids = [b.get("stepId") for b in result.bodies()]
    assert ids == sorted(ids, key=lambda i: (i is not None, i == "two"))


class _RefusingIO(MemoryTaskIO):
    async def emit(self, body: Any, type: str = "log") -> None:
        if "REFUSE-ME" in str(body.get("message")):
            raise RuntimeError("the io said no")
        await super().emit(body, type)


async def test_a_line_the_io_refuses_fails_its_step(harness: Any) -> None:
    steps = [
        {"id": "one", "action": "debug:log", "input": {"message": "REFUSE-ME"}},
        {"id": "two", "action": "debug:log", "input": {"message": "after"}},
    ]
    io = _RefusingIO()
    result = await harness.run(harness.task(steps), io)
    assert result.error is not None
    assert result.statuses == {"one": "failed", "two": "skipped"}
    failed = [b for b in result.step_events("one") if b.get("status") == "failed"]
    assert len(failed) == 1 and "the io said no" in str(failed[0]["message"])
