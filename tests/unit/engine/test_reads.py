"""The group reader: the requests of one turn answered by one statement per
``MAX_PAIRS`` keys, the chunks side by side, each chunk's failure its own."""

from __future__ import annotations

import asyncio

import pytest

from falsework.engine.reads import MAX_PAIRS, MAX_PARALLEL, _Group


async def test_a_burst_is_read_in_chunks_side_by_side_and_each_key_gets_its_answer() -> None:
    calls: list[int] = []
    running = [0, 0]  # now, most at once

    async def fetch(keys: list[int]) -> list[int]:
        calls.append(len(keys))
        running[0] += 1
        running[1] = max(running[1], running[0])
        await asyncio.sleep(0.01)
        running[0] -= 1
        return [k * 2 for k in keys]

    group: _Group[int, int] = _Group(fetch, "test")
    n = MAX_PAIRS * (MAX_PARALLEL + 2) + 7
    answers = await asyncio.gather(*(group.get(k) for k in range(n)))
    assert answers == [k * 2 for k in range(n)]
    assert sorted(calls, reverse=True) == [MAX_PAIRS] * (MAX_PARALLEL + 2) + [7]
    assert running[1] == MAX_PARALLEL


async def test_a_failed_chunk_fails_its_own_keys_only() -> None:
    async def fetch(keys: list[int]) -> list[int]:
        if 0 in keys:
            raise RuntimeError("this chunk's statement failed")
        return keys

    group: _Group[int, int] = _Group(fetch, "test")
    results = await asyncio.gather(
        *(group.get(k) for k in range(MAX_PAIRS * 2)), return_exceptions=True
    )
    failed = [k for k, r in enumerate(results) if isinstance(r, RuntimeError)]
    assert failed == list(range(MAX_PAIRS))
    assert results[MAX_PAIRS:] == list(range(MAX_PAIRS, MAX_PAIRS * 2))
    with pytest.raises(RuntimeError):
        await group.get(0)
