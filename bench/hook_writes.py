"""The webhooks' outbox with no webhook configured (issue 9 follow-up): row updates
of ``tasks`` per finished task and the size of ``ix_tasks_unhooked`` after a
worker, with its dispatcher as ``serve`` runs it, ran N empty tasks on Postgres.
Counts, not timings: the same on a busy machine as on a quiet one.

    python -m bench.hook_writes [--tasks 2000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from typing import Any

import asyncpg

from bench import fw
from bench.common import emit, fresh_database, run
from falsework.config import Settings
from falsework.engine import Broker, TaskWorker
from falsework.engine.models import NewTask
from falsework.runner import as_executor
from falsework.taskio import TaskInput, TaskIO
from falsework.wiring import broker_options, webhook_services

SPEC = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "steps": [],
    "templateInfo": {"entityRef": "template:default/empty"},
}


async def _nothing(task: TaskInput, io: TaskIO) -> dict[str, Any]:
    return {}


async def measure(tasks: int) -> None:
    async with fresh_database("hooks") as url:
        data = tempfile.mkdtemp(prefix="falsework-hooks-")
        settings = Settings(data_dir=data, concurrency=50, janitor_interval=0.2)
        broker = await Broker.open(url, broker_options(settings))
        try:
            await broker.create_many([NewTask(spec=SPEC) for _ in range(tasks)])
            dispatcher, deliveries = webhook_services(settings, broker)
            executor = deliveries.wrap(as_executor(_nothing))
            worker = TaskWorker(broker, executor, fw.worker_options(settings))
            dispatching = asyncio.create_task(dispatcher.run())
            await worker.run(burst=True)
            while await dispatcher.dispatch():
                pass  # what a running node's dispatcher does next
            dispatching.cancel()
        finally:
            await broker.close()
        await asyncio.sleep(1)  # the statistics collector's flush
        conn = await asyncpg.connect(url)
        try:
            updates = await conn.fetchval(
                "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'tasks'"
            )
            size = await conn.fetchval("SELECT pg_relation_size('ix_tasks_unhooked')")
        finally:
            await conn.close()
    emit("hook_writes", "falsework", "task_updates_per_task", round(updates / tasks, 2))
    emit("hook_writes", "falsework", "ix_tasks_unhooked_bytes", size, tasks=tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="500 tasks")
    args = parser.parse_args()
    tasks = 500 if args.quick else args.tasks
    run(lambda: measure(tasks))


if __name__ == "__main__":
    main()
