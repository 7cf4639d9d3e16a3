"""One Falsework worker process, as the multi-process benchmarks start it.

It wires what ``falsework worker`` wires (Broker, the real WorkflowRunner, ONE
TaskWorker) plus the probe actions of ``bench.actions``, counts the tasks its
executor ran, and on exit (SIGTERM → graceful drain, or ``--burst`` and the queue
is empty) prints one JSON line: ``{"pid", "worker_id", "executed", "peak_rss_mb"}``.

    python -m bench.worker_proc --url URL --concurrency N [--burst]
                                [--stale-timeout S] [--heartbeat S] [--grace S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

from bench import fw
from bench.common import peak_rss_mb, use_uvloop


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from falsework.engine import TaskWorker
    from falsework.wiring import open_broker

    overrides: dict[str, Any] = {"concurrency": args.concurrency}
    if args.stale_timeout is not None:
        overrides["stale_timeout"] = args.stale_timeout
    if args.heartbeat is not None:
        overrides["heartbeat_interval"] = args.heartbeat
    if args.grace is not None:
        overrides["shutdown_grace"] = args.grace
    if args.max_running_per_user is not None:
        overrides["max_running_per_user"] = args.max_running_per_user
    s = fw.settings(args.url, **overrides)
    broker = await open_broker(s)
    runner = fw.executor(s)
    executed = 0

    async def counting(task: Any, io: Any) -> Any:
        nonlocal executed
        result: Any = await runner(task, io)
        executed += 1
        return result

    worker = TaskWorker(broker, counting, fw.worker_options(s))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.stop()))
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    try:
        await worker.run(burst=args.burst)
    finally:
        await broker.close()
    return {
        "pid": os.getpid(),
        "worker_id": str(worker.worker_id),
        "executed": executed,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one benchmark worker process")
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--stale-timeout", type=float, default=None)
    parser.add_argument("--heartbeat", type=float, default=None)
    parser.add_argument("--grace", type=float, default=None)
    parser.add_argument("--max-running-per-user", type=int, default=None)
    args = parser.parse_args(argv)
    use_uvloop()
    summary = asyncio.run(main_async(args))
    print(json.dumps(summary), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
