"""The broker's one create path: a group commit, and the per-user cap inside it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from falsework.config import Settings
from falsework.engine import Broker, NewTask
from falsework.engine.creates import CreateBatcher
from falsework.engine.models import AuditEntry, AuditQuery, Inserted, TaskRow
from falsework.errors import DatabaseError, TooManyRequestsError
from support.engine import open_broker

SPEC = {"apiVersion": "scaffolder.backstage.io/v1beta3", "steps": [], "output": {}}


async def test_concurrent_creates_share_statements(broker: Broker) -> None:
    statements: list[int] = []
    insert = broker.store.tasks_insert

    async def counted(rows: list[TaskRow], *, open_cap: int | None) -> list[Inserted]:
        statements.append(len(rows))
        return await insert(rows, open_cap=open_cap)

    broker.store.tasks_insert = counted  # type: ignore[method-assign]
    ids = await asyncio.gather(*(broker.submit(NewTask(SPEC)) for _ in range(20)))
    assert len(set(ids)) == 20
    assert [(await broker.get(i)).status for i in ids] == ["open"] * 20
    # the first create goes alone; the 19 that arrived meanwhile share the next one
    assert sum(statements) == 20 and len(statements) < 20
    many = await broker.create_many([NewTask(SPEC, priority=i) for i in range(5)])
    assert [(await broker.get(i)).priority for i in many] == [0, 1, 2, 3, 4]
    same = await broker.create_many([NewTask(SPEC, idempotency_key="k")] * 2)
    assert same[0] == same[1]


async def test_closing_cancels_creates_not_yet_written(broker: Broker) -> None:
    batcher = CreateBatcher(broker._insert)
    waiting = asyncio.create_task(batcher.submit([(broker._row(NewTask(SPEC)), None)]))
    await asyncio.sleep(0)
    await batcher.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 5)


async def test_the_open_task_cap_holds_under_concurrent_creates(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(max_open_tasks_per_user=3)
    # two brokers: two processes' worth of connections and group commits
    one, two = await open_broker(database_url, settings), await open_broker(database_url, settings)
    try:

        async def create(b: Broker) -> str | None:
            try:
                return await b.submit(NewTask(SPEC, created_by="user:default/mallory"))
            except TooManyRequestsError as exc:
                assert "the limit is 3" in exc.message
                return None

        got = await asyncio.gather(*(create(one if i % 2 else two) for i in range(30)))
        created = [g for g in got if g is not None]
        assert len(created) == 3
        # someone else is not affected, and nor are tasks without a creator
        assert await one.submit(NewTask(SPEC, created_by="user:default/eve"))
        assert len(await one.create_many([NewTask(SPEC) for _ in range(5)])) == 5
        # a cancelled task frees room; its retry takes the room again
        await one.cancel(created[0])
        fourth = await one.submit(NewTask(SPEC, created_by="user:default/mallory"))
        await one.cancel(fourth)
        assert (await one.retry(created[0])).status == "open"
        with pytest.raises(TooManyRequestsError):
            await one.retry(fourth)
        assert (await one.get(fourth)).status == "cancelled"
    finally:
        await two.close()
        await one.close()


async def test_a_creates_act_is_written_by_its_group_commit(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    broker = await open_broker(database_url, make_settings(max_open_tasks_per_user=2))
    try:
        statements: list[int] = []
        insert = broker.store.tasks_insert
        audit_write = broker.store.audit_insert
        audits: list[int] = []

        async def counted(rows: Sequence[TaskRow], *, open_cap: int | None) -> list[Inserted]:
            statements.append(len(rows))
            return await insert(rows, open_cap=open_cap)

        async def counted_audit(entries: Sequence[AuditEntry]) -> None:
            audits.append(len(entries))
            await audit_write(entries)

        broker.store.tasks_insert = counted  # type: ignore[method-assign]
        broker.store.audit_insert = counted_audit  # type: ignore[method-assign]

        def create(key: str | None = None, by: str = "user:default/ann") -> NewTask:
            act = AuditEntry(by, "task.create", None, '{"template": "t"}')
            return NewTask(SPEC, created_by=by, idempotency_key=key, audit=act)

        ids = await asyncio.gather(*(broker.submit(create(f"k{i % 2}")) for i in range(6)))
        # written when the creates return, with the task's id (the keyed task's id
        # for a create whose key was taken), by the creates' own group commit
        rows = await broker.audit_list(AuditQuery(action="task.create"))
        assert sorted(r.target or "" for r in rows) == sorted(ids)
        assert len(set(ids)) == 2 and sum(statements) == 6 and len(statements) < 6
        assert {r.actor for r in rows} == {"user:default/ann"}
        assert all(r.detail == {"template": "t"} for r in rows)
        # a create whose task is new records its act with it: no statement of its own
        audits.clear()
        fresh = await broker.submit(create(by="user:default/ned"))
        assert audits == []
        assert fresh in {
            r.target for r in await broker.audit_list(AuditQuery(action="task.create"))
        }
        # a refused create (the creator at the cap) records nothing; others do
        with pytest.raises(TooManyRequestsError):
            await broker.submit(create())
        await broker.submit(NewTask(SPEC))  # no act: no row
        assert len(await broker.audit_list(AuditQuery(action="task.create"))) == 7

        # the task and its act are one: an act the database refuses leaves no task
        bad = NewTask(
            SPEC,
            created_by="user:default/bob",
            audit=AuditEntry("user:default/bob", "task.create", None, "not json"),
        )
        with pytest.raises(DatabaseError):
            await broker.submit(bad)
        bobs, total = await broker.list(created_by="user:default/bob")
        assert (bobs, total) == ([], 0)
    finally:
        await broker.close()
