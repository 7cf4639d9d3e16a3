"""The process's one reader of events (engine/feed.py): every subscription exact.

Events a flush's NOTIFY carries are appended without a read; a gap (a
notification lost, or written without one), a part too long to carry, a
reconnect with Last-Event-ID and a consumer that falls behind all go through a
read, and every stream still holds each event once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import psycopg
import pytest

from falsework.config import Settings
from falsework.engine import Broker, Event
from falsework.engine import feed as feed_module
from falsework.engine.codec import dumps
from falsework.engine.feed import carried_events
from falsework.engine.models import Finish, WriteBatch
from falsework.engine.notify import Listener
from falsework.engine.postgres import STREAMING_KEYS, STREAMING_LOCK
from falsework.engine.queries import load
from support.engine import open_broker, wait_for

FAST, SLOW = 0.05, 600.0


@contextlib.asynccontextmanager
async def following(
    broker: Broker, task_id: str, after: int | None = None
) -> AsyncIterator[tuple[list[Event], asyncio.Task[None]]]:
    received: list[Event] = []

    async def follow() -> None:
        async for item in broker.subscribe(task_id, after):
            received.append(item)

    runner = asyncio.create_task(follow())
    try:
        yield received, runner
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def count_reads(broker: Broker) -> list[int]:
    reads = [0]
    read_many = broker.store.events_after_many

    async def counted(wanted: list[tuple[str, int]], limit: int = 1000) -> list[list[Event]]:
        reads[0] += 1
        return await read_many(wanted, limit)

    broker.store.events_after_many = counted  # type: ignore[method-assign]
    return reads


async def claimed(writer: Broker, n: int, **create: object) -> dict[str, str]:
    for _ in range(n):
        await writer.create({"steps": []}, **create)  # type: ignore[arg-type]
    return {c.id: c.claim_token for c in await writer.claim("w", n)}


async def flush(writer: Broker, claims: dict[str, str], *bodies: object) -> None:
    batch = WriteBatch(tokens=dict(claims))
    for task_id, token in claims.items():
        for body in bodies:
            batch.events.append((task_id, token, "log", dumps(body)))
    assert await writer.write(batch) == set()


async def finish(writer: Broker, claims: dict[str, str]) -> None:
    batch = WriteBatch(tokens=dict(claims))
    for task_id, token in claims.items():
        batch.finishes.append(
            Finish(task_id, token, "completed", "completion", dumps({"message": "done"}), False)
        )
    assert await writer.write(batch) == set()


def settled(broker: Broker, subscriptions: int) -> Callable[[], bool]:
    """Every subscription joined and answered its first read: nothing to read."""
    feed = broker.feed

    def check() -> bool:
        subs = [sub for group in feed._subs.values() for sub in group]
        # on Postgres, writers carry events whole once the listener said so
        present = broker.listener is None or broker.listener.streaming.is_set()
        return (
            present
            and len(subs) == subscriptions
            and not feed._stale
            and not feed._inflight
            and not any(sub.stale or sub.reading for sub in subs)
        )

    return check


def insert_silently(conn: psycopg.Connection[Any], task_ids: Iterable[str]) -> None:
    """An event for each task, with no NOTIFY of its own."""
    conn.cursor().executemany(
        "INSERT INTO task_events (task_id, type, body, created_at) VALUES (%s, 'log', %s, now())",
        [(t, json.dumps({"m": "silent"})) for t in task_ids],
    )


def listener_of(node: Broker) -> Listener:
    """The node's listener (every Postgres broker has one)."""
    assert node.listener is not None
    return node.listener


@contextlib.contextmanager
def holding_keys(postgres_url: str, keys: Iterable[int]) -> Iterator[psycopg.Connection[Any]]:
    """An outside session holding streaming keys as a flush that found nobody
    streaming holds its key: until it commits (the caller's ``commit()``)."""
    with psycopg.connect(postgres_url) as conn:
        for key in keys:
            conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (STREAMING_LOCK, key))
        yield conn


def stored(events: list[Event]) -> list[object]:
    return [e.to_json() for e in events]


