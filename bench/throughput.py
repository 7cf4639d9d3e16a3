"""Benchmark 1: Falsework throughput, and throughput against concurrency.

N single-step ``debug:log`` tasks are created first (``Broker.create_many``), then
ONE TaskWorker in this process (the real WorkflowRunner, concurrency C) drains them
in burst mode. tasks/s = N / (worker start → queue drained, every task completed).
A fresh database per run (Postgres: CREATE DATABASE; SQLite: a new file); median of
``--repeat`` runs. The events each task wrote are counted and reported.

    python -m bench.throughput [--tasks 20000] [--concurrency 100] [--repeat 3]
                               [--sweep 10,50,100,200,500] [--sweep-tasks 5000]
                               [--db postgres,sqlite] [--quick] [--message TEXT]

``--message`` is the debug:log step's message; one with an expression
(``'hello ${{ context.task.id }}'``) measures the runner's render path.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench import fw
from bench.common import CpuProbe, emit, log, median, run

FLOOR = 1_500.0  # tasks/s on Postgres (issue 2)


async def one_run(
    kind: str, tasks: int, concurrency: int, message: str = "hello"
) -> dict[str, Any]:
    from falsework.engine import TaskWorker

    async with fw.database(kind, "fw_tp") as url:
        creator = await fw.open_broker(url)
        t_create = time.perf_counter()
        await fw.create_many(creator, fw.task_spec([fw.log_step(message)]), tasks)
        create_s = time.perf_counter() - t_create
        await creator.close()

        s = fw.settings(url, concurrency=concurrency)
        broker = await fw.open_broker(url, concurrency=concurrency)
        worker = TaskWorker(broker, fw.executor(s), fw.worker_options(s))
        budget = max(60.0, tasks / 100.0)
        t0 = time.perf_counter()
        cpu = CpuProbe()
        timed_out = False
        try:
            await asyncio.wait_for(worker.run(burst=True), timeout=budget)
        except TimeoutError:
            timed_out = True
        elapsed = time.perf_counter() - t0
        if timed_out:
            await worker.stop()
        if kind == "postgres":
            await cpu.stop(url)
        await broker.close()

        counts = dict(await fw.sql(url, "SELECT status, count(*) FROM tasks GROUP BY status"))
        (events,) = (await fw.sql(url, "SELECT count(*) FROM task_events"))[0]
        done = int(counts.get("completed", 0))
        return {
            "tasks_per_s": done / elapsed,
            "elapsed_s": elapsed,
            "completed": done,
            "statuses": counts,
            "events_per_task": round(int(events) / max(1, tasks), 2),
            "create_per_s": tasks / create_s,
            "timed_out": timed_out,
            **(cpu.per_task_ms(tasks) if kind == "postgres" else {}),
        }


async def measure(args: argparse.Namespace) -> None:
    for kind in args.db:
        results = []
        for i in range(args.repeat):
            r = await one_run(kind, args.tasks, args.concurrency, args.message)
            log(
                f"{kind} run {i + 1}/{args.repeat}: {r['tasks_per_s']:.0f} tasks/s "
                f"({r['completed']}/{args.tasks} completed, {r['events_per_task']} events/task, "
                f"create_many {r['create_per_s']:.0f}/s)"
            )
            results.append(r)
        rates = [r["tasks_per_s"] for r in results]
        value = round(median(rates), 1)
        emit(
            "throughput",
            "falsework",
            "tasks_per_s",
            value,
            db=kind,
            tasks=args.tasks,
            concurrency=args.concurrency,
            message=args.message,
            runs=[round(x, 1) for x in rates],
            events_per_task=results[-1]["events_per_task"],
            all_completed=all(r["completed"] == args.tasks for r in results),
            create_many_per_s=round(median([r["create_per_s"] for r in results]), 1),
            floor=FLOOR if kind == "postgres" else None,
            ok=(value >= FLOOR) if kind == "postgres" else None,
        )
    for kind in args.db:
        for c in args.sweep:
            r = await one_run(kind, args.sweep_tasks, c, args.message)
            log(f"{kind} concurrency {c}: {r['tasks_per_s']:.0f} tasks/s")
            emit(
                "throughput_vs_concurrency",
                "falsework",
                "tasks_per_s",
                round(r["tasks_per_s"], 1),
                db=kind,
                tasks=args.sweep_tasks,
                concurrency=c,
                all_completed=r["completed"] == args.sweep_tasks,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Falsework throughput (benchmark 1)")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sweep", default="10,50,100,200,500")
    parser.add_argument("--sweep-tasks", type=int, default=5_000)
    parser.add_argument("--db", default="postgres,sqlite")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--message", default="hello", help="the debug:log step's message")
    args = parser.parse_args(argv)
    args.db = [d for d in args.db.split(",") if d]
    args.sweep = [int(c) for c in args.sweep.split(",") if c]
    if args.quick:
        args.tasks, args.repeat, args.sweep, args.sweep_tasks = 1_000, 1, [10, 100], 500
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
