"""The order of SQLite's write transactions (engine/sqlite.py, ``WriterTurns``):
first come, first served, except that an urgent one (a create's insert) passes
the others, at most once in a row while they wait; cancels leave no one stuck."""

from __future__ import annotations

import asyncio

import pytest

from falsework.engine.sqlite import WriterTurns


async def holder(
    turns: WriterTurns, release: asyncio.Event, then: list[asyncio.Task[None]]
) -> None:
    """Hold the turn until ``release``; then cancel the tasks in ``then`` at once
    (the turn just handed to the first of them, which has not run yet)."""
    async with turns.turn():
        await release.wait()
    for task in then:
        task.cancel()


async def one(turns: WriterTurns, order: list[str], name: str, urgent: bool = False) -> None:
    async with turns.turn(urgent=urgent):
        order.append(name)
        await asyncio.sleep(0)  # hold it across a turn of the loop


async def line_up(turns: WriterTurns, order: list[str], *who: tuple[str, bool]) -> None:
    """Hold the turn, let ``who`` (name, urgent) queue in that order, release, and
    wait for all of them: ``order`` receives the names in the order they ran."""
    release = asyncio.Event()
    first = asyncio.create_task(holder(turns, release, []))
    await asyncio.sleep(0)
    tasks = []
    for name, urgent in who:
        tasks.append(asyncio.create_task(one(turns, order, name, urgent)))
        await asyncio.sleep(0)  # each queues before the next
    release.set()
    await asyncio.gather(first, *tasks)


async def test_in_the_order_asked_when_none_is_urgent() -> None:
    order: list[str] = []
    await line_up(WriterTurns(), order, ("a", False), ("b", False), ("c", False))
    assert order == ["a", "b", "c"]


async def test_an_urgent_one_goes_ahead_of_the_others_waiting() -> None:
    order: list[str] = []
    await line_up(WriterTurns(), order, ("claim", False), ("flush", False), ("create", True))
    assert order == ["create", "claim", "flush"]


async def test_urgent_ones_pass_at_most_once_in_a_row() -> None:
    order: list[str] = []
    who = [("claim", False), ("flush", False), ("c1", True), ("c2", True), ("c3", True)]
    await line_up(WriterTurns(), order, *who)
    assert order == ["c1", "claim", "c2", "flush", "c3"]


async def test_urgent_ones_in_a_row_when_nobody_else_waits() -> None:
    order: list[str] = []
    await line_up(WriterTurns(), order, ("c1", True), ("c2", True), ("other", False))
    assert order == ["c1", "other", "c2"]


async def test_the_turn_is_free_again_after_an_error() -> None:
    turns = WriterTurns()
    with pytest.raises(RuntimeError):
        async with turns.turn(urgent=True):
            raise RuntimeError("refused")
    async with asyncio.timeout(1), turns.turn():
        pass


async def cancel_one(*, as_its_turn_comes: bool) -> None:
    """An urgent waiter, then another, queue behind a holder; the first is
    cancelled while in line, or just as the holder hands it the turn. The other
    runs alone, and the turn is free after."""
    turns = WriterTurns()
    order: list[str] = []
    release = asyncio.Event()
    handed: list[asyncio.Task[None]] = []
    first = asyncio.create_task(holder(turns, release, handed))
    await asyncio.sleep(0)
    victim = asyncio.create_task(one(turns, order, "victim", urgent=True))
    survivor = asyncio.create_task(one(turns, order, "survivor"))
    await asyncio.sleep(0)
    if as_its_turn_comes:
        handed.append(victim)  # the holder cancels it right after handing it the turn
    else:
        victim.cancel()
        await asyncio.sleep(0)
    release.set()
    async with asyncio.timeout(1):
        await asyncio.gather(first, survivor)
    await asyncio.sleep(0)
    assert victim.cancelled()
    assert order == ["survivor"]
    async with asyncio.timeout(1), turns.turn():
        pass


async def test_a_waiter_cancelled_in_line_leaves_it() -> None:
    await cancel_one(as_its_turn_comes=False)


async def test_a_waiter_cancelled_as_its_turn_came_hands_it_on() -> None:
    await cancel_one(as_its_turn_comes=True)
