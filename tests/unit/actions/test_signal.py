"""``ActionContext.signal``: a step's cancel signal behaves as an ``asyncio.Event``
(set, clear, wait) without a queue until someone waits."""

from __future__ import annotations

import asyncio

from falsework.actions.context import Signal


def test_waiters_wake_when_set_and_a_set_signal_does_not_block() -> None:
    async def main() -> list[object]:
        signal = Signal()
        waiters = [asyncio.create_task(signal.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters) and not signal.is_set()
        signal.set()
        woken = await asyncio.wait_for(asyncio.gather(*waiters), 5)
        late = await asyncio.wait_for(signal.wait(), 5)  # already set: at once
        signal.clear()
        return [*woken, late, signal.is_set()]

    assert asyncio.run(main()) == [True, True, True, True, False]


def test_a_cancelled_waiter_leaves_the_others_waiting() -> None:
    async def main() -> bool:
        signal = Signal()
        gone = asyncio.create_task(signal.wait())
        stays = asyncio.create_task(signal.wait())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        signal.set()
        return await asyncio.wait_for(stays, 5)

    assert asyncio.run(main()) is True