@pytest.mark.postgres
async def test_carried_events_reach_every_stream_without_a_read(
    pg_pair: tuple[Broker, Broker],
) -> None:
    node, writer = pg_pair
    claims = await claimed(writer, 20, recovery="none")
    async with contextlib.AsyncExitStack() as stack:
        streams = {
            tid: (await stack.enter_async_context(following(node, tid)))[0] for tid in claims
        }
        reads = count_reads(node)
        await wait_for(settled(node, len(claims)))
        before = reads[0]
        for n in range(5):  # five flushes back to back: coalesced or not, each once
            await flush(writer, claims, {"n": n}, {"n": n, "second": True})
        await finish(writer, claims)
        await wait_for(lambda: all(len(s) == 11 for s in streams.values()), within=10)
        assert reads[0] == before  # carried whole: no read at all
        for tid, received in streams.items():
            # exactly what the table holds: ids, bodies, createdAt to the µs, flags
            assert stored(received) == stored(await node.events(tid))
            assert received[0].is_task_recoverable is False


@pytest.mark.postgres
async def test_streams_end_with_the_final_event_carried(pg_pair: tuple[Broker, Broker]) -> None:
    node, writer = pg_pair
    claims = await claimed(writer, 3)
    async with contextlib.AsyncExitStack() as stack:
        followers = [await stack.enter_async_context(following(node, tid)) for tid in claims]
        await wait_for(settled(node, len(claims)))
        await flush(writer, claims, {"m": 1})
        await finish(writer, claims)
        await asyncio.wait_for(asyncio.gather(*(r for _, r in followers)), 10)
        assert [[e.type for e in s] for s, _ in followers] == [["log", "completion"]] * 3


@pytest.mark.postgres
async def test_a_lost_notification_is_read_before_the_next_carried_events(
    pg_pair: tuple[Broker, Broker], postgres_url: str
) -> None:
    node, writer = pg_pair
    claims = await claimed(writer, 1)
    (tid,) = claims
    async with following(node, tid) as (received, _):
        await flush(writer, claims, {"m": "first"})
        await wait_for(lambda: len(received) == 1, within=10)
        # written with no NOTIFY at all: the next flush's payload does not follow
        # this stream's cursor, and appending it would skip "silent" for good
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO task_events (task_id, type, body, created_at) "
                "VALUES (%s, 'log', %s, now())",
                (tid, json.dumps({"m": "silent"})),
            )
        await flush(writer, claims, {"m": "after"})
        await wait_for(lambda: len(received) == 3, within=10)
        await asyncio.sleep(0.2)
        assert [e.body["m"] for e in received] == ["first", "silent", "after"]
        assert stored(received) == stored(await node.events(tid))


@pytest.mark.postgres
async def test_events_too_long_to_carry_are_read(pg_pair: tuple[Broker, Broker]) -> None:
    node, writer = pg_pair
    claims = await claimed(writer, 2)
    async with contextlib.AsyncExitStack() as stack:
        streams = [(await stack.enter_async_context(following(node, t)))[0] for t in claims]
        await wait_for(settled(node, len(claims)))
        reads = count_reads(node)
        await flush(writer, claims, {"m": "x" * 5000}, {"m": "small"})
        await wait_for(lambda: all(len(s) == 2 for s in streams), within=10)
        assert reads[0] >= 1
        for tid, received in zip(claims, streams, strict=True):
            assert stored(received) == stored(await node.events(tid))


@pytest.mark.postgres
async def test_payloads_carry_what_the_table_holds_and_stay_under_8000_bytes(
    pg_pair: tuple[Broker, Broker], postgres_url: str
) -> None:
    node, writer = pg_pair
    secret = "s3cret-value-never-sent"
    claims = await claimed(writer, 60, secrets={"token": secret})
    payloads: list[str] = []
    node.hub.watch_events("someone-streams", asyncio.Event())
    await asyncio.wait_for(listener_of(node).streaming.wait(), 10)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("LISTEN falsework_events")
        # about 2,100 bytes a task carried: a flush of 60 needs many payloads
        await flush(writer, claims, {"m": "a" * 1000}, {"m": "b" * 1000})
        for note in conn.notifies(timeout=2):
            payloads.append(note.payload)
    assert len(payloads) > 10
    assert all(len(p.encode()) < 8000 for p in payloads)
    assert not any(secret in p for p in payloads)
    carried = [item for p in payloads for item in carried_events(p)[0]]
    assert sorted(item.task_id for item in carried) == sorted(claims)
    for item in carried:
        in_table = await node.events(item.task_id)
        assert stored(item.events) == stored(in_table)
        assert item.prev == 0 and item.status == "processing"


def heard(conn: psycopg.Connection[Any]) -> tuple[list[str], list[str]]:
    """The tasks the ``falsework_events`` notifications so far carried whole, and
    those they only named."""
    whole: list[str] = []
    named: list[str] = []
    for note in conn.notifies(timeout=1):
        pushed, ids = carried_events(note.payload)
        whole += [item.task_id for item in pushed]
        named += ids
    return sorted(whole), sorted(named)


