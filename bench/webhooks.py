"""Completion webhooks: how fast the outbox drains, so it keeps up with the workers.

N tasks are created and marked finished straight in the database; then ONE
``Dispatcher`` (``falsework.webhooks``) drains the outbox page by page, as every
worker process runs it: with no receiver configured (it only marks each finish
seen: the cost every deployment pays) and with one receiver that wants every
finish (it also creates one delivery task per finish). tasks/s = N / drain time.
Nothing is sent: the deliveries' HTTP calls are the receivers' time, not ours.
A fresh database per run; median of ``--repeat``.

    python -m bench.webhooks [--tasks 20000] [--repeat 3] [--db postgres,sqlite] [--quick]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench import fw
from bench.common import emit, log, median, run

FINISH = {
    "postgres": "UPDATE tasks SET status = 'completed', finished_at = clock_timestamp()",
    "sqlite": "UPDATE tasks SET status = 'completed', "
    "finished_at = strftime('%Y-%m-%d %H:%M:%f', 'now')",
}


async def finish_all(url: str, kind: str) -> None:
    if kind == "postgres":
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            await conn.execute(FINISH[kind])
        finally:
            await conn.close()
    else:
        import contextlib
        import sqlite3

        path = url.split("sqlite:///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(FINISH[kind])
            conn.commit()


async def one_run(kind: str, tasks: int, hooks: list[dict[str, Any]]) -> dict[str, Any]:
    from falsework.webhooks import Dispatcher

    async with fw.database(kind, "fw_hooks") as url:
        broker = await fw.open_broker(url)
        await fw.create_many(broker, fw.task_spec([fw.log_step()]), tasks)
        await finish_all(url, kind)
        s = fw.settings(url, webhooks=hooks)
        dispatcher = Dispatcher(broker, s.webhooks, interval=s.janitor_interval)
        t0 = time.perf_counter()
        drained = 0
        while True:
            n = await dispatcher.dispatch()
            drained += n
            if n == 0:
                break
        elapsed = time.perf_counter() - t0
        (left,) = (
            await fw.sql(
                url,
                "SELECT count(*) FROM tasks WHERE hooked_at IS NULL AND finished_at IS NOT NULL",
            )
        )[0]
        (made,) = (await fw.sql(url, "SELECT count(*) FROM tasks WHERE status = 'open'"))[0]
        await broker.close()
        return {"elapsed": elapsed, "drained": drained, "left": int(left), "deliveries": int(made)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", default="postgres,sqlite")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.repeat = 2_000, 1
    receiver = [{"url": "https://hooks.example.com/falsework", "secret_env": "BENCH_HOOK"}]
    for kind in args.db.split(","):
        for label, hooks in (("no receiver", []), ("one receiver", receiver)):
            runs = [
                run(lambda k=kind, h=hooks: one_run(k, args.tasks, h)) for _ in range(args.repeat)
            ]
            for r in runs:
                assert r["drained"] == args.tasks and r["left"] == 0, r
                assert r["deliveries"] == (args.tasks if hooks else 0), r
            rates = [args.tasks / r["elapsed"] for r in runs]
            log(f"{kind}, {label}: {', '.join(f'{x:,.0f}' for x in rates)} finished tasks/s")
            emit(
                "webhooks",
                "falsework",
                "outbox_drain_tasks_per_s",
                round(median(rates)),
                db=kind,
                receivers=len(hooks),
                tasks=args.tasks,
                runs=[round(x) for x in rates],
            )


if __name__ == "__main__":
    main()
