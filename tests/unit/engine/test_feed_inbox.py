"""The listener hands its ``falsework_events`` payloads to the feed one per turn of
the event loop (engine/feed.py, ``Inbox``), without a database: the driver's
callback is called as asyncpg calls it, once per notification, all in one turn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any, cast

from falsework.engine.feed import Feed, Pushed, Subscription
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


async def test_a_process_where_nobody_streams_keeps_no_payload() -> None:
    log: list[tuple[Any, ...]] = []
    hub = LoggingHub(log)
    listener = PgListener("postgresql://never-connected/x", hub)
    listener._dispatch(None, 0, CHANNEL_EVENTS, payload(("a", 0, [1])))
    await turns()
    assert log == []
    assert len(listener._inbox) == 0
