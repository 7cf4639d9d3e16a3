"""Issue 17, target 7: where the memory of waiting tasks goes, in ONE process.

N single-step ``debug:wait`` tasks (long enough to outlast the probe) are
created, then a worker wired as ``bench.worker_proc`` wires one (the real
runner, limit N) runs in this process until every task's run has started and
waits. Printed (one JSON line): the RSS before the worker started and while
the N tasks wait (after a full collection), bytes per waiting task, the peak
RSS, and with ``--census`` the objects the garbage collector tracks by type
(count and shallow bytes) beyond those before the worker started. The worker
then stops (its runs are released).

    python -m bench.waiting_memory [--tasks 10000] [--db sqlite|postgres] [--census]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import tracemalloc
from collections import Counter
from typing import Any

import psutil

from bench import fw
from bench.common import peak_rss_mb, use_uvloop

MIB = 1024 * 1024


def _census() -> tuple[Counter[str], Counter[str]]:
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    return counts, sizes


def _rss() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / MIB


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    from falsework.engine import TaskWorker
    from falsework.wiring import open_broker

    async with fw.database(args.db, "fw_waitmem") as url:
        # created by another process, as in bench.concurrency: the migrations'
        # imports (SQLAlchemy, Alembic) stay out of this one
        fill = [sys.executable, "-m", "bench.waiting_memory", "--fill", url]
        fill += ["--tasks", str(args.tasks), "--seconds", str(args.seconds)]
        proc = await asyncio.create_subprocess_exec(*fill, env=fw.env_for(url))
        if await proc.wait() != 0:
            raise SystemExit("could not create the tasks")

        # a long lease: a loaded machine's stalls must not fence the runs (and
        # release them) while they are measured
        s = fw.settings(url, concurrency=args.tasks, shutdown_grace=0.0, stale_timeout=600.0)
        broker = await open_broker(s)
        worker = TaskWorker(broker, fw.executor(s), fw.worker_options(s))
        before = _rss()
        census_before = _census() if args.census else None
        if args.tracemalloc:
            tracemalloc.start(args.tracemalloc)
            traced = tracemalloc.take_snapshot()
        started = time.perf_counter()
        running = asyncio.create_task(worker.run())
        while worker.running < args.tasks:
            if running.done():
                running.result()
                raise SystemExit("the worker stopped before its runs started")
            if time.perf_counter() - started > args.seconds / 2:
                raise SystemExit(f"only {worker.running} runs started")
            await asyncio.sleep(0.2)
        await asyncio.sleep(args.settle)  # every run reaches its sleep; the batcher flushes
        alive = worker.running
        waiting = _rss()
        if alive != args.tasks or worker.running != args.tasks:
            raise SystemExit(f"{alive} runs alive at the measure, not {args.tasks}")
        result: dict[str, Any] = {
            "db": args.db,
            "tasks": args.tasks,
            "rss_before_worker_mib": round(before, 1),
            "rss_waiting_mib": round(waiting, 1),
            "bytes_per_waiting_task": round((waiting - before) * MIB / args.tasks),
            "peak_rss_mib": round(peak_rss_mb(), 1),
            "load_avg": round(os.getloadavg()[0], 1),
        }
        if args.tracemalloc:
            diff = tracemalloc.take_snapshot().compare_to(traced, "traceback")
            result["traced_per_task"] = [
                [round(d.size_diff / args.tasks), str(d.traceback.format()[-2:])]
                for d in diff[: args.top]
            ]
            tracemalloc.stop()
        if census_before is not None:
            counts, sizes = _census()
            grown = {
                name: (counts[name] - census_before[0][name], sizes[name] - census_before[1][name])
                for name in counts
            }
            top = sorted(grown.items(), key=lambda kv: -kv[1][1])[: args.top]
            result["census_per_task"] = {
                name: [round(n / args.tasks, 2), round(b / args.tasks)]
                for name, (n, b) in top
                if n > 0
            }
        await worker.stop()
        await running
        await broker.close()
        return result


async def fill(args: argparse.Namespace) -> None:
    creator = await fw.open_broker(args.fill)
    await fw.create_many(creator, fw.task_spec([fw.wait_step(args.seconds)]), args.tasks)
    await creator.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="memory of waiting tasks (issue 17)")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--census", action="store_true")
    parser.add_argument("--tracemalloc", type=int, default=0, help="frames kept")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--fill", metavar="URL", help="only create the tasks (in a child)")
    args = parser.parse_args(argv)
    use_uvloop()
    if args.fill:
        asyncio.run(fill(args))
        return
    print(json.dumps(asyncio.run(probe(args))), flush=True)


if __name__ == "__main__":
    main()
