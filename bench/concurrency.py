"""Benchmark 2: 10,000 waiting tasks in ONE worker process (limit 10,000).

10,000 single-step ``debug:wait`` tasks of 20 s are created, then one worker
process (``bench.worker_proc``, the real runner, default heartbeat and stale
timeout) runs them in burst mode. Targets (issue 2): all complete within 40 s of
the first start, the process's peak RSS ≤ 1 GiB, and no ``recovered`` event (the
heartbeats kept up while 10,000 tasks were in flight).

    python -m bench.concurrency [--tasks 10000] [--seconds 20] [--db postgres] [--quick]
                                [--stale-timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from bench import fw
from bench.common import REPO_ROOT, emit, log, run

WINDOW_TARGET_S = 40.0
RSS_TARGET_MB = 1024.0
WAITING_RSS_TARGET_MB = 200.0  # issue 17: a process holding 10,000 waiting tasks


async def measure_one(
    kind: str, tasks: int, seconds: float, budget: float, stale_timeout: float | None = None
) -> dict[str, Any]:
    async with fw.database(kind, "fw_conc") as url:
        creator = await fw.open_broker(url)
        await fw.create_many(creator, fw.task_spec([fw.wait_step(seconds)]), tasks)
        await creator.close()

        cmd = [sys.executable, "-m", "bench.worker_proc", "--url", url]
        cmd += ["--concurrency", str(tasks), "--burst"]
        if stale_timeout is not None:
            cmd += ["--stale-timeout", str(stale_timeout)]
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, env=fw.env_for(url)
        )
        summary: dict[str, Any] = {}
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=budget)
            for line in out.decode().splitlines():
                if line.startswith("{") and "executed" in line:
                    summary = json.loads(line)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            summary = {"error": f"worker overran {budget:.0f} s"}
        wall = time.perf_counter() - t0

        counts = dict(await fw.sql(url, "SELECT status, count(*) FROM tasks GROUP BY status"))
        (recovered,) = (
            await fw.sql(url, "SELECT count(*) FROM task_events WHERE type = 'recovered'")
        )[0]
        first, last = (
            await fw.sql(
                url,
                "SELECT min(created_at), max(created_at) FROM task_events",
            )
        )[0]
        window = fw.ts(last) - fw.ts(first) if first is not None and last is not None else None
        return {
            "completed": int(counts.get("completed", 0)),
            "statuses": counts,
            "recovered": int(recovered),
            "window_s": window,
            "wall_s": wall,
            "peak_rss_mb": summary.get("peak_rss_mb"),
            "worker": summary,
        }


async def measure(args: argparse.Namespace) -> None:
    for kind in args.db:
        r = await measure_one(
            kind, args.tasks, args.seconds, args.seconds * 2 + 120, args.stale_timeout
        )
        log(f"{kind}: {r}")
        window = r["window_s"]
        window_target = WINDOW_TARGET_S * args.seconds / 20.0
        ok = (
            r["completed"] == args.tasks
            and window is not None
            and window <= window_target
            and r["peak_rss_mb"] is not None
            and r["peak_rss_mb"] <= RSS_TARGET_MB
            and r["recovered"] == 0
        )
        emit(
            "concurrency",
            "falsework",
            "first_start_to_last_completion_s",
            round(window, 2) if window is not None else None,
            db=kind,
            tasks=args.tasks,
            wait_s=args.seconds,
            limit=args.tasks,
            completed=r["completed"],
            statuses=r["statuses"],
            peak_rss_mb=r["peak_rss_mb"],
            recovered_events=r["recovered"],
            wall_s=round(r["wall_s"], 2),
            target_window_s=window_target,
            target_rss_mb=RSS_TARGET_MB,
            # issue 17, target 7: the same process's RSS with 10,000 waiting tasks
            waiting_rss_target_mb=WAITING_RSS_TARGET_MB,
            waiting_rss_met=(
                None  # the target is for 10,000 tasks (not --quick's 500)
                if args.tasks < 10_000 or r["peak_rss_mb"] is None
                else r["peak_rss_mb"] <= WAITING_RSS_TARGET_MB
            ),
            load_avg=round(os.getloadavg()[0], 1),
            ok=ok,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Falsework concurrency (benchmark 2)")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--db", default="postgres")
    parser.add_argument("--quick", action="store_true")
    # a loaded machine's database may answer a heartbeat later than the default
    # lease allows: the worker then fences its runs and nothing completes
    parser.add_argument("--stale-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    args.db = [d for d in args.db.split(",") if d]
    if args.quick:
        args.tasks, args.seconds = 500, 3.0
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
