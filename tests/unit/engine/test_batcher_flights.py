"""The write-behind buffer's flushes side by side (``Batcher(parallel=2)``): a
backlog goes out on two flushes at once, each task's writes in one flush at a
time and in order. No database: the writer is a fake that holds each flush open
until the test lets it land."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from falsework.engine import batcher as batcher_module
from falsework.engine.batcher import Batcher
from falsework.engine.models import Finish, WriteBatch
from falsework.engine.notify import Hub


class HeldWriter:
    """Records each flush's writes; a flush lands when the test releases it."""

    def __init__(self) -> None:
        self.flushes: list[WriteBatch] = []
        self.gates: list[asyncio.Event] = []
        self.in_flight: list[set[str]] = []
        self.most_at_once = 0
        self.overlapping_tasks: set[str] = set()
        self.started = asyncio.Event()

    async def __call__(self, batch: WriteBatch) -> set[str]:
        ids = set(batch.tokens)
        for other in self.in_flight:
            self.overlapping_tasks |= ids & other
        self.in_flight.append(ids)
        self.most_at_once = max(self.most_at_once, len(self.in_flight))
        gate = asyncio.Event()
        self.flushes.append(batch)
        self.gates.append(gate)
        self.started.set()
        try:
            await gate.wait()
        finally:
            self.in_flight.remove(ids)
        return set()

    async def flushes_started(self, n: int) -> None:
        while len(self.flushes) < n:
            self.started.clear()
            await self.started.wait()


@pytest.fixture
def writer() -> HeldWriter:
    return HeldWriter()


@pytest.fixture
def batcher(writer: HeldWriter, request: pytest.FixtureRequest) -> Batcher:
    """The buffer over ``writer``: one flush at a time, or as many as
    :data:`TWO_AT_ONCE` asks."""
    parallel: int = getattr(request, "param", 1)
    return Batcher(writer, Hub(), lambda _ids: None, parallel=parallel)


TWO_AT_ONCE = pytest.mark.parametrize("batcher", [2], indirect=True, ids=["parallel=2"])


@contextlib.asynccontextmanager
async def running(batcher: Batcher):  # type: ignore[no-untyped-def]
    flusher = asyncio.create_task(batcher.run())
    try:
        yield
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher


async def first_flight(batcher: Batcher, writer: HeldWriter) -> None:
    """A first flush in flight, holding task a (its one event, ``"a1"``)."""
    batcher.event("a", "ta", "log", '"a1"')
    await asyncio.wait_for(writer.flushes_started(1), 5)


def _events(batch: WriteBatch, task_id: str) -> list[str]:
    return [body for tid, _token, _type, body in batch.events if tid == task_id]


@TWO_AT_ONCE
async def test_a_backlog_goes_out_on_two_flushes_of_disjoint_tasks(
    monkeypatch: pytest.MonkeyPatch, writer: HeldWriter, batcher: Batcher
) -> None:
    monkeypatch.setattr(batcher_module, "MAX_FLUSH_EVENTS", 4)
    async with running(batcher):
        await first_flight(batcher, writer)
        # meanwhile: a's next write, and a backlog of b..e (two events each)
        batcher.event("a", "ta", "log", '"a2"')
        for tid in "bcde":
            for n in (1, 2):
                batcher.event(tid, "t" + tid, "log", f'"{tid}{n}"')
        # the backlog starts a second flush beside the first, without a
        await asyncio.wait_for(writer.flushes_started(2), 5)
        second = writer.flushes[1]
        assert "a" not in second.tokens
        assert set(second.tokens) == {"b", "c"}  # whole tasks up to 4 events
        assert writer.most_at_once == 2
        # no third flush while two are in flight
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(writer.flushes) == 2
        writer.gates[0].set()
        # a's flush landed: a's second write goes out now, after its first
        await asyncio.wait_for(writer.flushes_started(3), 5)
        third = writer.flushes[2]
        assert _events(third, "a") == ['"a2"']
        writer.gates[1].set()
        writer.gates[2].set()
        await asyncio.wait_for(batcher.flushed(), 5)
    assert writer.overlapping_tasks == set()
    written = [body for batch in writer.flushes for *_ignored, body in batch.events]
    assert sorted(written) == sorted(
        ['"a1"', '"a2"'] + [f'"{t}{n}"' for t in "bcde" for n in (1, 2)]
    )
    for tid in "bcde":
        assert [b for batch in writer.flushes for b in _events(batch, tid)] == [
            f'"{tid}1"',
            f'"{tid}2"',
        ]


