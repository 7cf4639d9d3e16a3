"""The listener hands its ``falsework_events`` payloads to the feed one per turn of
the event loop (engine/feed.py, ``Inbox``), without a database: the driver's
callback is called as asyncpg calls it, once per notification, all in one turn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from falsework.engine.feed import Feed, Inbox, Pushed, Subscription
from falsework.engine.models import Event
from falsework.engine.notify import Hub
from falsework.engine.postgres import CHANNEL_EVENTS, PgListener
from falsework.engine.store import Store


class NoEvents:
    """A store whose reads find nothing (a subscription's first read)."""

    async def events_after_many(self, pairs: list[tuple[str, int]]) -> list[list[Event]]:
        return [[] for _ in pairs]


class LoggingHub(Hub):
    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self.log = log

    def pushed(self, items: list[Pushed]) -> None:
        self.log.append(("delivered", *(item.task_id for item in items)))
        super().pushed(items)


def payload(*parts: tuple[str, int, Iterable[int]], status: str = "processing") -> str:
    """A carried payload as ``batch_write`` writes it: (task, prev, event ids) each."""
    return json.dumps(
        [
            [task, prev, status, "none", 1_000_000, [[i, "log", {"n": i}] for i in ids]]
            for task, prev, ids in parts
        ]
    )


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def consume(sub: Subscription, log: list[tuple[Any, ...]]) -> None:
    while not sub.over:
        page = await sub.take()
        if page:
            log.append(("took", sub.task_id, *(e.id for e in page)))


async def setup(
    tasks: list[str], log: list[tuple[Any, ...]]
) -> tuple[PgListener, Feed, list[asyncio.Task[None]]]:
    hub = LoggingHub(log)
    feed = Feed(cast(Store, NoEvents()), poll_interval=lambda: 3600.0)
    hub.add_feed(feed)
    subs = [feed.join(task, 0) for task in tasks]
    consumers = [asyncio.create_task(consume(sub, log)) for sub in subs]
    await turns()  # the first reads answered (empty)
    assert not any(sub.stale or sub.reading for sub in subs)
    listener = PgListener("postgresql://never-connected/x", hub)  # no connection made
    return listener, feed, consumers


async def stop(feed: Feed, consumers: list[asyncio.Task[None]]) -> None:
    for consumer in consumers:
        consumer.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    await feed.close()


async def test_each_notification_reaches_its_consumers_before_the_next_is_decoded() -> None:
    log: list[tuple[Any, ...]] = []
    listener, feed, consumers = await setup(["a", "b", "c"], log)
    try:
        # one flush's three notifications, called back in one turn by the driver
        for task, ids in (("a", [1, 2]), ("b", [3]), ("c", [4, 5, 6])):
            listener._dispatch(None, 0, CHANNEL_EVENTS, payload((task, 0, ids)))
        assert log == []  # nothing decoded inside the driver's callbacks
        await turns()
        assert log == [
            ("delivered", "a"),
            ("took", "a", 1, 2),
            ("delivered", "b"),
            ("took", "b", 3),
            ("delivered", "c"),
            ("took", "c", 4, 5, 6),
        ]
        assert feed.reads == 1  # the joining read only: everything came carried
    finally:
        await stop(feed, consumers)


async def test_a_tasks_events_stay_exact_and_in_order_across_queued_notifications() -> None:
    log: list[tuple[Any, ...]] = []
    listener, feed, consumers = await setup(["a", "b"], log)
    try:
        notes = [
            payload(("a", 0, [1, 2]), ("b", 0, [3])),
            payload(("a", 2, [4]), ("b", 3, [5, 6])),
            payload(("a", 4, [7, 8]), status="completed"),
            payload(("b", 6, [9])),
        ]
        for note in notes:
            listener._dispatch(None, 0, CHANNEL_EVENTS, note)
        # a notification arriving while the first ones wait joins the queue behind them
        await asyncio.sleep(0)
        listener._dispatch(None, 0, CHANNEL_EVENTS, payload(("b", 9, [10])))
        await turns()
        took: dict[str, list[int]] = {"a": [], "b": []}
        for entry in log:
            if entry[0] == "took":
                took[entry[1]].extend(entry[2:])
        assert took == {"a": [1, 2, 4, 7, 8], "b": [3, 5, 6, 9, 10]}
        delivered = [entry[1:] for entry in log if entry[0] == "delivered"]
        assert delivered == [("a", "b"), ("a", "b"), ("a",), ("b",), ("b",)]
        assert feed.reads == 1  # no gap seen, so nothing read
    finally:
        await stop(feed, consumers)


async def test_a_consumer_that_takes_nothing_holds_up_no_other_stream() -> None:
    # "slow" never takes what its notifications bring; the inbox goes on delivering
    log: list[tuple[Any, ...]] = []
    listener, feed, consumers = await setup(["a"], log)
    slow = feed.join("slow", 0)
    try:
        await turns()
        for n in range(1, 50, 2):
            listener._dispatch(None, 0, CHANNEL_EVENTS, payload(("slow", max(0, n - 2), [n])))
            listener._dispatch(None, 0, CHANNEL_EVENTS, payload(("a", n - 1, [n + 1])))
        await turns(120)
        assert len(listener._inbox) == 0
        took = [i for e in log if e[0] == "took" for i in e[2:]]
        assert took == list(range(2, 51, 2))
        assert [e.id for e in slow.buffer] == list(range(1, 50, 2))  # kept, in order
    finally:
        await stop(feed, consumers)


async def test_a_process_where_nobody_streams_keeps_no_payload() -> None:
    log: list[tuple[Any, ...]] = []
    hub = LoggingHub(log)
    listener = PgListener("postgresql://never-connected/x", hub)
    listener._dispatch(None, 0, CHANNEL_EVENTS, payload(("a", 0, [1])))
    await turns()
    assert log == []
    assert len(listener._inbox) == 0


class HeldReads:
    """A store whose reads wait until the test lets them answer (a read in flight)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Event]] = {}
        self.gate = asyncio.Event()
        self.asked: list[list[tuple[str, int]]] = []

    async def events_after_many(self, pairs: list[tuple[str, int]]) -> list[list[Event]]:
        self.asked.append(pairs)
        await self.gate.wait()
        return [[e for e in self.answers.get(task, []) if e.id > after] for task, after in pairs]


CREATED = datetime(2026, 12, 7, tzinfo=UTC)


def stored(task: str, ids: Iterable[int]) -> list[Event]:
    return [Event(id=i, task_id=task, type="log", body={"n": i}, created_at=CREATED) for i in ids]


async def joined_with_held_reads(
    log: list[tuple[Any, ...]],
) -> tuple[HeldReads, Feed, Subscription, asyncio.Task[None]]:
    """A subscription of task "a" whose joining read has answered; later reads wait."""
    store = HeldReads()
    store.gate.set()
    feed = Feed(cast(Store, store), poll_interval=lambda: 3600.0)
    sub = feed.join("a", 0)
    consumer = asyncio.create_task(consume(sub, log))
    await turns()
    store.gate.clear()
    return store, feed, sub, consumer


async def test_carried_events_that_follow_the_cursor_go_in_while_a_read_is_under_way() -> None:
    # The safety-net poll marks every subscription; under a burst its read is in
    # flight while the next notifications come: they still reach the consumer at
    # once, and the read's answer adds only what follows them.
    log: list[tuple[Any, ...]] = []
    store, feed, sub, consumer = await joined_with_held_reads(log)
    try:
        feed.read_all()  # as the poll does
        await turns()
        assert sub.reading and len(store.asked) == 2
        # the read's snapshot: events 1-2 (committed before it), not yet answered
        store.answers["a"] = stored("a", [1, 2])
        feed.pushed([Pushed("a", 0, "processing", stored("a", [1, 2]))])
        await turns()
        assert log == [("took", "a", 1, 2)]
        feed.pushed([Pushed("a", 2, "processing", stored("a", [3]))])
        await turns()
        assert [e for e in log if e[0] == "took"] == [("took", "a", 1, 2), ("took", "a", 3)]
        store.gate.set()  # the read answers with its older snapshot: nothing twice
        await turns()
        store.answers["a"] = stored("a", [1, 2, 3, 4])
        feed.pushed([Pushed("a", 3, "processing", stored("a", [4]))])
        await turns()
        assert [e for e in log if e[0] == "took"] == [
            ("took", "a", 1, 2),
            ("took", "a", 3),
            ("took", "a", 4),
        ]
        assert not sub.stale and not sub.reading
        assert len(store.asked) == 2  # no read more than the join's and the poll's
    finally:
        await stop(feed, [consumer])


async def test_carried_events_after_a_gap_wait_for_the_read_and_stay_exact() -> None:
    log: list[tuple[Any, ...]] = []
    store, feed, sub, consumer = await joined_with_held_reads(log)
    try:
        # events 1-2 were notified by id only (not carried): a read; 3 comes carried
        feed.notified(["a"])
        await turns()
        assert sub.reading
        store.answers["a"] = stored("a", [1, 2, 3])
        feed.pushed([Pushed("a", 2, "processing", stored("a", [3]))])
        await turns()
        assert [e for e in log if e[0] == "took"] == []  # 3 does not follow 0
        store.gate.set()
        await turns()
        took = [i for e in log if e[0] == "took" for i in e[2:]]
        assert took == [1, 2, 3]
    finally:
        await stop(feed, [consumer])


async def test_the_poll_asks_whether_the_task_is_over_only_of_streams_that_heard_nothing() -> None:
    # Under a burst the poll's question held every consumer for a read of every
    # stream's status; one that just heard events does not need to ask.
    answers: dict[str, list[str]] = {"a": [], "b": []}
    feed = Feed(cast(Store, NoEvents()), poll_interval=lambda: 3600.0)
    subs = {task: feed.join(task, 0) for task in answers}

    async def consume_all(sub: Subscription) -> None:
        while True:
            page = await sub.take()
            answers[sub.task_id].append("poll" if page is None else f"{len(page)} events")

    consumers = [asyncio.create_task(consume_all(sub)) for sub in subs.values()]
    try:
        await turns()
        assert answers == {"a": ["0 events"], "b": ["0 events"]}  # the joining reads
        feed.pushed([Pushed("a", 0, "processing", stored("a", [1, 2]))])
        await turns()
        feed.poll()
        await turns()
        assert answers == {"a": ["0 events", "2 events"], "b": ["0 events", "poll"]}
        feed.poll()  # a heard nothing since the last poll: now it asks
        await turns()
        assert answers == {
            "a": ["0 events", "2 events", "poll"],
            "b": ["0 events", "poll", "poll"],
        }
    finally:
        await stop(feed, consumers)


async def test_a_flood_of_notifications_is_bounded_and_every_stream_reads_instead(
    monkeypatch: Any,
) -> None:
    # anyone who may NOTIFY can send faster than one a turn: past the limit the
    # kept payloads are dropped and every stream reads from its cursor (exact)
    monkeypatch.setattr(Inbox, "LIMIT", 5)
    log: list[tuple[Any, ...]] = []
    listener, feed, consumers = await setup(["a"], log)
    try:
        for n in range(6):  # one more than the limit, in one turn of the loop
            listener._dispatch(None, 0, CHANNEL_EVENTS, payload(("a", n, [n + 1])))
        assert len(listener._inbox) == 0  # dropped, not kept
        await turns()
        assert feed.reads == 2  # the joining read, and the one the flood asked for
        assert not any(entry[0] == "delivered" for entry in log)
    finally:
        await stop(feed, consumers)
