"""Issue 17, target 5: Falsework's throughput beside PgQueuer's, run by run.

``bench.peers`` and ``bench.throughput`` measure each system in its own block of
runs; on this machine, whose speed drifts by 2x within an hour, two blocks taken
minutes apart swung the ratio from 0.74x to 1.75x. Here the two alternate run by
run (F P, P F, F P, ...: each round starts with the other system), each run on a
fresh Postgres database with the same number of pre-created no-op jobs and the
same concurrency. The figure is the ratio of the medians; every round's own
ratio and both spreads are reported beside it, so a reader sees how stable it is.

    python -m bench.throughput_side [--rounds 5] [--tasks 10000] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Awaitable, Callable

from bench import peers
from bench.common import CpuProbe, emit, fresh_database, log, median, run
from bench.throughput import one_run

TARGET = 1.5  # Falsework's tasks/s over PgQueuer's jobs/s (issue 17)


# CPU per task of each run (this process, the database's backends): the
# machine's load moves time per task far more than CPU per task
CPU: dict[str, list[dict[str, float | None]]] = {"falsework": [], "pgqueuer": []}


async def _falsework(tasks: int, concurrency: int) -> float:
    result = await one_run("postgres", tasks, concurrency)
    if result["completed"] != tasks:
        raise RuntimeError(f"falsework completed {result['completed']} of {tasks} tasks")
    CPU["falsework"].append(
        {k: result.get(k) for k in ("process_cpu_ms_per_task", "db_cpu_ms_per_task")}
    )
    return float(result["tasks_per_s"])


async def _pgqueuer(tasks: int, concurrency: int) -> float:
    cpu = CpuProbe()
    async with fresh_database("pgqueuer_tps") as dsn:
        rate = await peers.pgqueuer_throughput(dsn, tasks, concurrency, cpu)
    CPU["pgqueuer"].append(cpu.per_task_ms(tasks))
    return rate


def _cpu_median(name: str, key: str) -> float | None:
    values = [v for v in (c[key] for c in CPU[name]) if v is not None]
    return round(median(values), 4) if values else None


SYSTEMS: dict[str, Callable[[int, int], Awaitable[float]]] = {
    "falsework": _falsework,
    "pgqueuer": _pgqueuer,
}


def _spread(values: list[float]) -> list[float]:
    return [round(min(values), 1), round(max(values), 1)]


async def measure(args: argparse.Namespace) -> None:
    names = list(SYSTEMS)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            rate = await SYSTEMS[name](args.tasks, args.concurrency)
            rates[name].append(rate)
            log(f"round {r + 1}/{args.rounds} {name}: {rate:.0f}/s (load {os.getloadavg()[0]:.2f})")
    ours, theirs = rates["falsework"], rates["pgqueuer"]
    ratio = median(ours) / median(theirs)
    per_round = [round(a / b, 2) for a, b in zip(ours, theirs, strict=True)]
    log(f"falsework {median(ours):.0f}/s, pgqueuer {median(theirs):.0f}/s: {ratio:.2f}x")
    emit(
        "throughput_side",
        "falsework",
        "times_pgqueuer",
        round(ratio, 2),
        db="postgres",
        tasks=args.tasks,
        concurrency=args.concurrency,
        rounds=args.rounds,
        falsework_tasks_per_s=round(median(ours), 1),
        falsework_spread=_spread(ours),
        pgqueuer_jobs_per_s=round(median(theirs), 1),
        pgqueuer_spread=_spread(theirs),
        pgqueuer_version=peers._version("pgqueuer"),
        round_ratios=per_round,
        **{
            f"{name}_{key}": _cpu_median(name, key)
            for name in names
            for key in ("process_cpu_ms_per_task", "db_cpu_ms_per_task")
        },
        load_avg=round(os.getloadavg()[0], 2),
        target=TARGET,
        ok=ratio >= TARGET,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.tasks = 2, 500
    logging.basicConfig(level=logging.WARNING)
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
