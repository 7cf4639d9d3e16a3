"""One contract suite every store passes (River's driver-test style).

``store`` is a fresh, migrated store of each dialect (tests/support/engine.py,
over ``database_url``); nothing here looks at the dialect: differences are the
store's business, and what a backend can or cannot do is a capability it
declares (``listener``). Every method of ``engine.store.Store`` is exercised
(``test_every_contract_method_is_exercised`` checks it) and asserted on records.
Time-dependent operations get their horizon as a parameter: nothing sleeps.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from falsework.engine.codec import dumps
from falsework.engine.factory import open_store
from falsework.engine.migrate import head
from falsework.engine.models import (
    STATUSES,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    Claim,
    Expired,
    Finish,
    Inserted,
    ListOrder,
    Marks,
    Retried,
    ScaffoldRecord,
    Task,
    TaskQuery,
    TaskRow,
    WriteBatch,
)
from falsework.engine.notify import Hub
from falsework.engine.options import StoreOptions
from falsework.engine.store import Store
from falsework.errors import DatabaseError, DatabaseUnavailableError, InputError
from falsework.runner import BACKSTAGE

WORDING = BACKSTAGE


def row(spec: dict[str, Any] | None = None, **kw: Any) -> TaskRow:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "spec": dumps(spec if spec is not None else {"steps": []}),
        "sealed_secrets": None,
        "created_by": None,
        "priority": 0,
        "run_after": None,
        "recovery": "resume",
        "idempotency_key": None,
    }
    values.update(kw)
    return TaskRow(**values)


async def insert(store: Store, *rows: TaskRow) -> list[str]:
    results = await store.tasks_insert(rows, open_cap=None)
    assert [r.outcome for r in results] == ["new"] * len(rows)
    return [r.id for r in results if r.id is not None]


async def claim_one(store: Store, worker: str = "w") -> Claim:
    (claimed,) = await store.task_claim(worker, 1, per_user_cap=None)
    return claimed


def batch_of(claim: Claim) -> WriteBatch:
    return WriteBatch(tokens={claim.id: claim.claim_token})


def finish(claim: Claim, status: str = "completed", body: Any = None) -> Finish:
    event = "cancelled" if status == "cancelled" else "completion"
    keep = status != "completed"
    return Finish(claim.id, claim.claim_token, status, event, dumps(body or {}), keep)


# -- tasks --------------------------------------------------------------------------
async def test_awkward_text_survives_an_insert_and_its_act(store: Store) -> None:
    # Postgres sends a batch of creates as one JSON array (every field a JSON
    # string inside it): text that JSON escapes must come back as it went in
    odd = 'q"uote \\back\\slash \\u0000 as text, \\n, {"k": 1}, \u00e9\u00df \u2603 \U0001f680'
    spec = {"steps": [{"id": "a", "input": {"message": odd}}], odd: [odd]}
    when = datetime(2031, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    act = AuditEntry(odd, "task.create", None, dumps({"template": odd}))
    r = row(spec, created_by=odd, sealed_secrets=odd, idempotency_key=odd, run_after=when, act=act)
    assert await store.tasks_insert([r], open_cap=None) == [Inserted("new", r.id)]
    task = await store.task_get(r.id)
    assert task is not None
    assert task.spec == spec and task.created_by == odd and task.run_after == when
    assert await store.task_secrets(r.id) == odd
    twin = row(idempotency_key=odd, created_by=odd, act=act)
    assert await store.tasks_insert([twin], open_cap=1) == [Inserted("existing", r.id)]
    (first, again) = await store.audit_list(AuditQuery(action="task.create"))
    for entry in (first, again):
        assert (entry.actor, entry.target, entry.detail) == (odd, r.id, {"template": odd})


async def test_insert_and_get_return_records(store: Store) -> None:
    spec = {"apiVersion": "v1", "steps": [{"id": "a"}], "z": 1, "a": {"b": None}}
    r = row(spec, created_by="alice", priority=3, recovery="startOver", sealed_secrets="sealed")
    assert await store.tasks_insert([r], open_cap=None) == [Inserted("new", r.id)]
    task = await store.task_get(r.id)
    assert isinstance(task, Task)
    assert (task.id, task.status, task.created_by, task.attempt) == (r.id, "open", "alice", 0)
    assert (task.priority, task.recovery, task.claimed_by) == (3, "startOver", None)
    assert task.spec == spec and list(task.spec) == ["apiVersion", "steps", "z", "a"]
    assert task.last_heartbeat_at is None and task.finished_at is None
    assert task.step_state == {} and task.cancel_requested is False
    assert task.created_at.tzinfo is not None
    assert abs(task.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert await store.task_status(r.id) == "open"
    assert await store.task_secrets(r.id) == "sealed"
    missing = str(uuid.uuid4())
    assert await store.task_get(missing) is None
    assert await store.task_status(missing) is None
    # many at once: the ones that exist, by id
    assert await store.tasks_status([r.id, missing]) == {r.id: "open"}
    assert await store.tasks_status([]) == {}
    assert await store.task_secrets(missing) is None


async def test_insert_keeps_order_and_answers_existing_keys(store: Store) -> None:
    first = row(idempotency_key="k1")
    assert await store.tasks_insert([first], open_cap=None) == [Inserted("new", first.id)]
    again, fresh, same_twice = row(idempotency_key="k1"), row(), row(idempotency_key="k2")
    twin = row(idempotency_key="k2")
    results = await store.tasks_insert([again, fresh, same_twice, twin], open_cap=None)
    assert results == [
        Inserted("existing", first.id),
        Inserted("new", fresh.id),
        Inserted("new", same_twice.id),
        Inserted("existing", same_twice.id),  # the same key twice in one batch
    ]
    assert await store.task_get(again.id) is None


async def test_insert_with_a_cap_takes_only_the_room_left(store: Store) -> None:
    # alice has one open task; a cap of 3 leaves room for two of her five rows
    await insert(store, row(created_by="alice"))
    rows = [row(created_by="alice") for _ in range(5)]
    bob, nobody = row(created_by="bob"), row(created_by=None)
    results = await store.tasks_insert([*rows, bob, nobody], open_cap=3)
    assert [r.outcome for r in results] == [*["new"] * 2, *["refused"] * 3, "new", "new"]
    assert [r.id for r in results[:2]] == [rows[0].id, rows[1].id]
    assert await store.task_get(rows[2].id) is None
    # a row whose key exists takes no room and answers the existing task
    keyed = row(created_by="bob", idempotency_key="bob-1")
    assert await store.tasks_insert([keyed], open_cap=3) == [Inserted("new", keyed.id)]
    again = row(created_by="bob", idempotency_key="bob-1")
    assert await store.tasks_insert([again], open_cap=2) == [Inserted("existing", keyed.id)]
    # finished tasks do not count
    claimed = await store.task_claim("w", 10, per_user_cap=None)
    batch = WriteBatch(tokens={c.id: c.claim_token for c in claimed})
    batch.finishes.extend(finish(c) for c in claimed if c.created_by == "alice")
    assert await store.batch_apply(batch) == set()
    more = [row(created_by="alice") for _ in range(4)]
    results = await store.tasks_insert(more, open_cap=3)
    assert [r.outcome for r in results] == ["new", "new", "new", "refused"]


async def test_concurrent_capped_inserts_never_exceed_the_cap(
    database_url: str, store: Store
) -> None:
    others = [await open_store(database_url) for _ in range(4)]
    try:
        rows = [row(created_by="carol") for _ in range(12)]
        results = await asyncio.gather(
            *(others[i % 4].tasks_insert([r], open_cap=3) for i, r in enumerate(rows))
        )
    finally:
        for other in others:
            await other.close()
    outcomes = [r[0].outcome for r in results]
    assert outcomes.count("new") == 3 and outcomes.count("refused") == 9
    _tasks, total = await store.task_list(TaskQuery(created_by="carol"))
    assert total == 3


async def test_claim_fifo_within_priority_and_run_after(store: Store) -> None:
    low = [row(priority=0) for _ in range(3)]
    high = row(priority=5)
    later = row(run_after=datetime.now(UTC) + timedelta(hours=1))
    past = row(run_after=datetime.now(UTC) - timedelta(seconds=5))
    await insert(store, *low, later)
    await insert(store, high, past)
    assert await store.tasks_count_claimable() == 5
    claimed = await store.task_claim("w1", 10, per_user_cap=None)
    assert [c.id for c in claimed] == [high.id, *(r.id for r in low), past.id]
    assert len({c.claim_token for c in claimed}) == 5
    assert {c.attempt for c in claimed} == {1}
    first = claimed[0]
    assert (first.priority, first.recovery, first.sealed_secrets) == (5, "resume", None)
    assert first.spec == {"steps": []} and first.step_state == {} and first.checkpoints == {}
    assert first.created_at.tzinfo is not None
    assert await store.task_claim("w2", 10, per_user_cap=None) == []
    assert await store.tasks_count_claimable() == 0
    task = await store.task_get(high.id)
    assert task is not None and task.status == "processing" and task.claimed_by == "w1"
    assert task.last_heartbeat_at is not None


async def test_claim_batch_is_limited(store: Store) -> None:
    await insert(store, *(row() for _ in range(7)))
    sizes = [len(await store.task_claim("w", 3, per_user_cap=None)) for _ in range(3)]
    assert sizes == [3, 3, 1]


async def test_fair_claim_caps_running_per_user(store: Store) -> None:
    await insert(store, *(row(created_by="a") for _ in range(10)))
    await insert(store, row(created_by="b"))
    first = await store.task_claim("w", 10, per_user_cap=2)
    assert sorted(str(c.created_by) for c in first) == ["a", "a", "b"]
    assert await store.task_claim("w", 10, per_user_cap=2) == []


async def test_list_in_every_order_and_count(store: Store) -> None:
    rs = [row(created_by="a"), row(created_by="b"), row(created_by="a")]
    for r in rs:
        await insert(store, r)
    await store.task_claim("w", 1, per_user_cap=None)
    tasks, total = await store.task_list(TaskQuery())
    assert total == 3 and [t.id for t in tasks] == [r.id for r in reversed(rs)]
    tasks, total = await store.task_list(
        TaskQuery(created_by="a", statuses=("open",), limit=1, order=ListOrder.CREATED_AT_ASC)
    )
    assert total == 1 and [t.id for t in tasks] == [rs[2].id]
    tasks, total = await store.task_list(TaskQuery(limit=2, offset=1))
    assert total == 3 and [t.id for t in tasks] == [rs[1].id, rs[0].id]
    for order in ListOrder:
        tasks, total = await store.task_list(TaskQuery(order=order))
        assert total == 3 and len(tasks) == 3, order
    by_status = await store.task_list(TaskQuery(order=ListOrder.STATUS_ASC))
    assert [t.status for t in by_status[0]] == ["open", "open", "processing"]
    assert ListOrder.parse("desc:created_at") is ListOrder.CREATED_AT_DESC
    assert ListOrder.parse("lastHeartbeatAt") is ListOrder.LAST_HEARTBEAT_AT_DESC
    with pytest.raises(InputError):
        ListOrder.parse("desc:spec; DROP TABLE tasks")


async def test_cancel_open_processing_final_and_unknown(store: Store) -> None:
    a, b = row(), row()
    await insert(store, a)
    assert await store.task_cancel(a.id, WORDING.cancelled()) == "open"
    task = await store.task_get(a.id)
    assert task is not None and task.status == "cancelled" and task.finished_at is not None
    (event,) = await store.events_after(a.id, 0)
    assert (event.type, event.body) == ("cancelled", WORDING.cancelled().body)
    assert await store.task_cancel(a.id, WORDING.cancelled()) == "cancelled"
    await insert(store, b)
    await claim_one(store)
    assert await store.task_cancel(b.id, WORDING.cancelled()) == "processing"
    task = await store.task_get(b.id)
    assert task is not None and task.status == "processing" and task.cancel_requested
    assert await store.task_cancel(str(uuid.uuid4()), WORDING.cancelled()) is None


async def test_retry_keeps_completed_steps_and_counts_against_the_cap(store: Store) -> None:
    r = row(created_by="dave")
    await insert(store, r)
    claim = await claim_one(store)
    batch = batch_of(claim)
    batch.steps[r.id] = {
        "a": dumps({"status": "completed", "output": {}}),
        "b": dumps({"status": "failed", "output": {}}),
    }
    batch.finishes.append(finish(claim, "failed"))
    assert await store.batch_apply(batch) == set()
    # dave has room for none: the retry is refused and the task stays failed
    await insert(store, row(created_by="dave"))
    assert await store.task_retry(r.id, open_cap=1) == Retried("failed", refused=True)
    assert (await store.task_status(r.id)) == "failed"
    assert await store.task_retry(r.id, open_cap=2) == Retried("failed")
    task = await store.task_get(r.id)
    assert task is not None and task.status == "open" and task.finished_at is None
    assert task.step_state == {"a": {"status": "completed", "output": {}}}
    assert await store.task_retry(r.id, open_cap=None) == Retried("open")
    assert await store.task_retry(str(uuid.uuid4()), open_cap=None) == Retried(None)
    again = await store.task_claim("w", 2, per_user_cap=None)
    assert {c.id: c.attempt for c in again}[r.id] == 2
    assert {c.id: c.claim_token for c in again}[r.id] != claim.claim_token


# -- the fenced batch -----------------------------------------------------------------
async def test_batch_writes_in_order_and_is_fenced(store: Store) -> None:
    r = row(sealed_secrets="sealed")
    await insert(store, r)
    claim = await claim_one(store)
    token = claim.claim_token
    batch = batch_of(claim)
    batch.events.append((r.id, token, "log", dumps({"message": "one"})))
    batch.events.append((r.id, token, "log", dumps({"message": "two"})))
    batch.steps[r.id] = {"a": dumps({"status": "completed", "output": {"x": None}})}
    batch.checkpoints[r.id] = {"c": dumps([1, 2])}
    assert await store.batch_apply(batch) == set()
    later = batch_of(claim)
    later.steps[r.id] = {"b": dumps({"status": "failed", "output": {}})}
    later.checkpoints[r.id] = {"d": dumps("v")}
    assert await store.batch_apply(later) == set()
    task = await store.task_get(r.id)
    assert task is not None and task.step_state == {
        "a": {"status": "completed", "output": {"x": None}},
        "b": {"status": "failed", "output": {}},
    }
    # a writer with another token is refused and writes nothing
    stale = WriteBatch(tokens={r.id: "not-the-token"})
    stale.events.append((r.id, "not-the-token", "log", dumps({"message": "stale"})))
    stale.finishes.append(Finish(r.id, "not-the-token", "completed", "completion", "{}", False))
    assert await store.batch_apply(stale) == {r.id}
    events = await store.events_after(r.id, 0)
    assert [e.body["message"] for e in events] == ["one", "two"]
    assert events[0].id < events[1].id and events[0].task_id == r.id
    assert events[0].is_task_recoverable and events[0].created_at.tzinfo is not None
    final = batch_of(claim)
    final.events.append((r.id, token, "log", dumps({"message": "three"})))
    final.finishes.append(finish(claim, "failed", {"m": 1}))
    assert await store.batch_apply(final) == set()
    task = await store.task_get(r.id)
    assert task is not None and task.status == "failed" and task.finished_at is not None
    assert await store.task_secrets(r.id) == "sealed"  # kept for a retry
    events = await store.events_after(r.id, 0)
    assert [e.type for e in events] == ["log", "log", "log", "completion"]
    assert events[-1].body == {"m": 1}
    assert await store.events_after(r.id, events[1].id) == events[2:]
    assert await store.events_after(r.id, 0, limit=2) == events[:2]
    # after the final write, the old token is refused too
    late = batch_of(claim)
    late.events.append((r.id, token, "log", dumps({"message": "late"})))
    assert await store.batch_apply(late) == {r.id}


async def test_a_batch_keeps_awkward_text_exactly(store: Store) -> None:
    # what the store encodes on its way to the database (each list one JSON
    # parameter on Postgres) comes back exactly: quotes, backslashes, escapes
    # written as text, newlines, non-ASCII, keys with quotes
    r = row()
    await insert(store, r)
    claim = await claim_one(store)
    awkward = 'a "quoted" \\ back\\slash, \\u0000 as text, tab\t, line\n, é 漢 🙂, {"x": [1]}'
    batch = batch_of(claim)
    batch.events.append((r.id, claim.claim_token, "log", dumps({"message": awkward})))
    batch.events.append((r.id, claim.claim_token, "log", dumps({"message": "with \x00 NUL"})))
    batch.steps[r.id] = {'st"ep\\': dumps({"status": "completed", "output": {awkward: awkward}})}
    batch.checkpoints[r.id] = {awkward: dumps([awkward, None, True, 1.5])}
    batch.releases.append(r.id)
    assert await store.batch_apply(batch) == set()
    again = await claim_one(store)
    assert again.step_state == {'st"ep\\': {"status": "completed", "output": {awkward: awkward}}}
    assert again.checkpoints == {awkward: [awkward, None, True, 1.5]}
    done = batch_of(again)
    done.finishes.append(finish(again, "completed", {"message": awkward}))
    assert await store.batch_apply(done) == set()
    events = await store.events_after(r.id, 0)
    assert [e.body.get("message") for e in events] == [awkward, "with \ufffd NUL", awkward]
    task = await store.task_get(r.id)
    assert task is not None and task.status == "completed"


async def test_one_batch_applies_each_tasks_own_changes(store: Store) -> None:
    # tasks of one flush touched differently (step state only, a checkpoint only,
    # a final write only, a release): each gets its own changes and no other's
    rows = [row(sealed_secrets="sealed") for _ in range(4)]
    await insert(store, *rows)
    claims = {c.id: c for c in await store.task_claim("w", 4, per_user_cap=None)}
    a, b, c, d = (claims[r.id] for r in rows)
    batch = WriteBatch(tokens={x.id: x.claim_token for x in (a, b, c, d)})
    batch.steps[a.id] = {"s": dumps({"status": "completed", "output": {"who": "a"}})}
    batch.checkpoints[b.id] = {"k": dumps("b")}
    batch.finishes.append(finish(c, "completed", {"who": "c"}))
    batch.releases.append(d.id)
    assert await store.batch_apply(batch) == set()
    done = await store.task_get(c.id)
    assert done is not None and done.status == "completed" and done.step_state == {}
    assert await store.task_secrets(c.id) is None
    assert await store.task_status(d.id) == "open"
    assert await store.task_secrets(d.id) == "sealed"
    task_a, task_b = await store.task_get(a.id), await store.task_get(b.id)
    assert task_a is not None and task_a.status == "processing"
    assert task_a.step_state == {"s": {"status": "completed", "output": {"who": "a"}}}
    assert task_b is not None and task_b.status == "processing" and task_b.step_state == {}
    (again,) = await store.task_claim("w", 1, per_user_cap=None)  # d, released
    assert again.id == d.id and again.checkpoints == {} and again.step_state == {}
    later = WriteBatch(tokens={b.id: b.claim_token})
    later.releases.append(b.id)
    assert await store.batch_apply(later) == set()
    (b_again,) = await store.task_claim("w", 1, per_user_cap=None)
    assert b_again.id == b.id and b_again.checkpoints == {"k": "b"}


async def test_a_completed_task_loses_its_secrets(store: Store) -> None:
    r = row(sealed_secrets="sealed")
    await insert(store, r)
    claim = await claim_one(store)
    done = batch_of(claim)
    done.finishes.append(finish(claim, "completed", {"output": {}}))
    assert await store.batch_apply(done) == set()
    assert await store.task_secrets(r.id) is None
    task = await store.task_get(r.id)
    assert task is not None and task.status == "completed"


async def test_a_batch_of_many_tasks_refuses_only_the_stale_one(store: Store) -> None:
    a, b = row(), row()
    await insert(store, a, b)
    claims = {c.id: c for c in await store.task_claim("w", 2, per_user_cap=None)}
    batch = WriteBatch(tokens={a.id: claims[a.id].claim_token, b.id: "stale"})
    for tid, token in batch.tokens.items():
        batch.events.append((tid, token, "log", dumps({"message": tid})))
        batch.steps[tid] = {"s": dumps({"status": "completed"})}
    assert await store.batch_apply(batch) == {b.id}
    assert [e.body["message"] for e in await store.events_after(a.id, 0)] == [a.id]
    assert await store.events_after(b.id, 0) == []
    task_b = await store.task_get(b.id)
    assert task_b is not None and task_b.step_state == {}


async def test_a_batch_naming_a_task_that_is_gone_refuses_only_that_one(store: Store) -> None:
    a = row()
    await insert(store, a)
    claim = await claim_one(store)
    gone = str(uuid.uuid4())
    batch = WriteBatch(tokens={claim.id: claim.claim_token, gone: "its-token"})
    batch.events.append((gone, "its-token", "log", dumps({"message": "gone"})))
    batch.events.append((a.id, claim.claim_token, "log", dumps({"message": "here"})))
    batch.finishes.append(finish(claim, "completed", {}))
    assert await store.batch_apply(batch) == {gone}
    assert [e.type for e in await store.events_after(a.id, 0)] == ["log", "completion"]
    assert await store.events_after(gone, 0) == []
    task = await store.task_get(a.id)
    assert task is not None and task.status == "completed"
    # the same flush again finds it written and answers the same
    assert await store.batch_apply(batch) == {gone}
    assert len(await store.events_after(a.id, 0)) == 2


async def test_a_batch_the_database_refuses_writes_nothing(store: Store) -> None:
    r = row()
    await insert(store, r)
    claim = await claim_one(store)
    bad = batch_of(claim)
    bad.events.append((r.id, claim.claim_token, "log", dumps({"message": "lost"})))
    bad.steps[r.id] = {"s": "{this is not json"}
    with pytest.raises(DatabaseError) as refused:
        await store.batch_apply(bad)
    assert not isinstance(refused.value, DatabaseUnavailableError)
    assert await store.events_after(r.id, 0) == []


async def test_release_reopens_and_keeps_a_cancel_request(store: Store) -> None:
    r = row(sealed_secrets="sealed")
    await insert(store, r)
    claim = await claim_one(store)
    assert await store.task_cancel(r.id, WORDING.cancelled()) == "processing"
    batch = batch_of(claim)
    batch.releases.append(r.id)  # the worker shuts down before it saw the request
    assert await store.batch_apply(batch) == set()
    task = await store.task_get(r.id)
    assert task is not None and task.status == "open" and task.claimed_by is None
    # the request survives, so the next claimer cancels the run (not runs it)
    assert task.cancel_requested is True
    assert await store.task_secrets(r.id) == "sealed"
    again = await claim_one(store, "w2")
    assert again.claim_token != claim.claim_token and again.attempt == 2


# -- leases -----------------------------------------------------------------------------
async def test_recover_stale_by_horizon(store: Store) -> None:
    keep, none, cancel = row(), row(recovery="none"), row()
    over = row(recovery="startOver")
    await insert(store, keep, none, cancel, over)
    claimed = {c.id: c.claim_token for c in await store.task_claim("w", 4, per_user_cap=None)}
    batch = WriteBatch(tokens=claimed)
    for tid in claimed:
        batch.steps[tid] = {
            "a": dumps({"status": "completed", "output": {}}),
            "b": dumps({"status": "processing"}),
        }
    assert await store.batch_apply(batch) == set()
    await store.task_cancel(cancel.id, WORDING.cancelled())
    assert await store.tasks_recover_stale(3600.0, WORDING) == []
    # a horizon one minute ahead: every lease is stale now, no sleeping
    outcome = dict(await store.tasks_recover_stale(-60.0, WORDING))
    assert outcome == {
        keep.id: "recovered",
        none.id: "failed",
        cancel.id: "cancelled",
        over.id: "recovered",
    }
    tasks = {tid: await store.task_get(tid) for tid in outcome}
    assert {tid: t.status for tid, t in tasks.items() if t} == {
        keep.id: "open",
        none.id: "failed",
        cancel.id: "cancelled",
        over.id: "open",
    }
    assert tasks[keep.id].step_state == {"a": {"status": "completed", "output": {}}}  # type: ignore[union-attr]
    assert tasks[over.id].step_state == {}  # type: ignore[union-attr]
    recovered = await store.events_after(keep.id, 0)
    assert [(e.type, e.body) for e in recovered] == [("recovered", WORDING.recovered())]
    (failed,) = await store.events_after(none.id, 0)
    assert (failed.type, failed.body) == ("completion", WORDING.abandoned().body)
    assert failed.is_task_recoverable is False
    (cancelled,) = await store.events_after(cancel.id, 0)
    assert cancelled.type == "cancelled"
    assert await store.tasks_recover_stale(-60.0, WORDING) == []
    again = await store.task_claim("w2", 10, per_user_cap=None)
    assert {c.id: c.attempt for c in again} == {keep.id: 2, over.id: 2}


async def test_erase_secrets_by_horizon(store: Store) -> None:
    r, done = row(sealed_secrets="ciphertext"), row(sealed_secrets="other")
    await insert(store, r, done)
    claims = {c.id: c for c in await store.task_claim("w", 2, per_user_cap=None)}
    batch = WriteBatch(tokens={c.id: c.claim_token for c in claims.values()})
    batch.finishes.append(finish(claims[r.id], "failed"))
    assert await store.batch_apply(batch) == set()
    assert await store.task_secrets(r.id) == "ciphertext"
    assert await store.tasks_erase_secrets(3600.0) == 0
    assert await store.tasks_erase_secrets(-60.0) == 1  # the processing task keeps its own
    assert await store.task_secrets(r.id) is None
    assert await store.task_secrets(done.id) == "other"


async def test_worker_heartbeat_returns_leases_and_limit(store: Store) -> None:
    await store.worker_register("w", "host", 1, 5)
    await insert(store, *(row() for _ in range(3)))
    ids = [c.id for c in await store.task_claim("w", 3, per_user_cap=None)]
    beat = await store.worker_heartbeat("w", ids, None)
    assert set(beat.owned) == set(ids) and beat.limit == 5
    assert not any(lease.cancel_requested for lease in beat.owned.values())
    await store.task_cancel(ids[0], WORDING.cancelled())
    beat = await store.worker_heartbeat("w", ids, None)
    assert beat.owned[ids[0]].cancel_requested and not beat.owned[ids[1]].cancel_requested
    assert await store.worker_heartbeat("other", ids, None) == type(beat)({}, None)
    assert await store.worker_set_limit("w", 7)
    assert not await store.worker_set_limit("nobody", 7)
    beat = await store.worker_heartbeat("w", ids[:1], None)
    assert set(beat.owned) == {ids[0]} and beat.limit == 7
    assert (await store.worker_heartbeat("w", [], 9)).limit == 9
    (info,) = await store.worker_list()
    assert (info.id, info.host, info.limit, info.running, info.pid) == ("w", "host", 9, 0, 1)
    assert info.started_at.tzinfo is not None and 0 <= info.heartbeat_age < 60
    # one part of a beat sent in parts: the worker's row gets its whole count
    beat = await store.worker_heartbeat("w", ids[1:2], None, running=3)
    assert set(beat.owned) == {ids[1]}
    assert [w.running for w in await store.worker_list()] == [3]
    await store.worker_register("w", "host", 1, 5)  # registering again keeps the row
    assert [w.limit for w in await store.worker_list()] == [9]
    await store.worker_delete("w")
    assert await store.worker_list() == []


async def test_workers_prune_by_horizon(store: Store) -> None:
    await store.worker_register("old", "h", 1, 1)
    assert await store.workers_prune(3600.0) == 0
    assert await store.workers_prune(-60.0) == 1
    assert await store.worker_list() == []


# -- events ----------------------------------------------------------------------------
async def test_events_after_many_reads_each_pair_after_its_cursor(store: Store) -> None:
    a, b, quiet = row(), row(), row()
    await insert(store, a, b, quiet)
    claims = {c.id: c.claim_token for c in await store.task_claim("w", 3, per_user_cap=None)}
    batch = WriteBatch(tokens=claims)
    for i in range(5):  # interleaved, as a flush of several tasks writes them
        for r in (a, b):
            batch.events.append((r.id, claims[r.id], "log", dumps({"message": f"{i}"})))
    assert await store.batch_apply(batch) == set()
    a_events, b_events = await store.events_after(a.id, 0), await store.events_after(b.id, 0)
    wanted = [
        (b.id, b_events[1].id),
        (a.id, 0),
        (quiet.id, 0),
        (a.id, a_events[3].id),  # the same task twice, another cursor
        (str(uuid.uuid4()), 0),  # no such task
    ]
    got = await store.events_after_many(wanted)
    assert got == [b_events[2:], a_events, [], a_events[4:], []]
    limited = await store.events_after_many([(a.id, 0), (b.id, 0)], limit=2)
    assert limited == [a_events[:2], b_events[:2]]
    assert await store.events_after_many([]) == []


# -- the store itself -----------------------------------------------------------------
async def test_schema_ping_key_and_migrate_again(database_url: str, store: Store) -> None:
    assert await store.schema_revision() == head()
    await store.ping()
    await store.migrate()  # a second migration finds nothing to do
    assert await store.schema_revision() == head()
    other = await open_store(database_url)
    try:
        assert other.key == store.key  # the same database: a shared hub where needed
    finally:
        await other.close()


async def test_a_listener_when_offered_carries_wakeups(database_url: str, store: Store) -> None:
    hub = Hub()
    woken = asyncio.Event()
    hub.watch_tasks(woken.set)
    listener = store.listener(hub)
    if listener is None:
        # no listener: this store promises nothing across processes (everyone polls)
        assert not woken.is_set()
        return
    running = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        woken.clear()  # connecting wakes everyone once
        other = await open_store(database_url)
        try:
            await insert(other, row())
        finally:
            await other.close()
        await asyncio.wait_for(woken.wait(), 10)
        assert listener.connects == 1 and listener.backend_pid
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running


async def test_a_closed_store_is_unavailable(database_url: str) -> None:
    gone = await open_store(database_url)
    await gone.close()
    with pytest.raises(DatabaseUnavailableError):
        await gone.task_get(str(uuid.uuid4()))
    with pytest.raises(DatabaseUnavailableError):
        await gone.worker_delete("w")


# -- the audit trail -------------------------------------------------------------------
async def test_audit_entries_come_back_newest_first_and_filtered(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    await store.audit_insert([])  # nothing to write is no statement and no error
    await store.audit_insert(
        [
            AuditEntry("user:default/alice", "task.create", "t1", dumps({"template": "x"})),
            AuditEntry("user:default/bob", "authz.denied", None, dumps({"reason": "no"})),
        ]
    )
    await store.audit_insert([AuditEntry("user:default/alice", "task.cancel", "t1", "{}")])
    found = await store.audit_list(AuditQuery())
    assert [(r.actor, r.action, r.target) for r in found] == [
        ("user:default/alice", "task.cancel", "t1"),
        ("user:default/bob", "authz.denied", None),
        ("user:default/alice", "task.create", "t1"),
    ]
    assert all(isinstance(r, AuditRecord) for r in found)
    assert found[0].id > found[1].id > found[2].id
    assert found[1].detail == {"reason": "no"} and found[0].detail == {}
    assert found[0].at.tzinfo is not None and abs(found[0].at - datetime.now(UTC)) < timedelta(
        minutes=5
    )
    assert found[0].to_json()["at"].endswith("Z")
    alice = await store.audit_list(AuditQuery(actor="user:default/alice"))
    assert [r.action for r in alice] == ["task.cancel", "task.create"]
    denied = await store.audit_list(AuditQuery(action="authz.denied"))
    assert [r.actor for r in denied] == ["user:default/bob"]
    page = await store.audit_list(AuditQuery(limit=2))
    rest = await store.audit_list(AuditQuery(before=page[-1].id, limit=2))
    assert [r.id for r in page + rest] == [r.id for r in found]
    assert len(await store.audit_list(AuditQuery(since=before))) == 3
    future = datetime.now(UTC) + timedelta(hours=1)
    assert await store.audit_list(AuditQuery(since=future)) == []
    assert await store.audit_list(AuditQuery(actor="user:default/nobody")) == []


# -- retention ---------------------------------------------------------------------------
async def finished(store: Store, status: str, events: int = 3, **kw: Any) -> str:
    """A task that ran and ended with ``status``, with ``events`` log events."""
    r = row(**kw)
    await insert(store, r)
    if status == "cancelled":  # an open task cancelled before any worker took it
        assert await store.task_cancel(r.id, WORDING.cancelled()) == "open"
        return r.id
    claim = await claim_one(store)
    batch = batch_of(claim)
    for i in range(events):
        batch.events.append((r.id, claim.claim_token, "log", dumps({"message": f"{i}"})))
    batch.finishes.append(finish(claim, status))
    assert await store.batch_apply(batch) == set()
    return r.id


async def test_expire_deletes_old_finished_tasks_and_their_events_in_batches(
    store: Store,
) -> None:
    done = [await finished(store, "completed") for _ in range(5)]
    failed = await finished(store, "failed")
    cancelled = await finished(store, "cancelled")
    kept = await finished(store, "completed")
    assert await store.task_keep(kept, True)
    assert not await store.task_keep(str(uuid.uuid4()), True)
    await insert(store, row())  # open
    await insert(store, row())
    running = await claim_one(store)  # processing
    # nothing is old enough for a horizon of an hour
    assert await store.tasks_expire("completed", 3600.0, 100) == Expired(0, 0)
    # batches of two, oldest first, each with its events
    first = await store.tasks_expire("completed", -60.0, 2)
    assert first == Expired(2, 8)  # 3 logs + the completion each
    assert await store.task_get(done[0]) is None and await store.task_get(done[1]) is None
    assert await store.events_after(done[0], 0) == []
    assert await store.task_get(done[2]) is not None
    assert await store.tasks_expire("completed", -60.0, 100) == Expired(3, 12)
    # other statuses, kept tasks and unfinished ones stay
    assert await store.task_get(failed) is not None and await store.task_get(kept) is not None
    assert len(await store.events_after(kept, 0)) == 4
    assert await store.tasks_expire("cancelled", -60.0, 100) == Expired(1, 1)
    assert await store.tasks_expire("failed", -60.0, 100) == Expired(1, 4)
    for status in ("open", "processing", "completed"):
        assert await store.tasks_expire(status, -60.0, 100) == Expired(0, 0)
    assert await store.task_status(running.id) == "processing"
    # a kept task released becomes due like the others
    assert await store.task_keep(kept, False)
    assert await store.tasks_expire("completed", -60.0, 100) == Expired(1, 4)
    _, total = await store.task_list(TaskQuery())
    assert total == 2
    assert await store.space_reclaim(1_000_000) >= 0
    assert cancelled not in {t.id for t in (await store.task_list(TaskQuery()))[0]}


async def test_a_retried_task_is_not_expired(store: Store) -> None:
    tid = await finished(store, "failed")
    await store.task_retry(tid, open_cap=None)
    assert await store.tasks_expire("failed", -60.0, 100) == Expired(0, 0)
    assert await store.task_status(tid) == "open"


async def test_audit_expire_by_horizon_in_batches(store: Store) -> None:
    await store.audit_insert([AuditEntry("user:default/a", "task.create", None, "{}")] * 3)
    assert await store.audit_expire(3600.0, 100) == 0
    assert await store.audit_expire(-60.0, 2) == 2
    assert len(await store.audit_list(AuditQuery())) == 1
    assert await store.audit_expire(-60.0, 2) == 1


# -- one node at a time ------------------------------------------------------------------
async def test_a_lease_has_one_holder_until_it_expires(store: Store) -> None:
    assert await store.lease_take("retention", "a", 60.0)
    assert not await store.lease_take("retention", "b", 60.0)
    assert await store.lease_take("retention", "a", 60.0)  # renewed by its holder
    assert await store.lease_take("metrics", "b", 60.0)  # another name is another lease
    assert await store.lease_take("retention", "a", -1.0)  # the holder lets it lapse
    assert await store.lease_take("retention", "b", 60.0)
    assert not await store.lease_take("retention", "a", 60.0)


async def test_concurrent_lease_takers_get_one_turn(store: Store) -> None:
    won = await asyncio.gather(*(store.lease_take("turn", f"h{i}", 60.0) for i in range(8)))
    assert sum(won) == 1


# -- cluster metrics -----------------------------------------------------------------------
async def test_metrics_gauges_count_tasks_and_live_workers(store: Store) -> None:
    empty = await store.metrics_gauges(60.0)
    assert empty.tasks == dict.fromkeys(STATUSES, 0)
    assert (empty.oldest_open_age, empty.workers_alive, empty.worker_capacity) == (0.0, 0, 0)
    await finished(store, "completed")
    await finished(store, "failed")
    await insert(store, row(), row())
    later = datetime.now(UTC) + timedelta(hours=1)
    await insert(store, row(run_after=later))  # open, but not claimable yet
    await claim_one(store)
    await store.worker_register("w1", "h", 1, 5)
    await store.worker_register("w2", "h", 2, 7)
    gauges = await store.metrics_gauges(60.0)
    assert gauges.tasks == {
        "open": 2,
        "processing": 1,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
    }
    assert 0.0 <= gauges.oldest_open_age < 60.0
    assert (gauges.workers_alive, gauges.worker_capacity) == (2, 12)
    assert (await store.metrics_gauges(-60.0)).workers_alive == 0  # none seen in the future


async def test_metrics_marks_read_runs_and_steps_after_a_cursor(store: Store) -> None:
    start = await store.metrics_marks(None, 0.0, 1000)
    assert start.marks == []
    spec = {
        "templateInfo": {"entityRef": "template:default/demo"},
        "steps": [{"id": "fetch", "action": "fetch:template"}, {"action": "debug:log"}],
    }
    r = row(spec)
    await insert(store, r)
    claim = await claim_one(store)
    token = claim.claim_token

    def log(body: dict[str, Any]) -> tuple[str, str, str, str]:
        return (r.id, token, "log", dumps(body))

    first = batch_of(claim)
    first.events += [
        log({"message": "Starting up task with 2 steps"}),
        log({"message": "Beginning step fetch", "stepId": "fetch", "status": "processing"}),
        log({"message": "an action's line", "stepId": "fetch"}),
    ]
    assert await store.batch_apply(first) == set()
    second = batch_of(claim)
    second.events += [
        log({"message": "Finished step fetch", "stepId": "fetch", "status": "completed"}),
        log({"message": "Beginning step", "stepId": "step-2", "status": "processing"}),
        log({"message": "Failed step", "stepId": "step-2", "status": "failed"}),
        log({"message": "Skipping step x", "stepId": "x", "status": "skipped"}),
    ]
    second.finishes.append(finish(claim, "failed", {"error": {"name": "E", "message": "m"}}))
    assert await store.batch_apply(second) == set()
    # events younger than the lag wait for the next scan
    assert await store.metrics_marks(start.until, 3600.0, 1000) == Marks(start.until, [])
    found = await store.metrics_marks(start.until, -60.0, 1000)
    events = await store.events_after(r.id, 0)
    assert found.until == events[-1].id
    got = [(m.kind, m.status, m.label, m.seconds is not None) for m in found.marks]
    assert got == [
        ("step", "completed", "fetch:template", True),
        ("step", "failed", "debug:log", True),
        ("step", "skipped", None, False),  # no such step, never begun
        ("task", "failed", "template:default/demo", True),
    ]
    assert all(m.seconds is None or m.seconds >= 0 for m in found.marks)
    assert [m.event_id for m in found.marks] == sorted(m.event_id for m in found.marks)
    # a scan of at most 2 events stops there; the next one goes on after it
    part = await store.metrics_marks(start.until, -60.0, 2)
    assert part.until == events[1].id and part.marks == []
    rest = await store.metrics_marks(part.until, -60.0, 1000)
    assert rest == found
    assert await store.metrics_marks(found.until, -60.0, 1000) == Marks(found.until, [])
    # a cancelled task's run is a mark of its own
    cancelled = await finished(store, "cancelled")
    again = await store.metrics_marks(found.until, -60.0, 1000)
    assert [(m.kind, m.status, m.label) for m in again.marks] == [("task", "cancelled", None)]
    assert (await store.events_after(cancelled, 0))[-1].id == again.until


async def test_metrics_snapshot_is_compared_and_set(store: Store) -> None:
    assert await store.metrics_snapshot_get("cluster") is None
    assert await store.metrics_snapshot_put("cluster", None, 10, dumps({"a": 1}))
    assert not await store.metrics_snapshot_put("cluster", None, 11, dumps({"a": 2}))
    assert not await store.metrics_snapshot_put("cluster", 9, 11, dumps({"a": 2}))
    assert await store.metrics_snapshot_put("cluster", 10, 12, dumps({"a": 3}))
    snap = await store.metrics_snapshot_get("cluster")
    assert snap is not None and (snap.last_event_id, snap.body) == (12, {"a": 3})
    assert 0.0 <= snap.age < 60.0


# -- scaffolds (template updates) -------------------------------------------------------
async def test_scaffolds_are_upserted_and_listed_by_template(store: Store) -> None:
    first = ScaffoldRecord(
        "/r/b.git#main", "template:default/svc", "v1", {"answers": {"n": 1}}, "t1", "user:a"
    )
    await store.scaffold_upsert(first)
    await store.scaffold_upsert(ScaffoldRecord("/r/a.git#main", "template:default/svc", "v1", {}))
    await store.scaffold_upsert(ScaffoldRecord("/r/c.git#", "template:default/web", "v3", {}))
    found = await store.scaffold_list("template:default/svc", limit=10)
    assert [(r.repository, r.version) for r in found] == [
        ("/r/a.git#main", "v1"),
        ("/r/b.git#main", "v1"),
    ]
    assert found[1].record == {"answers": {"n": 1}} and found[1].task_id == "t1"
    assert found[1].created_by == "user:a" and found[1].updated_at is not None
    assert abs(found[1].updated_at - datetime.now(UTC)) < timedelta(minutes=5)
    # the same repository again replaces its row
    await store.scaffold_upsert(
        ScaffoldRecord("/r/b.git#main", "template:default/svc", "v2", {"update": True}, "t2")
    )
    again = await store.scaffold_list("template:default/svc", limit=10)
    assert [(r.repository, r.version, r.task_id) for r in again] == [
        ("/r/a.git#main", "v1", None),
        ("/r/b.git#main", "v2", "t2"),
    ]
    assert again[1].record == {"update": True}
    everything = await store.scaffold_list(None, limit=10)
    assert [r.template_ref for r in everything] == ["template:default/svc"] * 2 + [
        "template:default/web"
    ]
    assert [r.repository for r in await store.scaffold_list(None, limit=1, offset=1)] == [
        "/r/b.git#main"
    ]
    assert await store.scaffold_list("template:default/none", limit=10) == []
    # one row by its repository
    got = await store.scaffold_get("/r/b.git#main")
    assert got is not None and (got.version, got.task_id, got.record) == (
        "v2",
        "t2",
        {"update": True},
    )
    assert await store.scaffold_get("/r/b.git#other") is None


async def test_parallel_writes_of_disjoint_tasks_all_land_in_order(store: Store) -> None:
    # a worker runs up to parallel_writes flushes at once, never two of one task
    # (engine/batcher.py): each must land whole, with its tasks' events in order
    assert store.parallel_writes >= 1
    n = 3 * max(store.parallel_writes, 2)
    await insert(store, *(row() for _ in range(n)))
    claimed = await store.task_claim("w", n, per_user_cap=None)
    assert len(claimed) == n
    batches = []
    for part in (claimed[i::3] for i in range(3)):
        batch = WriteBatch(tokens={c.id: c.claim_token for c in part})
        for c in part:
            for k in range(3):
                batch.events.append((c.id, c.claim_token, "log", dumps({"message": f"{k}"})))
            batch.steps[c.id] = {"s": dumps({"status": "completed"})}
            batch.finishes.append(finish(c))
        batches.append(batch)
    at_once = max(store.parallel_writes, 1)
    for start in range(0, len(batches), at_once):
        chunk = batches[start : start + at_once]
        assert await asyncio.gather(*(store.batch_apply(b) for b in chunk)) == [set()] * len(chunk)
    for c in claimed:
        task = await store.task_get(c.id)
        assert task is not None and task.status == "completed"
        assert task.step_state == {"s": {"status": "completed"}}
        events = await store.events_after(c.id, 0)
        assert [e.body.get("message") for e in events] == ["0", "1", "2", None]
        assert [e.id for e in events] == sorted(e.id for e in events)


def test_every_contract_method_is_exercised() -> None:
    methods = {
        name
        for name, value in inspect.getmembers(Store)
        if not name.startswith("_") and callable(value)
    }
    source = Path(__file__).read_text()
    missing = {m for m in methods if f".{m}(" not in source}
    assert methods and not missing, missing


# -- the webhooks' outbox ---------------------------------------------------------
async def test_the_outbox_holds_each_finish_until_it_is_marked(store: Store) -> None:
    ref = {"steps": [{"id": "big"}], "templateInfo": {"entityRef": "template:default/x"}}
    a, b, c = row(ref), row(), row()
    await insert(store, a, b, c)
    assert await store.tasks_unhooked(10) == []
    # a ends through its worker, b by a cancel while open; c stays open
    claim = await claim_one(store)
    batch = batch_of(claim)
    batch.finishes.append(finish(claim, body={"message": "done", "output": {"x": 1}}))
    assert await store.batch_apply(batch) == set()
    await store.task_cancel(b.id, WORDING.cancelled())
    found = await store.tasks_unhooked(10)
    assert [(f.task.id, f.task.status) for f in found] == [(a.id, "completed"), (b.id, "cancelled")]
    assert found[0].final == {"message": "done", "output": {"x": 1}}
    assert found[1].final == WORDING.cancelled().body
    assert found[0].task.spec == {
        "apiVersion": None,
        "kind": None,
        "templateInfo": {"entityRef": "template:default/x"},
    }
    assert found[1].task.spec["templateInfo"] == {"entityRef": None}
    assert [f.task.id for f in await store.tasks_unhooked(1)] == [a.id]
    done_at, cancelled_at = found[0].task.finished_at, found[1].task.finished_at
    assert done_at is not None and cancelled_at is not None
    await store.tasks_mark_hooked([(a.id, done_at)])
    assert [f.task.id for f in await store.tasks_unhooked(10)] == [b.id]
    # finished again after a retry: a mark of an earlier finish leaves it there
    await store.task_retry(b.id, open_cap=None)
    assert await store.tasks_unhooked(10) == []
    await store.task_cancel(b.id, WORDING.cancelled())
    (again,) = await store.tasks_unhooked(10)
    await store.tasks_mark_hooked([(b.id, cancelled_at - timedelta(seconds=1))])
    assert [f.task.id for f in await store.tasks_unhooked(10)] == [b.id]
    assert again.task.finished_at is not None
    await store.tasks_mark_hooked([(b.id, again.task.finished_at)])
    assert await store.tasks_unhooked(10) == []
    await store.tasks_mark_hooked([])


async def test_without_webhooks_a_finish_is_marked_announced_as_it_is_written(
    database_url: str, store: Store
) -> None:
    """``announce_finishes=False`` (no webhook configured): every way a task ends
    (its worker, a cancel while open, the janitor) leaves it out of the outbox, so
    webhooks configured later announce only the tasks that end after."""
    quiet = await open_store(database_url, StoreOptions(announce_finishes=False))
    try:
        done, cancelled, abandoned = row(), row(), row(recovery="none")
        await insert(quiet, done, abandoned)
        claims = {c.id: c for c in await quiet.task_claim("w", 2, per_user_cap=None)}
        await insert(quiet, cancelled)
        batch = batch_of(claims[done.id])
        batch.finishes.append(finish(claims[done.id]))
        assert await quiet.batch_apply(batch) == set()
        assert await quiet.task_cancel(cancelled.id, WORDING.cancelled()) == "open"
        assert dict(await quiet.tasks_recover_stale(-60.0, WORDING)) == {abandoned.id: "failed"}
        statuses = await quiet.tasks_status([done.id, cancelled.id, abandoned.id])
        assert statuses == {done.id: "completed", cancelled.id: "cancelled", abandoned.id: "failed"}
        assert await quiet.tasks_unhooked(10) == []
        assert await store.tasks_unhooked(10) == []  # whichever store reads it
        # a release is no finish; a retry ended by a node with webhooks is announced
        await quiet.task_retry(cancelled.id, open_cap=None)
        await store.task_cancel(cancelled.id, WORDING.cancelled())
        assert [f.task.id for f in await quiet.tasks_unhooked(10)] == [cancelled.id]
    finally:
        await quiet.close()


async def test_an_event_is_appended_to_a_finished_task(store: Store) -> None:
    (tid,) = await insert(store, row())
    await store.task_cancel(tid, WORDING.cancelled())
    assert await store.event_append(tid, "log", dumps({"message": "webhook sent"}))
    events = await store.events_after(tid, 0)
    assert [(e.type, e.body) for e in events][-1] == ("log", {"message": "webhook sent"})
    assert (await store.task_get(tid)).status == "cancelled"  # type: ignore[union-attr]
    assert not await store.event_append(str(uuid.uuid4()), "log", "{}")


# -- cluster switches and the admin's view -----------------------------------------
async def test_paused_claims_nothing_until_cleared(store: Store) -> None:
    await insert(store, row())
    assert await store.flags_list() == []
    await store.flag_set("paused", dumps({"reason": "upgrade"}), "user:default/admin")
    (flag,) = await store.flags_list()
    assert (flag.name, flag.detail, flag.set_by) == (
        "paused",
        {"reason": "upgrade"},
        "user:default/admin",
    )
    assert flag.set_at.tzinfo is not None
    assert await store.task_claim("w", 10, per_user_cap=None) == []
    assert await store.task_claim("w", 10, per_user_cap=5) == []
    await store.flag_set("paused", dumps({"reason": "again"}), None)
    assert [(f.detail, f.set_by) for f in await store.flags_list()] == [({"reason": "again"}, None)]
    assert await store.flag_clear("paused")
    assert not await store.flag_clear("paused")
    assert len(await store.task_claim("w", 10, per_user_cap=5)) == 1


async def test_queue_overview_and_troubled_tasks(store: Store) -> None:
    overview = await store.queue_overview(60)
    assert (overview.open, overview.claimable, overview.processing, overview.stale) == (0, 0, 0, 0)
    assert overview.oldest_open_age is None
    later = datetime.now(UTC) + timedelta(hours=1)
    await insert(store, row(), row(), row(run_after=later))
    claim = await claim_one(store)
    overview = await store.queue_overview(60)
    assert (overview.open, overview.claimable, overview.processing, overview.stale) == (2, 1, 1, 0)
    assert overview.oldest_open_age is not None and 0 <= overview.oldest_open_age < 60
    assert overview.to_json()["oldestOpenAgeSeconds"] == overview.oldest_open_age
    assert (await store.queue_overview(-1)).stale == 1  # a horizon in the future
    assert await store.tasks_troubled(60, 10) == []
    (stale,) = await store.tasks_troubled(-1, 10)
    assert (stale.id, stale.status, stale.claimed_by, stale.recovered_at) == (
        claim.id,
        "processing",
        "w",
        None,
    )
    assert stale.heartbeat_age is not None
    await store.tasks_recover_stale(-1, WORDING)
    (recovered,) = await store.tasks_troubled(60, 10)
    assert (recovered.id, recovered.status, recovered.attempt) == (claim.id, "open", 1)
    assert recovered.recovered_at is not None
    assert recovered.to_json()["recoveredAt"].endswith("Z")


# -- idempotent flushes and superseded markers -------------------------------------------
async def test_a_flush_applied_again_writes_nothing_and_answers_the_same(store: Store) -> None:
    r = row()
    await insert(store, r)
    claim = await claim_one(store)
    batch = batch_of(claim)
    batch.events.append((r.id, claim.claim_token, "log", dumps({"message": "once"})))
    batch.checkpoints[r.id] = {"c": dumps(1)}
    assert await store.batch_apply(batch) == set()
    # the same flush again (its reply was lost on the way back): nothing twice
    assert await store.batch_apply(batch) == set()
    assert [e.body["message"] for e in await store.events_after(r.id, 0)] == ["once"]
    stale = WriteBatch(tokens={r.id: "old-token"})
    stale.events.append((r.id, "old-token", "log", dumps({"message": "stale"})))
    assert await store.batch_apply(stale) == {r.id}
    assert await store.batch_apply(stale) == {r.id}  # the same answer
    assert await store.flushes_prune(3600.0) == 0
    assert await store.flushes_prune(-60.0) == 2
    # forgotten: applying the refused flush once more is refused again, not a no-op
    assert await store.batch_apply(stale) == {r.id}


async def test_a_superseded_marker_joins_a_live_task_and_never_follows_its_end(
    store: Store,
) -> None:
    mine, taken, ended = row(), row(), row()
    await insert(store, mine, taken, ended)
    claims = {c.id: c for c in await store.task_claim("w", 3, per_user_cap=None)}
    marker = dumps({"message": "superseded", "superseded": {"workerId": "w", "attempt": 1}})
    # still ours: the marker goes in and the task is released at once
    batch = WriteBatch(tokens={mine.id: claims[mine.id].claim_token})
    batch.superseded[mine.id] = marker
    assert await store.batch_apply(batch) == set()
    task = await store.task_get(mine.id)
    assert task is not None and (task.status, task.claimed_by) == ("open", None)
    # another run owns it: refused, but the marker joins its log
    batch = WriteBatch(tokens={taken.id: "an-older-token"})
    batch.superseded[taken.id] = marker
    assert await store.batch_apply(batch) == {taken.id}
    task = await store.task_get(taken.id)
    assert task is not None and task.status == "processing"
    # finished: nothing may follow its final event
    done = batch_of(claims[ended.id])
    done.finishes.append(finish(claims[ended.id], "completed", {}))
    assert await store.batch_apply(done) == set()
    batch = WriteBatch(tokens={ended.id: claims[ended.id].claim_token})
    batch.superseded[ended.id] = marker
    assert await store.batch_apply(batch) == {ended.id}
    for tid, count in ((mine.id, 1), (taken.id, 1), (ended.id, 0)):
        events = await store.events_after(tid, 0)
        assert len([e for e in events if "superseded" in e.body]) == count, tid
    assert (await store.events_after(ended.id, 0))[-1].type == "completion"
