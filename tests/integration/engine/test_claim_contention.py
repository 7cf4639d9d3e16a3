"""8 claimers on separate connections, 2,000 tasks: each claimed exactly once."""

from __future__ import annotations

import asyncio
import random

from falsework.engine.factory import open_store
from falsework.engine.store import Store
from support.engine import task_rows


async def test_eight_claimers_claim_each_task_once(database_url: str, store: Store) -> None:
    rows = task_rows(range(2000))
    inserted = await store.tasks_insert(rows, open_cap=None)
    assert [r.outcome for r in inserted] == ["new"] * 2000
    claimers = [await open_store(database_url) for _ in range(8)]

    async def claim_all(s: Store, name: str) -> list[str]:
        got: list[str] = []
        while True:
            batch = await s.task_claim(name, random.randint(1, 25), per_user_cap=None)
            if not batch:
                return got
            got.extend(c.id for c in batch)

    try:
        results = await asyncio.gather(*(claim_all(s, f"w{i}") for i, s in enumerate(claimers)))
    finally:
        for s in claimers:
            await s.close()
    claimed = [tid for got in results for tid in got]
    assert len(claimed) == 2000
    assert set(claimed) == {r.id for r in rows}
    assert sum(1 for got in results if got) >= 2  # they really competed
