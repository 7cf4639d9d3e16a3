"""Benchmark 5: one user's flood does not starve another user's single task.

A worker (concurrency 100, ``max_running_per_user`` 50) idles; user A creates
5,000 tasks of 2 s (``debug:wait``), the worker fills up with them; 1 s later user
B creates one task. Target: B's task starts (the executor receives it) within 1 s
of its creation. The same run without the cap is the control (B waits behind A's
queue; we stop waiting after 10 s).

    python -m bench.fairness [--flood 5000] [--cap 50] [--no-control] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench import fw
from bench.common import emit, log, run

TARGET_S = 1.0
USER_A = "user:default/alice"
USER_B = "user:default/bob"


async def one_run(flood: int, cap: int | None, give_up: float) -> dict[str, Any]:
    from falsework.engine import TaskWorker

    async with fw.database("postgres", "fw_fair") as url:
        overrides: dict[str, Any] = {"concurrency": 100, "shutdown_grace": 0.5}
        if cap is not None:
            overrides["max_running_per_user"] = cap
        s = fw.settings(url, **overrides)
        broker = await fw.open_broker(url, **overrides)
        runner = fw.executor(s)
        b_started = asyncio.Event()
        b_started_at = 0.0
        a_running = 0

        async def watching(task: Any, io: Any) -> Any:
            nonlocal b_started_at, a_running
            if task.created_by == USER_B:
                b_started_at = time.perf_counter()
                b_started.set()
            else:
                a_running += 1
            result: Any = await runner(task, io)
            return result

        worker = TaskWorker(broker, watching, fw.worker_options(s))
        loop_task = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(0.5)
            await fw.create_many(broker, fw.task_spec([fw.wait_step(2)]), flood, created_by=USER_A)
            await asyncio.sleep(1.0)
            running_before = worker.running
            t0 = time.perf_counter()
            await broker.create(fw.task_spec([fw.log_step("b")]), created_by=USER_B)
            try:
                await asyncio.wait_for(b_started.wait(), timeout=give_up)
                delay: float | None = b_started_at - t0
            except TimeoutError:
                delay = None
        finally:
            await worker.stop()
            await asyncio.wait_for(loop_task, timeout=30)
            await broker.close()
        return {"delay_s": delay, "a_running_when_b_created": running_before}


async def measure(args: argparse.Namespace) -> None:
    capped = await one_run(args.flood, args.cap, give_up=10.0)
    log(f"with cap {args.cap}: {capped}")
    delay = capped["delay_s"]
    emit(
        "fairness",
        "falsework",
        "b_start_s",
        round(delay, 4) if delay is not None else None,
        db="postgres",
        flood=args.flood,
        max_running_per_user=args.cap,
        concurrency=100,
        a_running_when_b_created=capped["a_running_when_b_created"],
        target_s=TARGET_S,
        ok=delay is not None and delay <= TARGET_S,
    )
    if args.control:
        control = await one_run(args.flood, None, give_up=10.0)
        log(f"without cap: {control}")
        d = control["delay_s"]
        emit(
            "fairness",
            "falsework",
            "b_start_s_without_cap",
            round(d, 4) if d is not None else None,
            db="postgres",
            flood=args.flood,
            max_running_per_user=None,
            concurrency=100,
            a_running_when_b_created=control["a_running_when_b_created"],
            gave_up_after_s=10.0 if d is None else None,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Falsework fairness (benchmark 5)")
    parser.add_argument("--flood", type=int, default=5_000)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--no-control", dest="control", action="store_false")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.flood, args.control = 1_000, False
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