@pytest.mark.postgres
async def test_a_flush_nobody_streams_notifies_nothing_and_a_stream_started_then_is_exact(
    pg_pair: tuple[Broker, Broker], postgres_url: str
) -> None:
    node, writer = pg_pair
    listener = listener_of(node)
    claims = await claimed(writer, 5)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("LISTEN falsework_events")
        await flush(writer, claims, {"m": "before anyone streams"})
        assert heard(conn) == ([], [])  # not even the tasks' names
        assert not listener.streaming.is_set()
        async with contextlib.AsyncExitStack() as stack:
            streams = {
                tid: (await stack.enter_async_context(following(node, tid)))[0] for tid in claims
            }
            await asyncio.wait_for(listener.streaming.wait(), 10)
            await flush(writer, claims, {"m": "while streaming"})
            assert heard(conn) == (sorted(claims), [])
            await finish(writer, claims)
            await wait_for(lambda: all(len(s) == 3 for s in streams.values()), within=10)
            for tid, received in streams.items():
                assert stored(received) == stored(await node.events(tid))


@pytest.mark.postgres
async def test_the_streaming_presence_is_shared_and_ends_a_linger_after_the_last_stream(
    postgres_url: str, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    from falsework.engine.postgres import PgListener

    monkeypatch.setattr(PgListener, "LINGER", 0.3)
    settings = make_settings(poll_interval=FAST, max_poll_interval=SLOW)
    nodes = [await open_broker(postgres_url, settings) for _ in range(2)]
    writer = await open_broker(postgres_url, settings)
    try:
        listeners = [n.listener for n in nodes]
        claims = await claimed(writer, 2)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("LISTEN falsework_events")
            async with contextlib.AsyncExitStack() as stack:
                for node, tid in zip(nodes, claims, strict=True):
                    await stack.enter_async_context(following(node, tid))
                for listener in listeners:  # two processes hold it at once
                    assert listener is not None
                    await asyncio.wait_for(listener.streaming.wait(), 10)
                await flush(writer, claims, {"m": 1})
                assert heard(conn) == (sorted(claims), [])
            # the streams ended: each listener lets go once its linger is over
            await wait_for(
                lambda: not any(x is not None and x.streaming.is_set() for x in listeners),
                within=10,
            )
            await flush(writer, claims, {"m": 2})
            assert heard(conn) == ([], [])
    finally:
        await writer.close()
        for node in nodes:
            await node.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
async def test_resuming_after_a_last_event_id_and_across_a_finish(
    dialect: str, request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> None:
    if dialect == "postgres":
        request.applymarker(pytest.mark.postgres)
    url = request.getfixturevalue(f"{dialect}_url")
    settings = make_settings(poll_interval=FAST, max_poll_interval=SLOW)
    node = await open_broker(url, settings)
    writer = await open_broker(url, settings)
    try:
        if node.listener is not None:
            await asyncio.wait_for(node.listener.connected.wait(), 10)
        claims = await claimed(writer, 1)
        (tid,) = claims
        for n in range(4):
            await flush(writer, claims, {"n": n})
        first = await node.events(tid)
        async with following(node, tid, after=first[1].id) as (received, runner):
            await wait_for(lambda: len(received) == 2, within=10)
            await flush(writer, claims, {"n": 4})
            await finish(writer, claims)
            await asyncio.wait_for(runner, 10)
        assert stored(received) == stored((await node.events(tid))[2:])
        assert [e.body.get("n") for e in received] == [2, 3, 4, None]
    finally:
        await writer.close()
        await node.close()


async def test_sqlite_one_read_per_poll_for_every_stream(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(poll_interval=0.2, max_poll_interval=SLOW)
    node = await open_broker(sqlite_url, settings)
    try:
        claims = await claimed(node, 12)
        reads = count_reads(node)
        async with contextlib.AsyncExitStack() as stack:
            streams = {t: (await stack.enter_async_context(following(node, t)))[0] for t in claims}
            await wait_for(settled(node, len(claims)))
            # written by "another process": no hub call reaches this one
            path = sqlite_url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as conn:
                for n in range(3):
                    conn.executemany(
                        "INSERT INTO task_events (task_id, type, body, created_at) "
                        "VALUES (?, 'log', ?, CURRENT_TIMESTAMP)",
                        [(t, json.dumps({"n": n})) for t in claims],
                    )
            loop = asyncio.get_running_loop()
            before, started = reads[0], loop.time()
            await asyncio.sleep(1.0)  # about five polls
            await wait_for(lambda: all(len(s) == 3 for s in streams.values()), within=10)
            polls = (loop.time() - started) / 0.2
            # one statement a poll for the twelve streams, not twelve
            assert reads[0] - before <= polls + 3 < 12 * polls
            for t, received in streams.items():
                assert [e.body["n"] for e in received] == [0, 1, 2]
                assert stored(received) == stored(await node.events(t))
    finally:
        await node.close()


@pytest.mark.postgres
async def test_a_consumer_that_falls_behind_holds_a_bounded_buffer_and_stays_exact(
    pg_pair: tuple[Broker, Broker], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, writer = pg_pair
    monkeypatch.setattr(feed_module, "MAX_BUFFER", 5)
    claims = await claimed(writer, 1)
    (tid,) = claims
    stream = node.subscribe(tid)
    first = asyncio.ensure_future(anext(stream))
    await wait_for(settled(node, 1))
    await flush(writer, claims, {"n": 0})
    got = [await asyncio.wait_for(first, 10)]
    # nobody takes while 30 more arrive in separate flushes
    for n in range(1, 31):
        await flush(writer, claims, {"n": n})
    await asyncio.sleep(0.3)
    (sub,) = node.feed._subs[tid]
    assert len(sub.buffer) <= 5
    await finish(writer, claims)
    async with asyncio.timeout(10):
        got.extend([e async for e in stream])
    assert [e.body.get("n") for e in got] == [*range(31), None]
    assert stored(got) == stored(await node.events(tid))


@pytest.mark.postgres
@pytest.mark.parametrize(
    "payload",
    [
        "[1",  # cut short
        "[5]",  # an array, not of parts
        '[{"a": 1}, [1, 2]]',  # parts of the wrong shape
        '[["t", "0", "processing", "none", 0, []]]',  # prev as text
        '[["t", 0, "processing", "none", 0, [["1", "log", {}]]]]',  # an event id as text
    ],
)
@pytest.mark.parametrize("copies", [1, 500])
async def test_undecodable_notifications_make_every_stream_read_and_log_one_line(
    pg_pair: tuple[Broker, Broker],
    postgres_url: str,
    payload: str,
    copies: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A broken or hostile peer may flood the channel: each notification still
    # makes every stream read, the log gets one warning a minute.
    node, writer = pg_pair
    monkeypatch.setattr(feed_module, "_bad_payloads", feed_module.Throttle(60.0))
    caplog.set_level(logging.WARNING, logger="falsework.engine")
    claims = await claimed(writer, 2)
    async with contextlib.AsyncExitStack() as stack:
        streams = {t: (await stack.enter_async_context(following(node, t)))[0] for t in claims}
        await wait_for(settled(node, len(claims)))
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            # events with no NOTIFY of their own: the safety-net poll is 600 s
            # away, so only a read the bad notifications ask for delivers them
            insert_silently(conn, claims)
            # (JSON allows trailing blanks: `copies` distinct notifications, the
            # same to the decoder; Postgres would fold identical ones into one)
            conn.execute(
                "SELECT pg_notify('falsework_events', %s || repeat(' ', n)) "
                "FROM generate_series(0, %s - 1) n",
                (payload, copies),
            )
        await wait_for(lambda: all(len(s) == 1 for s in streams.values()), within=10)
        # the listener is still there, and carried events still arrive
        await flush(writer, claims, {"m": "after"})
        await wait_for(lambda: all(len(s) == 2 for s in streams.values()), within=10)
        for tid, received in streams.items():
            assert [e.body["m"] for e in received] == ["silent", "after"]
            assert stored(received) == stored(await node.events(tid))
    assert node.listener is not None and node.listener.connects == 1
    # (notifications arrive in commit order: the flush's came after all of them)
    warned = [r for r in caplog.records if "not a falsework_events payload" in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in warned]


@pytest.mark.postgres
async def test_streams_stay_exact_when_the_listener_is_terminated_mid_burst(
    pg_pair: tuple[Broker, Broker], postgres_url: str
) -> None:
    node, writer = pg_pair
    listener = listener_of(node)
    claims = await claimed(writer, 40)
    rounds = 40
    halfway = asyncio.Event()

    async def burst() -> None:
        for n in range(rounds):
            await flush(writer, claims, {"n": n}, {"n": n, "second": True})
            if n == rounds // 4:
                halfway.set()
            await asyncio.sleep(0.01)  # the burst goes on while the listener is away
        await finish(writer, claims)

    async with contextlib.AsyncExitStack() as stack:
        followers = [await stack.enter_async_context(following(node, t)) for t in claims]
        await wait_for(settled(node, len(claims)))
        writing = asyncio.create_task(burst())
        await halfway.wait()
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute("SELECT pg_terminate_backend(%s)", (listener.backend_pid,))
        await asyncio.wait_for(writing, 30)
        await asyncio.wait_for(asyncio.gather(*(r for _, r in followers)), 30)
        await wait_for(lambda: listener.connects >= 2, within=20)
        for tid, (received, _) in zip(claims, followers, strict=True):
            assert stored(received) == stored(await node.events(tid))
            assert [e.body.get("n") for e in received] == [
                *(n for n in range(rounds) for _ in (0, 1)),
                None,
            ]


@pytest.mark.postgres
async def test_a_flush_holding_a_streaming_key_delays_the_presence_and_breaks_nothing(
    pg_pair: tuple[Broker, Broker], postgres_url: str
) -> None:
    node, writer = pg_pair
    listener = listener_of(node)
    claims = await claimed(writer, 1)
    (tid,) = claims
    with holding_keys(postgres_url, [7]) as quiet:
        async with following(node, tid) as (received, _):
            await asyncio.sleep(0.5)
            assert not listener.streaming.is_set()  # it waits for that commit
            await flush(writer, claims, {"m": "while the key is held"})
            await wait_for(lambda: len(received) == 1, within=10)
            quiet.commit()
            await asyncio.wait_for(listener.streaming.wait(), 10)
            await flush(writer, claims, {"m": "after"})
            await wait_for(lambda: len(received) == 2, within=10)
        assert listener.connects == 1  # never stuck behind the lock, never reconnected
        assert stored(received) == stored(await node.events(tid))


@pytest.mark.postgres
async def test_a_quiet_write_that_commits_while_the_presence_is_taken_reaches_the_stream(
    pg_pair: tuple[Broker, Broker], postgres_url: str
) -> None:
    """A flush that found every key free writes with no notification; it holds
    its key until it commits. A stream that started meanwhile (its first read
    before that commit) gets those events once the presence is taken: the
    listener then has every stream read (the pair's poll is 600 s away)."""
    node, writer = pg_pair
    listener = listener_of(node)
    claims = await claimed(writer, 1)
    (tid,) = claims
    with holding_keys(postgres_url, range(STREAMING_KEYS)) as quiet:  # every key at once
        insert_silently(quiet, [tid])
        async with following(node, tid) as (received, _):
            await asyncio.sleep(0.5)
            assert not listener.streaming.is_set()
            assert received == []  # its first read came before the commit
            quiet.commit()
            await asyncio.wait_for(listener.streaming.wait(), 10)
            await wait_for(lambda: len(received) == 1, within=10)
        assert stored(received) == stored(await node.events(tid))


def test_the_flush_tries_the_keys_the_listener_holds() -> None:
    flush_sql = load("postgres")["batch_write"]
    assert (
        f"pg_try_advisory_xact_lock({STREAMING_LOCK}, pg_backend_pid() % {STREAMING_KEYS})"
        in flush_sql
    )


@pytest.mark.postgres
async def test_a_listener_that_lost_its_connection_takes_the_presence_again(
    pg_pair: tuple[Broker, Broker], postgres_url: str
) -> None:
    node, writer = pg_pair
    listener = listener_of(node)
    claims = await claimed(writer, 3)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("LISTEN falsework_events")
        async with contextlib.AsyncExitStack() as stack:
            streams = [(await stack.enter_async_context(following(node, t)))[0] for t in claims]
            await asyncio.wait_for(listener.streaming.wait(), 10)
            conn.execute("SELECT pg_terminate_backend(%s)", (listener.backend_pid,))
            # the server let go of the dead session's locks: nobody streams now
            await wait_for(lambda: not listener.streaming.is_set(), within=10)
            await wait_for(lambda: listener.connects >= 2 and listener.streaming.is_set(), 20)
            heard(conn)  # what the gap sent, whatever it was
            await flush(writer, claims, {"m": "after the reconnect"})
            assert heard(conn) == (sorted(claims), [])  # carried whole again
            await wait_for(lambda: all(len(s) == 1 for s in streams), within=10)
            for tid, received in zip(claims, streams, strict=True):
                assert stored(received) == stored(await node.events(tid))
