"""runner/deadlines.py: the steps' timeouts on one timer per loop behave as
``asyncio.timeout(delay)`` does, and a step that ended leaves nothing behind."""

from __future__ import annotations

import asyncio
from typing import Any

from falsework.runner.deadlines import Deadlines, deadlines


async def _step(delay: float, work: float) -> str:
    clock = deadlines()
    scope = asyncio.timeout(None)
    try:
        async with scope:
            entry = clock.add(delay, scope)
            try:
                await asyncio.sleep(work)
            finally:
                clock.discard(entry)
    except TimeoutError:
        return "timed out" if scope.expired() else "error"
    return "done"


def test_each_step_times_out_at_its_own_deadline_on_one_timer() -> None:
    async def main() -> tuple[list[str], int, bool]:
        steps = [_step(0.05, 30), _step(0.3, 0.1), _step(0.15, 30), _step(60, 0.2)]
        results = await asyncio.wait_for(asyncio.gather(*steps), 20)
        clock = deadlines()
        return list(results), len(clock), clock._timer is None

    assert asyncio.run(main()) == (["timed out", "done", "timed out", "done"], 0, True)


def test_a_cancel_from_outside_is_not_a_timeout() -> None:
    async def main() -> bool:
        task = asyncio.create_task(_step(30, 30))
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return len(deadlines()) == 0
        return False

    assert asyncio.run(main()) is True


def test_ended_steps_are_dropped_from_the_heap() -> None:
    async def main() -> tuple[int, int]:
        clock = Deadlines()
        scopes = [asyncio.timeout(None) for _ in range(200)]
        entries = []
        for scope in scopes:
            await scope.__aenter__()
            entries.append(clock.add(3600, scope))
        for entry in entries[:150]:
            clock.discard(entry)
        size = len(clock._heap)
        for entry in entries[150:]:
            clock.discard(entry)
        for scope in scopes:
            await scope.__aexit__(None, None, None)
        return len(clock), size

    alive, heap = asyncio.run(main())
    assert alive == 0
    assert heap < 100  # rebuilt once most of it had ended, not kept for an hour


def test_a_step_ending_first_keeps_the_timer_and_the_next_deadline_still_fires() -> None:
    """Steps end mostly in the order they began: the one ending first leaves the
    timer set for its own (earlier) deadline rather than making a new one, and
    the next step still times out at its deadline, not before, not never."""

    async def main() -> tuple[bool, bool, bool, str, int]:
        clock = Deadlines()
        loop = asyncio.get_running_loop()
        first, second = asyncio.timeout(None), asyncio.timeout(None)
        await first.__aenter__()
        early = clock.add(0.05, first)
        await asyncio.sleep(0)  # the timer is set at the loop's next turn
        timer = clock._timer
        assert timer is not None
        await second.__aenter__()
        late = clock.add(0.2, second)
        due = late[0]
        clock.discard(early)  # the first step ended
        await first.__aexit__(None, None, None)
        kept = clock._timer is timer
        fired_at = 0.0
        try:
            await asyncio.sleep(30)
            outcome = "not cancelled"
        except asyncio.CancelledError:
            fired_at = loop.time()
            try:
                await second.__aexit__(asyncio.CancelledError, asyncio.CancelledError(), None)
                outcome = "cancelled, no timeout"
            except TimeoutError:
                outcome = "timed out"
        clock.discard(late)
        return kept, second.expired(), fired_at >= due - 0.002, outcome, len(clock)

    kept, expired, not_early, outcome, alive = asyncio.run(main())
    assert kept
    assert (expired, not_early, outcome, alive) == (True, True, "timed out", 0)


def test_the_last_step_ending_leaves_no_timer() -> None:
    async def main() -> tuple[bool, bool]:
        clock = Deadlines()
        scopes = [asyncio.timeout(None) for _ in range(3)]
        entries = []
        for scope in scopes:
            await scope.__aenter__()
            entries.append(clock.add(3600, scope))
        await asyncio.sleep(0)  # the timer is set at the loop's next turn
        for entry in entries[:2]:
            clock.discard(entry)
        still = clock._timer is not None
        clock.discard(entries[2])
        for scope in scopes:
            await scope.__aexit__(None, None, None)
        return still, clock._timer is None

    assert asyncio.run(main()) == (True, True)


def test_a_step_that_ends_before_the_loop_turns_makes_no_timer() -> None:
    """A step that never waits (a log step) starts and ends in one turn of the
    loop: its deadline costs no loop timer; a step that waits still gets one."""

    async def main() -> tuple[bool, bool, bool]:
        clock = Deadlines()
        loop = asyncio.get_running_loop()
        made: list[float] = []
        call_at = loop.call_at

        def counting(when: float, callback: Any, *args: Any, **kw: Any) -> asyncio.TimerHandle:
            made.append(when)
            return call_at(when, callback, *args, **kw)

        loop.call_at = counting  # type: ignore[method-assign]
        for _ in range(100):
            scope = asyncio.timeout(None)
            await scope.__aenter__()
            clock.discard(clock.add(3600, scope))
            await scope.__aexit__(None, None, None)
        await asyncio.sleep(0)
        quick = (made == [], clock._timer is None)
        waited = await _step(3600, 0.01)  # a step that waits: one timer for it
        # (asyncio.sleep's own timer aside)
        for_deadlines = [when for when in made if when > loop.time() + 3000]
        return quick[0], quick[1], waited == "done" and len(for_deadlines) == 1

    assert asyncio.run(main()) == (True, True, True)


def test_each_loop_has_its_own_deadlines_whichever_asked_last() -> None:
    async def mine() -> Deadlines:
        return deadlines()

    one, two = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        first = one.run_until_complete(mine())
        assert one.run_until_complete(mine()) is first
        second = two.run_until_complete(mine())
        assert second is not first
        assert one.run_until_complete(mine()) is first
        assert two.run_until_complete(mine()) is second
    finally:
        one.close()
        two.close()
    # a loop that replaced a collected one (same id, maybe) starts afresh
    del one
    three = asyncio.new_event_loop()
    try:
        assert three.run_until_complete(mine()) not in (first, second)
    finally:
        three.close()
