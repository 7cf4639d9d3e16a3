"""Helpers shared by every benchmark: fresh databases, timing, JSON result lines.

Every benchmark module is a script (``python -m bench.NAME [--quick]``) that prints
one JSON object per result on its own stdout line, starting with ``{``. Anything
else it prints (progress, warnings) goes to stderr, so ``bench.run_all`` can pick
the result lines out of stdout without parsing logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")

PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO_ROOT = BENCH_DIR.parent


def log(*parts: object) -> None:
    """Progress for humans: stderr, flushed, prefixed with the script's name."""
    name = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "bench"
    print(f"[{name}]", *parts, file=sys.stderr, flush=True)


def emit(bench: str, system: str, metric: str, value: float | int | None, **extra: Any) -> None:
    """Print one result line (JSON) on stdout."""
    row: dict[str, Any] = {"bench": bench, "system": system, "metric": metric, "value": value}
    row.update(extra)
    print(json.dumps(row, sort_keys=False, default=str), flush=True)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100.0 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples_ms, 50), 3),
        "p90_ms": round(percentile(samples_ms, 90), 3),
        "p99_ms": round(percentile(samples_ms, 99), 3),
        "max_ms": round(max(samples_ms), 3) if samples_ms else float("nan"),
        "samples": len(samples_ms),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _process_cpu_s(pid: int) -> float | None:
    """utime + stime of a process of this host (None: no such process here)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuProbe:
    """CPU seconds spent on a run by this process and by the Postgres backends of
    its database: on a machine shared with other work, time per task swings with
    the load, CPU per task much less. The backends are read from ``/proc``
    (Postgres on this host, Linux); elsewhere the database side is None."""

    def __init__(self) -> None:
        self._start = time.process_time()
        self.process_s = 0.0
        self.database_s: float | None = None

    def start(self) -> None:
        self._start = time.process_time()

    async def stop(self, dsn: str) -> None:
        """Call while the run's connections are still open (a backend's CPU goes
        with it when it closes)."""
        self.process_s = time.process_time() - self._start
        conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            pids = [
                r[0]
                for r in await conn.fetch(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
        finally:
            await conn.close()
        spent = [_process_cpu_s(pid) for pid in pids]
        if all(s is not None for s in spent):  # else: not on this host
            self.database_s = sum(s for s in spent if s is not None)

    def per_task_ms(self, n: int) -> dict[str, float | None]:
        db = self.database_s
        return {
            "process_cpu_ms_per_task": round(1000 * self.process_s / n, 4),
            "db_cpu_ms_per_task": round(1000 * db / n, 4) if db is not None else None,
        }


def use_uvloop() -> bool:
    """Install uvloop's event loop policy when available (fair game for every system)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run an async main under uvloop when available."""
    use_uvloop()

    async def _main() -> T:
        return await coro_fn()

    return asyncio.run(_main())


def dsn_for(dbname: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{dbname}"


async def create_database(prefix: str) -> str:
    """CREATE DATABASE with a unique name; returns the name."""
    name = f"bench_{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(prefix: str) -> AsyncIterator[str]:
    """A brand-new Postgres database for one run; yields its DSN, drops it after."""
    name = await create_database(prefix)
    try:
        yield dsn_for(name)
    finally:
        with contextlib.suppress(Exception):
            await drop_database(name)


async def drop_stale_databases() -> int:
    """Drop bench_* databases left behind by an interrupted run. Returns how many."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'")
        for row in rows:
            with contextlib.suppress(Exception):
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        return len(rows)
    finally:
        await conn.close()


class Stopwatch:
    """Monotonic wall-clock timer."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.05
) -> bool:
    """Poll an async predicate until true or the timeout passes."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval)
    return await predicate()
