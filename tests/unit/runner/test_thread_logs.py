"""Log lines from worker threads (what fetch:template writes per file) reach the
task's events whole and in order, however the loop's wake-ups batch them."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import Field

from falsework.actions import ActionContext, ActionInput, action
from falsework.runner.workflow import LEVEL_PREFIX


class ChattyInput(ActionInput):
    lines: int = Field(3000, description="Lines each thread logs.")


@action(id="test:chatty", description="Logs from two threads at once.", input=ChattyInput)
async def chatty(ctx: ActionContext[ChattyInput]) -> None:
    def work(name: str, ready: threading.Barrier) -> None:
        ready.wait()
        for n in range(ctx.input.lines):
            ctx.logger.info(f"{name} {n}")

    def both() -> None:
        ready = threading.Barrier(2)
        other = threading.Thread(target=work, args=("b", ready))
        other.start()
        work("a", ready)
        other.join()

    ctx.logger.info("before")
    await ctx.in_thread(both)
    ctx.logger.info("after")


@pytest.mark.parametrize("lines", [3, 3000])
async def test_lines_logged_by_threads_all_arrive_in_order(harness: Any, lines: int) -> None:
    """Few lines end inside the loop's wake-up window (taken by the loop's own
    next line and the step's end), many span several windows."""
    harness.runner.registry.register(chatty)
    step = {"id": "c", "name": "Chatty", "action": "test:chatty", "input": {"lines": lines}}
    result = await harness.run(harness.task([step]))
    assert result.error is None, result.error
    events = result.step_events("c")
    messages = [str(b.get("message", "")) for b in events]
    info = LEVEL_PREFIX["info"]
    logged = [m.removeprefix(info) for m in messages if m.startswith(info)]
    assert logged[0] == "before" and logged[-1] == "after"
    for name in ("a", "b"):
        mine = [m for m in logged if m.startswith(f"{name} ")]
        assert mine == [f"{name} {n}" for n in range(lines)]
    assert len(logged) == 2 * lines + 2
    assert events[-1].get("status") == "completed"
