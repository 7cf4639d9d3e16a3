"""A clean-up step (``if: always()`` / ``failure()``) belongs to each attempt: when a
retried attempt fails again, it runs again, instead of counting the earlier attempt's run."""

from __future__ import annotations

from typing import Any

from falsework.runner import MemoryTaskIO


def _echo(step_id: str, condition: str) -> dict[str, Any]:
    return {"id": step_id, "action": "test:echo", "input": {"value": step_id}, "if": condition}


async def test_cleanup_runs_again_when_the_retried_attempt_fails(harness: Any) -> None:
    steps = [
        {"id": "bad", "action": "test:fail", "input": {"message": "still broken"}},
        _echo("cleanup", "${{ always() }}"),
        _echo("report", "${{ failure() }}"),
        _echo("after", "${{ not failure() }}"),
    ]
    io = MemoryTaskIO()
    task = harness.task(steps)
    first = await harness.run(task, io)
    assert first.error is not None
    assert first.statuses["cleanup"] == first.statuses["report"] == "completed"

    before = len(first.bodies())
    second = await harness.run(io.resumed(task), io)
    assert second.error is not None and second.error.message == "still broken"
    attempt = second.bodies()[before:]  # this attempt's events only
    ran = [b for b in attempt if b.get("status") == "processing"]
    assert [b["stepId"] for b in ran] == ["bad", "cleanup", "report", "after"]
    assert not any("completed by an earlier attempt" in b["message"] for b in attempt)
    assert second.statuses["after"] == "skipped"
