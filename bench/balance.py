"""Benchmark 4: balance across 4 worker processes on one Postgres.

Four worker processes (limit 50 each) start and go idle; then 2,000 tasks of
200 ms (``bench:record`` with a 0.2 s wait) are created at once. When all are
done, each process's share (tasks its executor ran) must be within ±15 % of 500.

    python -m bench.balance [--workers 4] [--limit 50] [--tasks 2000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench import fw
from bench.common import emit, log, run
from bench.procs import start_worker

TOLERANCE = 0.15


async def measure(args: argparse.Namespace) -> None:
    async with fw.database("postgres", "fw_bal") as url:
        creator = await fw.open_broker(url)  # runs the migrations before workers race
        env = fw.env_for(url)
        workers = [
            await start_worker(url, args.limit, env=env, name=f"w{i}") for i in range(args.workers)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in workers)), timeout=60)
            for _ in range(100):
                (n,) = (await fw.sql(url, "SELECT count(*) FROM workers"))[0]
                if n >= args.workers:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # idle: past the first polls
            spec = fw.task_spec(
                [
                    {
                        "id": "work",
                        "name": "Work",
                        "action": "bench:record",
                        "input": {"seconds": 0.2},
                    }
                ]
            )
            t0 = time.perf_counter()
            await fw.create_many(creator, spec, args.tasks)
            done = 0
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                (done,) = (
                    await fw.sql(url, "SELECT count(*) FROM tasks WHERE status = 'completed'")
                )[0]
                if done >= args.tasks:
                    break
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - t0
            by_worker = dict(
                await fw.sql(url, "SELECT claimed_by, count(*) FROM tasks GROUP BY claimed_by")
            )
        finally:
            await creator.close()
            codes = [await w.stop() for w in workers]
        shares = [int(w.summary().get("executed", 0)) for w in workers]
        fair = args.tasks / args.workers
        deviations = [round((s - fair) / fair * 100.0, 1) for s in shares]
        ok = done == args.tasks and all(abs(d) <= TOLERANCE * 100 for d in deviations)
        log(f"shares {shares} (deviation % {deviations}), claimed_by {by_worker}, {elapsed:.1f} s")
        emit(
            "balance",
            "falsework",
            "max_deviation_pct",
            max(abs(d) for d in deviations),
            db="postgres",
            workers=args.workers,
            limit=args.limit,
            tasks=args.tasks,
            completed=int(done),
            shares=shares,
            deviations_pct=deviations,
            elapsed_s=round(elapsed, 2),
            exit_codes=codes,
            tolerance_pct=TOLERANCE * 100,
            ok=ok,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Falsework balance (benchmark 4)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.workers, args.tasks = 2, 400
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
