"""Benchmark 3: enqueue → start latency of an idle Falsework worker.

One TaskWorker (the real runner) idles; one task at a time is created and we time
from just before the insert to (a) the executor starting the task (claimed,
handed to the runner: what the peers' "job handler starts" measures) and (b) its
first step's handler running (``bench:stamp``, after the runner's first events).

* Postgres: the task is created through a second Broker (its own connections), so
  the wake-up must travel by LISTEN/NOTIFY, as with the peers;
* SQLite: created through the worker's own Broker (the in-process signal).

The task is inserted with ``Broker.create_many([task])``: one INSERT that returns
the id, like the peers' enqueue (the API's ``POST /v2/tasks`` goes through a group
commit of ``create_many`` too; the insert call alone is reported as
``insert_call_p50_ms``).

    python -m bench.latency [--samples 200] [--db postgres,sqlite] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from bench import actions, fw
from bench.common import emit, latency_summary, log, run

SQLITE_P50_TARGET_MS = 3.0


async def measure_one(kind: str, samples: int) -> tuple[list[float], list[float], list[float]]:
    from falsework.engine import NewTask, TaskWorker

    started: asyncio.Queue[float] = asyncio.Queue()
    stepped: asyncio.Queue[float] = asyncio.Queue()
    actions.STAMP_HOOK = lambda _task_id, t: stepped.put_nowait(t)

    async with fw.database(kind, "fw_lat") as url:
        s = fw.settings(url, concurrency=100)
        broker = await fw.open_broker(url, concurrency=100)
        runner = fw.executor(s)

        async def stamping(task: Any, io: Any) -> Any:
            started.put_nowait(time.perf_counter())
            result: Any = await runner(task, io)
            return result

        worker = TaskWorker(broker, stamping, fw.worker_options(s))
        loop_task = asyncio.create_task(worker.run())
        producer = await fw.open_broker(url) if kind == "postgres" else broker
        spec = fw.task_spec([{"id": "stamp", "name": "Stamp", "action": "bench:stamp"}])
        rng = random.Random(7)
        to_start: list[float] = []
        to_step: list[float] = []
        create_ms: list[float] = []
        try:
            await asyncio.sleep(1.0)  # listener subscribed, first poll done
            for i in range(samples + 5):
                t0 = time.perf_counter()
                await producer.create_many([NewTask(spec, created_by="user:default/bench")])
                t_created = time.perf_counter()
                t1 = await asyncio.wait_for(started.get(), timeout=30)
                t2 = await asyncio.wait_for(stepped.get(), timeout=30)
                if i >= 5:  # the first few warm connections and caches
                    to_start.append((t1 - t0) * 1000.0)
                    to_step.append((t2 - t0) * 1000.0)
                    create_ms.append((t_created - t0) * 1000.0)
                for _ in range(200):  # let the task finish: the worker is idle again
                    if worker.running == 0:
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.02 + rng.random() * 0.03)
        finally:
            await worker.stop()
            await asyncio.wait_for(loop_task, timeout=30)
            if producer is not broker:
                await producer.close()
            await broker.close()
    return to_start, to_step, create_ms


async def measure(args: argparse.Namespace) -> None:
    for kind in args.db:
        to_start, to_step, create_ms = await measure_one(kind, args.samples)
        create = latency_summary(create_ms)
        start = latency_summary(to_start)
        step = latency_summary(to_step)
        log(f"{kind}: start {start}, first step {step}")
        extra: dict[str, Any] = {}
        if kind == "sqlite":
            extra = {"target_p50_ms": SQLITE_P50_TARGET_MS, "ok": start["p50_ms"] <= 3.0}
        emit(
            "latency",
            "falsework",
            "p50_ms",
            start["p50_ms"],
            db=kind,
            measured="enqueue→executor start",
            **{k: v for k, v in start.items() if k != "p50_ms"},
            first_step_p50_ms=step["p50_ms"],
            first_step_p99_ms=step["p99_ms"],
            insert_call_p50_ms=create["p50_ms"],
            **extra,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Falsework latency (benchmark 3)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--db", default="postgres,sqlite")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    args.db = [d for d in args.db.split(",") if d]
    if args.quick:
        args.samples = 20
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
