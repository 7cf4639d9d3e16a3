"""The peers, measured side by side with Falsework: PgQueuer and Procrastinate.

Two shapes, the same for every system (see docs/benchmarks.md):

* throughput: N no-op jobs are created first, then ONE worker process with
  concurrency C drains them; jobs/s = N / (time from worker start to queue drained);
  a fresh database per run, median of ``--repeat`` runs;
* latency: an idle worker (LISTEN/NOTIFY on), one job enqueued at a time, the time
  from just before the enqueue call to the first line of the job's handler;
  p50/p99 over ``--samples`` samples.

Everything runs under uvloop. Usage::

    python -m bench.peers [--peer pgqueuer|procrastinate|all]
                          [--what throughput|latency|all] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg

from bench.common import (
    CpuProbe,
    emit,
    fresh_database,
    latency_summary,
    log,
    median,
    run,
)

BATCH = 1_000  # jobs per enqueue call when pre-creating


# --------------------------------------------------------------------- PgQueuer
async def pgqueuer_throughput(
    dsn: str, jobs: int, concurrency: int, cpu: CpuProbe | None = None
) -> float:
    from pgqueuer import AsyncpgDriver, QueueManager
    from pgqueuer.models import Job
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    setup = await asyncpg.connect(dsn)
    queries = Queries(AsyncpgDriver(setup))
    await queries.install()
    for start in range(0, jobs, BATCH):
        n = min(BATCH, jobs - start)
        await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    await setup.close()

    conn = await asyncpg.connect(dsn)
    qm = QueueManager(Queries(AsyncpgDriver(conn)))
    done = 0

    @qm.entrypoint("noop")
    async def noop(job: Job) -> None:
        nonlocal done
        done += 1

    t0 = time.perf_counter()
    if cpu is not None:
        cpu.start()
    await asyncio.wait_for(
        qm.run(
            dequeue_timeout=timedelta(seconds=1),
            batch_size=10,
            mode=QueueExecutionMode.drain,
            max_concurrent_tasks=concurrency,
        ),
        timeout=max(120.0, jobs / 20),
    )
    elapsed = time.perf_counter() - t0
    if cpu is not None:
        await cpu.stop(dsn)
    await conn.close()
    if done != jobs:
        raise RuntimeError(f"pgqueuer ran {done} of {jobs} jobs")
    return jobs / elapsed


async def pgqueuer_latency(dsn: str, samples: int, concurrency: int) -> list[float]:
    from pgqueuer import AsyncpgDriver, QueueManager
    from pgqueuer.models import Job
    from pgqueuer.queries import Queries

    setup = await asyncpg.connect(dsn)
    await Queries(AsyncpgDriver(setup)).install()
    await setup.close()

    conn = await asyncpg.connect(dsn)
    qm = QueueManager(Queries(AsyncpgDriver(conn)))
    started: asyncio.Queue[float] = asyncio.Queue()

    @qm.entrypoint("probe")
    async def probe(job: Job) -> None:
        started.put_nowait(time.perf_counter())

    runner = asyncio.create_task(
        qm.run(dequeue_timeout=timedelta(seconds=30), max_concurrent_tasks=concurrency)
    )
    producer_conn = await asyncpg.connect(dsn)
    producer = Queries(AsyncpgDriver(producer_conn))

    async def enqueue() -> None:
        await producer.enqueue("probe", None)

    try:
        return await _sample(enqueue, started, samples)
    finally:
        qm.shutdown.set()
        await asyncio.wait_for(runner, timeout=30)
        await producer_conn.close()
        await conn.close()


# ---------------------------------------------------------------- Procrastinate
def _procrastinate_app(dsn: str) -> Any:
    import procrastinate

    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))


async def procrastinate_throughput(dsn: str, jobs: int, concurrency: int) -> float:
    app = _procrastinate_app(dsn)
    done = 0

    @app.task(name="noop")
    async def noop() -> None:
        nonlocal done
        done += 1

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        for start in range(0, jobs, BATCH):
            n = min(BATCH, jobs - start)
            await noop.batch_defer_async(*([{}] * n))
        t0 = time.perf_counter()
        await asyncio.wait_for(
            app.run_worker_async(
                concurrency=concurrency,
                wait=False,
                install_signal_handlers=False,
                listen_notify=True,
            ),
            timeout=max(120.0, jobs / 20),
        )
        elapsed = time.perf_counter() - t0
    if done != jobs:
        raise RuntimeError(f"procrastinate ran {done} of {jobs} jobs")
    return jobs / elapsed


async def procrastinate_latency(dsn: str, samples: int, concurrency: int) -> list[float]:
    app = _procrastinate_app(dsn)
    started: asyncio.Queue[float] = asyncio.Queue()

    @app.task(name="probe")
    async def probe() -> None:
        started.put_nowait(time.perf_counter())

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        worker = asyncio.create_task(
            app.run_worker_async(
                concurrency=concurrency,
                wait=True,
                install_signal_handlers=False,
                listen_notify=True,
                fetch_job_polling_interval=5.0,
            )
        )
        await asyncio.sleep(1.0)  # let the listener subscribe

        async def enqueue() -> None:
            await probe.defer_async()

        try:
            return await _sample(enqueue, started, samples)
        finally:
            worker.cancel()
            try:
                await asyncio.wait_for(worker, timeout=30)
            except (asyncio.CancelledError, TimeoutError):
                pass


# ----------------------------------------------------------------- shared parts
async def _sample(
    enqueue: Callable[[], Awaitable[None]], started: asyncio.Queue[float], samples: int
) -> list[float]:
    """Enqueue one job at a time into an idle worker; return enqueue→start in ms."""
    rng = random.Random(7)
    # warm-up: connections, prepared statements, the listener
    for _ in range(5):
        await enqueue()
        await asyncio.wait_for(started.get(), timeout=30)
        await asyncio.sleep(0.05)
    out: list[float] = []
    for _ in range(samples):
        t0 = time.perf_counter()
        await enqueue()
        t1 = await asyncio.wait_for(started.get(), timeout=30)
        out.append((t1 - t0) * 1000.0)
        # idle again, at a random phase with respect to any poll timer
        await asyncio.sleep(0.02 + rng.random() * 0.03)
    return out


THROUGHPUT = {"pgqueuer": pgqueuer_throughput, "procrastinate": procrastinate_throughput}
LATENCY = {"pgqueuer": pgqueuer_latency, "procrastinate": procrastinate_latency}
VERSIONS = {"pgqueuer": "pgqueuer", "procrastinate": "procrastinate"}


def _version(peer: str) -> str:
    from importlib.metadata import version

    return version(VERSIONS[peer])


async def _throughput(peer: str, jobs: int, args: argparse.Namespace) -> None:
    rates: list[float] = []
    for i in range(args.repeat):
        async with fresh_database(f"{peer}_tp") as dsn:
            rate = await THROUGHPUT[peer](dsn, jobs, args.concurrency)
        log(f"{peer} throughput ({jobs} jobs) run {i + 1}/{args.repeat}: {rate:.0f} jobs/s")
        rates.append(rate)
    emit(
        "throughput",
        peer,
        "jobs_per_s",
        round(median(rates), 1),
        db="postgres",
        version=_version(peer),
        jobs=jobs,
        concurrency=args.concurrency,
        runs=[round(r, 1) for r in rates],
    )


async def measure(args: argparse.Namespace) -> None:
    peers = ["pgqueuer", "procrastinate"] if args.peer == "all" else [args.peer]
    for peer in peers:
        if args.what in ("throughput", "all"):
            sizes = [args.jobs]
            if peer == "pgqueuer" and args.big_jobs:
                sizes.append(args.big_jobs)  # like for like with Falsework's 20,000
            for jobs in sizes:
                await _throughput(peer, jobs, args)
        if args.what in ("latency", "all"):
            async with fresh_database(f"{peer}_lat") as dsn:
                samples = await LATENCY[peer](dsn, args.samples, args.concurrency)
            summary = latency_summary(samples)
            log(f"{peer} latency: {summary}")
            emit(
                "latency",
                peer,
                "p50_ms",
                summary["p50_ms"],
                db="postgres",
                version=_version(peer),
                **{k: v for k, v in summary.items() if k != "p50_ms"},
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=["pgqueuer", "procrastinate", "all"], default="all")
    parser.add_argument("--what", choices=["throughput", "latency", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--big-jobs", type=int, default=20_000, help="PgQueuer only; 0 = skip")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.big_jobs, args.repeat, args.samples = 500, 0, 1, 20
    logging.basicConfig(level=logging.WARNING)
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
