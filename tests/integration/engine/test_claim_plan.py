"""A claim walks the open tasks' index in order and stops at its limit, even
when the statistics know nothing of the backlog (docs/engine.md,
"A task's life"): on Postgres, every session of the engine has bitmap scans off."""

from __future__ import annotations

from typing import Any

import pytest

from falsework.engine.factory import open_store
from falsework.engine.postgres import PostgresStore, positional
from falsework.engine.queries import load
from support.engine import task_rows


@pytest.mark.postgres
async def test_a_claim_walks_the_open_index_whatever_the_statistics_say(postgres_url: str) -> None:
    store = await open_store(postgres_url)
    try:
        assert isinstance(store, PostgresStore)
        # a backlog that autovacuum has not looked at yet (a new database, a
        # burst after a quiet spell): the statistics know nothing of it
        async with store._pool.acquire() as conn:
            await conn.execute("ALTER TABLE tasks SET (autovacuum_enabled = false)")
        await store.tasks_insert(task_rows(range(5000)), open_cap=None)
        sql, names = positional(load("postgres")["task_claim"])
        args = {"worker": "w", "n": 100}

        async def plan(conn: Any) -> str:
            rows = await conn.fetch("EXPLAIN " + sql, *(args[n] for n in names))
            return "\n".join(r[0] for r in rows)

        async with store._pool.acquire() as conn:  # a session as the engine sets it up
            assert await conn.fetchval("SHOW enable_bitmapscan") == "off"
            ours = await plan(conn)
            await conn.execute("SET enable_bitmapscan = on")
            try:
                planner_default = await plan(conn)
            finally:
                await conn.execute("RESET enable_bitmapscan")
                await conn.execute("SET enable_bitmapscan = off")
        # the case that matters: left to itself the planner reads every open task
        assert "Bitmap Heap Scan on tasks" in planner_default, planner_default
        assert "Index Scan using ix_tasks_claim" in ours, ours
        assert "Bitmap" not in ours and "Sort" not in ours, ours
        claimed = await store.task_claim("w", 100, per_user_cap=None)
        assert [c.id for c in claimed] == [r.id for r in task_rows(range(100))]  # queue order
    finally:
        await store.close()
