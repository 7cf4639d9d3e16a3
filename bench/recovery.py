"""Benchmark 6: SIGKILL a worker running 200 tasks; another finishes them all.

A victim worker process (limit 200) claims 200 single-step ``bench:record`` tasks
that would wait 60 s; a survivor process (limit 200) idles beside it. Once all 200
have started on the victim, it is SIGKILLed. The survivor's janitor must re-open
them (``recovered``) and run them: a re-run sees its earlier start in the record
file and waits only 0.5 s. Targets (issue 2): all 200 complete within
``stale_timeout + 5 s`` of the kill (defaults: stale 15 s, heartbeat 2 s), and zero
double execution: per task exactly one run reached its end, the victim reached none,
the survivor started each task once.

    python -m bench.recovery [--tasks 200] [--stale-timeout 15] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import tempfile
import time
from pathlib import Path

from bench import fw
from bench.actions import read_records
from bench.common import emit, log, run
from bench.procs import start_worker


async def measure(args: argparse.Namespace) -> None:
    record = Path(tempfile.mkdtemp(prefix="bench-recovery-")) / "runs.log"
    async with fw.database("postgres", "fw_rec") as url:
        creator = await fw.open_broker(url)
        env = fw.env_for(url, BENCH_RECORD_FILE=str(record))
        knobs = ["--stale-timeout", str(args.stale_timeout), "--heartbeat", str(args.heartbeat)]
        victim = await start_worker(url, args.tasks, env=env, extra=knobs, name="victim")
        await asyncio.wait_for(victim.ready.wait(), timeout=60)
        spec = fw.task_spec(
            [
                {
                    "id": "work",
                    "name": "Work",
                    "action": "bench:record",
                    "input": {"seconds": 60, "rerunSeconds": 0.5},
                }
            ]
        )
        ids = await fw.create_many(creator, spec, args.tasks)
        survivor = None
        t_kill = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                starts = {r[1] for r in read_records(str(record)) if r[0] == "start"}
                if len(starts) >= args.tasks:
                    break
                await asyncio.sleep(0.05)
            survivor = await start_worker(url, args.tasks, env=env, extra=knobs, name="survivor")
            await asyncio.wait_for(survivor.ready.wait(), timeout=60)
            await asyncio.sleep(0.5)
            t_kill = time.monotonic()
            victim.kill()
            await victim.proc.wait()
            budget = args.stale_timeout + 30
            done = 0
            while time.monotonic() < t_kill + budget:
                (done,) = (
                    await fw.sql(url, "SELECT count(*) FROM tasks WHERE status = 'completed'")
                )[0]
                if done >= args.tasks:
                    break
                await asyncio.sleep(0.1)
            (recovered,) = (
                await fw.sql(url, "SELECT count(*) FROM task_events WHERE type = 'recovered'")
            )[0]
            statuses = dict(await fw.sql(url, "SELECT status, count(*) FROM tasks GROUP BY status"))
        finally:
            await creator.close()
            if survivor is not None:
                await survivor.stop(grace=30)
            await victim.stop(grace=5)

    rows = read_records(str(record))
    with_suppress_unlink(record)
    ends = [r for r in rows if r[0] == "end"]
    ends_by_task = collections.Counter(r[1] for r in ends)
    survivor_starts = collections.Counter(
        r[1] for r in rows if r[0] == "start" and r[2] == (survivor.pid if survivor else -1)
    )
    victim_ends = sum(1 for r in ends if r[2] == victim.pid)
    double = sum(1 for n in ends_by_task.values() if n > 1) + sum(
        1 for n in survivor_starts.values() if n > 1
    )
    last_end = max((r[3] for r in ends), default=None)
    finish_s = (last_end - t_kill) if (last_end is not None and t_kill is not None) else None
    target = args.stale_timeout + 5
    ok = (
        int(done) == args.tasks
        and len(ends_by_task) == args.tasks
        and double == 0
        and victim_ends == 0
        and finish_s is not None
        and finish_s <= target
    )
    log(
        f"kill→all done {finish_s}, completed {done}, recovered events {recovered}, "
        f"double {double}, victim ends {victim_ends}, statuses {statuses}"
    )
    emit(
        "recovery",
        "falsework",
        "kill_to_all_completed_s",
        round(finish_s, 2) if finish_s is not None else None,
        db="postgres",
        tasks=args.tasks,
        task_ids=len(ids),
        completed=int(done),
        recovered_events=int(recovered),
        double_executions=double,
        victim_completed_runs=victim_ends,
        stale_timeout_s=args.stale_timeout,
        heartbeat_s=args.heartbeat,
        target_s=target,
        statuses=statuses,
        ok=ok,
    )


def with_suppress_unlink(path: Path) -> None:
    try:
        os.unlink(path)
        os.rmdir(path.parent)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Falsework recovery (benchmark 6)")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--stale-timeout", type=float, default=15.0)
    parser.add_argument("--heartbeat", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.stale_timeout, args.heartbeat = 50, 4.0, 1.0
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
