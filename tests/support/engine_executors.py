"""Small real executors for the engine tests (sleep, log, fail, raise, block)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from falsework.engine import ClaimedTask
from falsework.errors import ActionError
from falsework.taskio import TaskIO


async def steps(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
    """Runs spec["steps"]: each {"id", "record"?, "stall"?, "sleep"?, "fail"?, "raise"?,
    "block"?}, skipping
    steps already completed (the resume contract)."""
    await io.emit({"message": f"Starting up task with {len(task.spec.get('steps', []))} steps"})
    done = []
    for step in task.spec.get("steps", []):
        sid = step["id"]
        if task.step_state.get(sid, {}).get("status") == "completed":
            done.append(sid)
            continue
        await io.emit({"message": f"Beginning step {sid}", "stepId": sid, "status": "processing"})
        if "record" in step:
            # an independent, append-only record of step starts
            with Path(step["record"]).open("a") as fh:  # noqa: ASYNC230 - a test record
                fh.write(f"{task.id} {sid} {task.attempt}\n")
        if "stall" in step:
            time.sleep(step["stall"])  # noqa: ASYNC251 - the loop stops, as under SIGSTOP
        if "sleep" in step:
            await asyncio.sleep(step["sleep"])
        if "log" in step:
            await io.emit({"message": step["log"], "stepId": sid})
        if step.get("fail"):
            await io.save_step(sid, {"status": "failed", "output": {}})
            raise ActionError(f"step {sid} failed on purpose")
        if step.get("raise"):
            raise RuntimeError(f"boom in {sid}")
        if step.get("block"):
            await asyncio.Event().wait()
        await io.save_step(sid, {"status": "completed", "output": {"attempt": task.attempt}})
        await io.emit({"message": f"Finished step {sid}", "stepId": sid, "status": "completed"})
        done.append(sid)
    return {"done": done, "secrets": sorted(task.secrets), "attempt": task.attempt}
