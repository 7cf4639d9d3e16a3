"""A worker process for the multi-process tests: records every execution.

Usage: python proc_worker.py URL DATA_DIR CONCURRENCY [GRACE]

Each run inserts a row (task id, claim token, pid, start) into test_executions,
sleeps spec["sleep"] seconds (or blocks when spec["block"]), then stamps its end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg

from falsework.config import Settings
from falsework.engine import Broker, ClaimedTask, TaskWorker
from falsework.runner import as_executor
from falsework.taskio import TaskIO
from falsework.wiring import broker_options, worker_options

SCHEMA = """
CREATE TABLE IF NOT EXISTS test_executions (
    id bigserial PRIMARY KEY, task_id text NOT NULL, token text NOT NULL, pid int NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(), ended_at timestamptz)
"""


async def main(url: str, data_dir: str, concurrency: int, grace: float) -> None:
    settings = Settings(
        data_dir=Path(data_dir),
        concurrency=concurrency,
        heartbeat_interval=0.2,
        stale_timeout=2.0,
        poll_interval=0.2,
        max_poll_interval=0.5,
        janitor_interval=0.3,
        shutdown_grace=grace,
    )
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(4242)")
        await conn.execute(SCHEMA)
        await conn.execute("SELECT pg_advisory_unlock(4242)")
    pid = os.getpid()

    async def record(task: ClaimedTask, io: TaskIO) -> dict[str, Any]:
        row = await pool.fetchval(
            "INSERT INTO test_executions (task_id, token, pid) VALUES ($1, $2, $3) RETURNING id",
            task.id,
            task.claim_token,
            pid,
        )
        await io.emit({"message": f"running in {pid}"})
        if task.spec.get("block"):
            await asyncio.Event().wait()
        if task.attempt == 1 and "sleep_first" in task.spec:
            await asyncio.sleep(float(task.spec["sleep_first"]))
        await asyncio.sleep(float(task.spec.get("sleep", 0.05)))
        await pool.execute(
            "UPDATE test_executions SET ended_at = clock_timestamp() WHERE id = $1", row
        )
        return {"pid": pid}

    broker = await Broker.open(url, broker_options(settings))
    worker = TaskWorker(broker, as_executor(record), worker_options(settings))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.request_stop)
    run = asyncio.create_task(worker.run())
    while not worker.alive:  # noqa: ASYNC110 - a one-off start-up wait
        await asyncio.sleep(0.01)
    print(f"ready {worker.worker_id}", flush=True)
    await run
    await broker.close()
    await pool.close()
    print("stopped", flush=True)


if __name__ == "__main__":
    grace = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), grace))
