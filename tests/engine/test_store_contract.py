"""One contract suite every store passes (SQLite and Postgres via ``database_url``).

No branch here looks at the dialect: differences are the store's business.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from falsework.engine.store import Finish, Store, WriteBatch, dumps
from falsework.errors import InputError


def row(spec: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "spec": spec or {"steps": []},
        "secrets": None,
        "created_by": None,
        "priority": 0,
        "run_after": None,
        "recovery": "resume",
        "idempotency_key": None,
    }
    base.update(kw)
    return base


async def test_insert_get_and_idempotency(store: Store) -> None:
    r = row({"apiVersion": "v1", "steps": [{"id": "a"}]}, created_by="alice", idempotency_key="k1")
    assert await store.insert_tasks([r]) == [r["id"]]
    again = row(idempotency_key="k1")
    assert await store.insert_tasks([again]) == []
    assert await store.task_id_by_key("k1") == r["id"]
    task = await store.get_task(r["id"])
    assert task is not None
    assert task.status == "open" and task.created_by == "alice" and task.attempt == 0
    assert list(task.spec) == ["apiVersion", "steps"]  # key order kept
    assert task.last_heartbeat_at is None
    assert await store.get_task(str(uuid.uuid4())) is None


async def test_claim_fifo_within_priority_and_run_after(store: Store) -> None:
    low = [row(priority=0) for _ in range(3)]
    high = row(priority=5)
    later = row(run_after=datetime.now(UTC) + timedelta(hours=1))
    past = row(run_after=datetime.now(UTC) - timedelta(seconds=5))
    await store.insert_tasks([*low, later])
    await store.insert_tasks([high, past])
    claimed = await store.claim("w1", 10, None)
    ids = [r._mapping["id"] for r in claimed]
    assert ids == [high["id"], *(r["id"] for r in low), past["id"]]
    tokens = {r._mapping["claim_token"] for r in claimed}
    assert len(tokens) == len(claimed) and None not in tokens
    assert {r._mapping["attempt"] for r in claimed} == {1}
    assert await store.claim("w2", 10, None) == []
    assert await store.count_claimable() == 0


async def test_claim_batch_is_limited(store: Store) -> None:
    await store.insert_tasks([row() for _ in range(7)])
    assert len(await store.claim("w", 3, None)) == 3
    assert len(await store.claim("w", 3, None)) == 3
    assert len(await store.claim("w", 3, None)) == 1


async def test_fair_claim_caps_running_per_user(store: Store) -> None:
    await store.insert_tasks([row(created_by="a") for _ in range(10)])
    await store.insert_tasks([row(created_by="b")])
    first = await store.claim("w", 10, 2)
    users = sorted(r._mapping["created_by"] for r in first)
    assert users == ["a", "a", "b"]
    assert await store.claim("w", 10, 2) == []


async def test_apply_writes_and_fencing(store: Store) -> None:
    r = row()
    await store.insert_tasks([r])
    (claim,) = await store.claim("w", 1, None)
    token = claim._mapping["claim_token"]
    batch = WriteBatch(tokens={r["id"]: token})
    batch.events.append((r["id"], token, "log", dumps({"message": "one"})))
    batch.events.append((r["id"], token, "log", dumps({"message": "two"})))
    batch.steps[r["id"]] = {"a": dumps({"status": "completed", "output": {"x": None}})}
    batch.checkpoints[r["id"]] = {"c": dumps([1, 2])}
    assert await store.apply(batch) == set()
    batch2 = WriteBatch(tokens={r["id"]: token})
    batch2.steps[r["id"]] = {"b": dumps({"status": "failed", "output": {}})}
    assert await store.apply(batch2) == set()
    task = await store.get_task(r["id"])
    assert task is not None
    assert task.step_state == {
        "a": {"status": "completed", "output": {"x": None}},
        "b": {"status": "failed", "output": {}},
    }
    # a writer with another token is refused and writes nothing
    stale = WriteBatch(tokens={r["id"]: "not-the-token"})
    stale.events.append((r["id"], "not-the-token", "log", dumps({"message": "stale"})))
    stale.finishes.append(
        Finish(r["id"], "not-the-token", "completed", "completion", dumps({}), False)
    )
    assert await store.apply(stale) == {r["id"]}
    events = await store.events(r["id"], 0)
    assert [e.body["message"] for e in events] == ["one", "two"]
    assert events[0].id < events[1].id
    fin = WriteBatch(tokens={r["id"]: token})
    fin.events.append((r["id"], token, "log", dumps({"message": "three"})))
    fin.finishes.append(Finish(r["id"], token, "failed", "completion", dumps({"m": 1}), True))
    assert await store.apply(fin) == set()
    task = await store.get_task(r["id"])
    assert task is not None and task.status == "failed" and task.finished_at is not None
    events = await store.events(r["id"], 0)
    assert [e.type for e in events] == ["log", "log", "log", "completion"]
    assert await store.events(r["id"], events[1].id) == events[2:]
    # after the final write, the old token is refused too
    late = WriteBatch(tokens={r["id"]: token})
    late.events.append((r["id"], token, "log", dumps({"message": "late"})))
    assert await store.apply(late) == {r["id"]}


async def test_events_many_reads_each_pair_after_its_cursor(store: Store) -> None:
    a, b, quiet = row(), row(), row()
    await store.insert_tasks([a, b, quiet])
    claims = {c._mapping["id"]: c._mapping["claim_token"] for c in await store.claim("w", 3, None)}
    batch = WriteBatch(tokens=claims)
    for i in range(5):  # interleaved, as a flush of several tasks writes them
        for r in (a, b):
            batch.events.append((r["id"], claims[r["id"]], "log", dumps({"message": f"{i}"})))
    assert await store.apply(batch) == set()
    a_events, b_events = await store.events(a["id"], 0), await store.events(b["id"], 0)
    wanted = [
        (b["id"], b_events[1].id),
        (a["id"], 0),
        (quiet["id"], 0),
        (a["id"], a_events[3].id),  # the same task twice, another cursor
        (str(uuid.uuid4()), 0),  # no such task
    ]
    got = await store.events_many(wanted)
    assert got == [b_events[2:], a_events, [], a_events[4:], []]
    limited = await store.events_many([(a["id"], 0), (b["id"], 0)], limit=2)
    assert limited == [a_events[:2], b_events[:2]]
    assert await store.events_many([]) == []


async def test_release_reopens_and_keeps_a_cancel_request(store: Store) -> None:
    r = row(secrets="sealed")
    await store.insert_tasks([r])
    (claim,) = await store.claim("w", 1, None)
    token = claim._mapping["claim_token"]
    assert await store.cancel(r["id"], dumps({})) == "processing"  # cancel requested
    batch = WriteBatch(tokens={r["id"]: token})
    batch.releases.append(r["id"])  # the worker shuts down before it saw the request
    assert await store.apply(batch) == set()
    task = await store.get_task(r["id"])
    assert task is not None and task.status == "open"
    # the request survives, so the next claimer cancels the run (not runs it)
    assert task.cancel_requested is True
    assert await store.raw_secrets(r["id"]) == "sealed"
    (again,) = await store.claim("w2", 1, None)
    assert again._mapping["claim_token"] != token


async def test_retry_keeps_completed_steps(store: Store) -> None:
    r = row()
    await store.insert_tasks([r])
    (claim,) = await store.claim("w", 1, None)
    token = claim._mapping["claim_token"]
    batch = WriteBatch(tokens={r["id"]: token})
    batch.steps[r["id"]] = {
        "a": dumps({"status": "completed", "output": {}}),
        "b": dumps({"status": "failed", "output": {}}),
    }
    batch.finishes.append(Finish(r["id"], token, "failed", "completion", dumps({}), True))
    await store.apply(batch)
    assert await store.retry(r["id"]) == "failed"
    task = await store.get_task(r["id"])
    assert task is not None and task.status == "open"
    assert task.step_state == {"a": {"status": "completed", "output": {}}}
    assert await store.retry(r["id"]) == "open"
    (again,) = await store.claim("w", 1, None)
    assert again._mapping["attempt"] == 2
    assert again._mapping["claim_token"] != token


async def test_cancel_open_processing_final_and_unknown(store: Store) -> None:
    body = dumps({"message": "cancelled"})
    a, b = row(), row()
    await store.insert_tasks([a])
    assert await store.cancel(a["id"], body) == "open"
    task = await store.get_task(a["id"])
    assert task is not None and task.status == "cancelled"
    assert [e.type for e in await store.events(a["id"], 0)] == ["cancelled"]
    assert await store.cancel(a["id"], body) == "cancelled"
    await store.insert_tasks([b])
    await store.claim("w", 1, None)
    assert await store.cancel(b["id"], body) == "processing"
    task = await store.get_task(b["id"])
    assert task is not None and task.status == "processing" and task.cancel_requested
    assert await store.cancel(str(uuid.uuid4()), body) is None


async def test_heartbeat_returns_owned_and_limit(store: Store) -> None:
    await store.worker_register("w", "host", 1, 5)
    rs = [row() for _ in range(3)]
    await store.insert_tasks(rs)
    claimed = await store.claim("w", 3, None)
    ids = [c._mapping["id"] for c in claimed]
    owned, limit = await store.heartbeat("w", ids, None)
    assert set(owned) == set(ids) and limit == 5
    assert all(not cancel for _tok, cancel in owned.values())
    assert await store.worker_set_limit("w", 7)
    assert not await store.worker_set_limit("nobody", 7)
    owned, limit = await store.heartbeat("w", ids[:1], None)
    assert set(owned) == {ids[0]} and limit == 7
    _, limit = await store.heartbeat("w", [], 9)
    assert limit == 9
    (info,) = await store.worker_list()
    assert (info.id, info.limit, info.running, info.pid) == ("w", 9, 0, 1)
    _, limit = await store.heartbeat("ghost", [], None)
    assert limit is None
    await store.worker_delete("w")
    assert await store.worker_list() == []


async def test_recover_stale(store: Store) -> None:
    bodies = {k: dumps({"message": k}) for k in ("recovered", "failed", "cancelled")}
    keep, none, cancel = row(), row(recovery="none"), row()
    over = row(recovery="startOver")
    await store.insert_tasks([keep, none, cancel, over])
    claimed = {c._mapping["id"]: c._mapping["claim_token"] for c in await store.claim("w", 4, None)}
    batch = WriteBatch(tokens=claimed)
    for tid in claimed:
        batch.steps[tid] = {
            "a": dumps({"status": "completed", "output": {}}),
            "b": dumps({"status": "processing"}),
        }
    await store.apply(batch)
    await store.cancel(cancel["id"], bodies["cancelled"])
    assert await store.recover_stale(60.0, bodies) == []
    await asyncio.sleep(1.1)
    outcome = dict(await store.recover_stale(1.0, bodies))
    assert outcome == {
        keep["id"]: "recovered",
        none["id"]: "failed",
        cancel["id"]: "cancelled",
        over["id"]: "recovered",
    }
    statuses = {tid: (await store.get_task(tid)) for tid in outcome}
    assert statuses[keep["id"]].status == "open"  # type: ignore[union-attr]
    assert statuses[keep["id"]].step_state == {  # type: ignore[union-attr]
        "a": {"status": "completed", "output": {}}
    }
    assert statuses[over["id"]].step_state == {}  # type: ignore[union-attr]
    assert statuses[none["id"]].status == "failed"  # type: ignore[union-attr]
    assert statuses[cancel["id"]].status == "cancelled"  # type: ignore[union-attr]
    assert [e.type for e in await store.events(keep["id"], 0)] == ["recovered"]
    assert [e.type for e in await store.events(none["id"], 0)] == ["completion"]
    assert (await store.events(none["id"], 0))[0].is_task_recoverable is False
    again = await store.claim("w2", 10, None)
    assert {c._mapping["id"]: c._mapping["attempt"] for c in again} == {
        keep["id"]: 2,
        over["id"]: 2,
    }


async def test_erase_secrets_after_retention(store: Store) -> None:
    r = row(secrets="ciphertext")
    await store.insert_tasks([r])
    (claim,) = await store.claim("w", 1, None)
    token = claim._mapping["claim_token"]
    batch = WriteBatch(tokens={r["id"]: token})
    batch.finishes.append(Finish(r["id"], token, "failed", "completion", dumps({}), True))
    await store.apply(batch)
    assert await store.raw_secrets(r["id"]) == "ciphertext"
    assert await store.erase_secrets(3600) == 0
    await asyncio.sleep(0.05)
    assert await store.erase_secrets(0.01) == 1
    assert await store.raw_secrets(r["id"]) is None


async def test_list_and_count(store: Store) -> None:
    rs = [row(created_by="a"), row(created_by="b"), row(created_by="a")]
    for r in rs:
        await store.insert_tasks([r])
    await store.claim("w", 1, None)
    tasks, total = await store.list_tasks(
        created_by=None, statuses=None, limit=None, offset=0, order="desc:created_at"
    )
    assert total == 3 and [t.id for t in tasks] == [r["id"] for r in reversed(rs)]
    tasks, total = await store.list_tasks(
        created_by="a", statuses=["open"], limit=1, offset=0, order="asc:created_at"
    )
    assert total == 1 and [t.id for t in tasks] == [rs[2]["id"]]
    assert await store.count_active("a") == 2
    with pytest.raises(InputError):
        await store.list_tasks(
            created_by=None, statuses=None, limit=None, offset=0, order="desc:spec; DROP"
        )