@TWO_AT_ONCE
async def test_a_few_writes_wait_for_the_flush_in_flight(
    monkeypatch: pytest.MonkeyPatch, writer: HeldWriter, batcher: Batcher
) -> None:
    # below a flush's worth of events the second flush does not start: the
    # writes wait and go out together (as big a group commit as before)
    monkeypatch.setattr(batcher_module, "MAX_FLUSH_EVENTS", 100)
    async with running(batcher):
        await first_flight(batcher, writer)
        done = [
            batcher.finish(Finish(tid, "t" + tid, "completed", "completion", "{}", False))
            for tid in "bcd"
        ]
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(writer.flushes) == 1
        assert not any(f.done() for f in done)
        writer.gates[0].set()
        await asyncio.wait_for(writer.flushes_started(2), 5)
        assert set(writer.flushes[1].tokens) == {"b", "c", "d"}
        writer.gates[1].set()
        await asyncio.wait_for(asyncio.gather(*done), 5)
        await asyncio.wait_for(batcher.flushed(), 5)


async def test_one_flush_at_a_time_by_default(
    monkeypatch: pytest.MonkeyPatch, writer: HeldWriter, batcher: Batcher
) -> None:
    monkeypatch.setattr(batcher_module, "MAX_FLUSH_EVENTS", 2)
    async with running(batcher):
        for tid in "abcdef":
            batcher.event(tid, "t" + tid, "log", f'"{tid}"')
            batcher.event(tid, "t" + tid, "log", f'"{tid}"')
        for n in range(1, 7):  # one task (2 events) a flush
            await asyncio.wait_for(writer.flushes_started(n), 5)
            for _ in range(20):
                await asyncio.sleep(0)
            assert len(writer.flushes) == n
            writer.gates[n - 1].set()
        await asyncio.wait_for(batcher.flushed(), 5)
    assert writer.most_at_once == 1


@TWO_AT_ONCE
async def test_a_bug_in_a_flush_reaches_the_flusher(
    monkeypatch: pytest.MonkeyPatch, batcher: Batcher
) -> None:
    # the supervisor restarts a flusher that raised: a flush's own bug must
    # surface in run(), not die unseen in its task

    async def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(batcher, "_flush", broken)
    batcher.event("a", "ta", "log", '"a1"')
    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(batcher.run(), 5)


async def test_past_the_high_water_a_writer_waits_for_a_flush(
    monkeypatch: pytest.MonkeyPatch, writer: HeldWriter, batcher: Batcher
) -> None:
    monkeypatch.setattr(batcher_module, "HIGH_WATER", 3)
    # the write says whether its writer must wait (no second call per event)
    assert [batcher.event("a", "ta", "log", f'"{n}"') for n in range(4)] == [
        False,
        False,
        False,
        True,
    ]
    assert batcher.step("a", "ta", "s", "{}") is True
    waiting = asyncio.create_task(batcher.backpressure())
    await asyncio.sleep(0)
    assert not waiting.done()
    async with running(batcher):
        await asyncio.wait_for(writer.flushes_started(1), 5)
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()  # the flush is not written yet
        writer.gates[0].set()
        await asyncio.wait_for(waiting, 5)
        assert batcher.event("a", "ta", "log", '"after"') is False
        await asyncio.wait_for(writer.flushes_started(2), 5)
        writer.gates[1].set()
        await asyncio.wait_for(batcher.flushed(), 5)


async def test_a_flush_waits_while_the_worker_is_about_to_claim(writer: HeldWriter) -> None:
    """``hold`` true: the flush encodes nothing until it answers false (the
    worker's claim went first), each turn of the loop asking again."""
    holding = [True]
    asked: list[int] = []

    def hold() -> bool:
        asked.append(len(writer.flushes))
        return holding[0]

    batcher = Batcher(writer, Hub(), lambda _ids: None, hold=hold)
    async with running(batcher):
        batcher.event("a", "ta", "log", '"a1"')
        for _ in range(batcher_module.SETTLE_TURNS):
            await asyncio.sleep(0)
        assert asked, "the flush never asked whether to wait"
        assert writer.flushes == [], "the flush went out while the worker was settling"
        holding[0] = False
        await writer.flushes_started(1)
        assert asked[-1] == 0  # the last answer (false) came before the write
        writer.gates[0].set()
        await batcher.flushed()
    assert [e[3] for e in writer.flushes[0].events] == ['"a1"']


async def test_a_hold_that_never_ends_delays_a_flush_a_few_turns_only(
    writer: HeldWriter,
) -> None:
    asked = 0

    def hold() -> bool:
        nonlocal asked
        asked += 1
        return True

    batcher = Batcher(writer, Hub(), lambda _ids: None, hold=hold)
    async with running(batcher):
        batcher.event("a", "ta", "log", '"a1"')
        await writer.flushes_started(1)
        writer.gates[0].set()
        await batcher.flushed()
    assert asked == batcher_module.SETTLE_TURNS + 1
