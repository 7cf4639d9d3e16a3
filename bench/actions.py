"""Two small actions the benchmarks register in their own worker processes.

* ``bench:stamp`` notes the moment its handler starts (in-process latency);
* ``bench:record`` appends ``start``/``end`` lines (task id, pid, monotonic time) to
  the file named by ``BENCH_RECORD_FILE`` around an optional wait, so the recovery
  and balance benchmarks can prove who ran what, when, and that nothing ran twice.

They are real actions going through the real runner, not stand-ins for it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from falsework.actions.context import ActionContext
from falsework.actions.contract import Action, ActionInput, action

# bench:stamp calls this with (task_id, perf_counter()) when set
STAMP_HOOK: Callable[[str, float], None] | None = None


class StampInput(ActionInput):
    label: str = ""


class RecordInput(ActionInput):
    seconds: float = 0.0
    # when the record file shows an earlier start of this task (a recovered re-run)
    rerun_seconds: float | None = None


@action(
    id="bench:stamp",
    description="Benchmark probe: notes when the step starts.",
    input=StampInput,
)
async def stamp(ctx: ActionContext[StampInput]) -> None:
    now = time.perf_counter()
    if STAMP_HOOK is not None:
        STAMP_HOOK(ctx.task_id, now)


@action(
    id="bench:record",
    description="Benchmark probe: records start and end of its run in BENCH_RECORD_FILE.",
    input=RecordInput,
)
async def record(ctx: ActionContext[RecordInput]) -> None:
    path = os.environ.get("BENCH_RECORD_FILE")
    pid = os.getpid()
    seconds = ctx.input.seconds
    if path:
        rerun = any(r[0] == "start" and r[1] == ctx.task_id for r in read_records(path))
        if rerun and ctx.input.rerun_seconds is not None:
            seconds = ctx.input.rerun_seconds
        _append(path, f"start {ctx.task_id} {pid} {time.monotonic():.6f}\n")
    if seconds > 0:
        await asyncio.sleep(seconds)
    if path:
        _append(path, f"end {ctx.task_id} {pid} {time.monotonic():.6f}\n")


def _append(path: str, line: str) -> None:
    # one write() on an O_APPEND descriptor: lines from several processes never mix
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


BENCH_ACTIONS: list[Action[Any]] = [stamp, record]


def read_records(path: str) -> list[tuple[str, str, int, float]]:
    """``(kind, task_id, pid, t)`` for every line of a record file."""
    out: list[tuple[str, str, int, float]] = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 4:
                out.append((parts[0], parts[1], int(parts[2]), float(parts[3])))
    return out
