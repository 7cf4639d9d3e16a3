"""Cancellation and secrets redaction."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from falsework.runner import MemoryTaskIO
from support.runner import SIGNALS, THREAD_LOG


async def test_cancel_marks_the_running_step_and_propagates(harness: Any, tmp_path: Path) -> None:
    steps = [
        {"id": "b", "name": "Block", "action": "test:block", "input": {}},
        {"id": "next", "action": "test:echo", "input": {"value": 1}},
    ]
    task = harness.task(steps)
    blocking = asyncio.Event()
    io = MemoryTaskIO(on_event=lambda _t, b: blocking.set() if "blocking" in b["message"] else None)
    run = asyncio.create_task(harness.runner(task, io))
    await blocking.wait()
    assert (tmp_path / "work" / task.id / "started").exists()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert SIGNALS[0].is_set()
    assert io.events[-1] == (
        "log",
        {"message": "Step b has been cancelled.", "stepId": "b", "status": "cancelled"},
    )
    assert io.steps == {"b": {"status": "cancelled"}}
    assert not (tmp_path / "work" / task.id).exists()


async def test_cancel_during_a_wait_costs_nothing_more(harness: Any) -> None:
    task = harness.task([{"id": "w", "action": "debug:wait", "input": {"minutes": 9}}])
    waiting = asyncio.Event()
    io = MemoryTaskIO(on_event=lambda _t, b: waiting.set() if b.get("status") else None)
    run = asyncio.create_task(harness.runner(task, io))
    await waiting.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert io.steps["w"]["status"] == "cancelled"


async def test_cancel_waits_for_blocking_work_in_a_thread(harness: Any) -> None:
    task = harness.task([{"id": "t", "action": "test:thread", "input": {}}])
    blocking = asyncio.Event()
    io = MemoryTaskIO(on_event=lambda _t, b: blocking.set() if "blocking" in b["message"] else None)
    run = asyncio.create_task(harness.runner(task, io))
    await blocking.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    # the thread saw the signal and finished before the run gave up the workspace
    assert THREAD_LOG[-1] == "stopped"
    assert io.steps == {"t": {"status": "cancelled"}}


SECRET = "hunter2&x y/é"


async def test_secrets_redacted_everywhere(harness: Any) -> None:
    b64 = base64.b64encode(SECRET.encode()).decode()
    url = quote(SECRET, safe="")
    steps = [
        {
            "id": "log",
            "action": "debug:log",
            "input": {
                "message": "raw ${{ secrets.PW }} b64 ${{ parameters.b64 }} "
                "url ${{ parameters.url }}"
            },
        },
        {"id": "echo", "action": "test:echo", "input": {"value": "${{ secrets.PW }}"}},
        {
            "id": "each",
            "action": "test:echo",
            "each": ["${{ secrets.PW }}"],
            "input": {"value": "${{ each.value }}"},
        },
        {"id": "fail", "action": "test:fail", "input": {"message": "bad ${{ secrets.PW }}"}},
    ]
    task = harness.task(steps, {"b64": b64, "url": url}, secrets={"PW": SECRET})
    result = await harness.run(task)
    assert result.error is not None and result.error.message == "bad ***"
    everything = json.dumps([result.io.events, result.io.steps], ensure_ascii=False)
    for form in (SECRET, b64, url, json.dumps(SECRET)[1:-1]):
        assert form not in everything
    assert "raw *** b64 *** url ***" in everything
    assert result.io.steps["echo"]["output"] == {"value": "***"}
    assert result.io.steps["each"]["output"] == {"value": ["***"]}


async def test_secrets_only_visible_to_input_and_each(harness: Any) -> None:
    output = {"text": [{"title": "t", "content": "[${{ secrets.PW }}]"}]}
    steps = [{"id": "a", "action": "test:echo", "input": {"value": 1}, "if": "${{ secrets.PW }}"}]
    result = await harness.run(harness.task(steps, secrets={"PW": SECRET}, output=output))
    assert result.statuses == {"a": "skipped"}
    assert result.output == {"text": [{"title": "t", "content": "[]"}]}
