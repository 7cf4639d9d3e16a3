"""The named queries: both dialects define the same names (but for the few each
needs alone, listed here with why), and each store only runs names its file has."""

from __future__ import annotations

import re
from pathlib import Path

from falsework.engine import queries
from falsework.engine.models import ListOrder

ENGINE = Path(queries.__file__).parent

# Postgres alone: NOTIFY, advisory locks (SQLite has one writer at a time), an
# uncapped insert apart from the capped one (its generic plan), a
# whole batch or heartbeat in one statement and a retention batch's tasks in one
# (SQLite has no data-modifying CTEs).
POSTGRES_ONLY = {
    "task_notify",
    "claim_lock",
    "creators_lock",
    "tasks_insert_uncapped",
    "batch_write",
    "heartbeat",
    "tasks_expire",
}
# SQLite alone: the read-merge-write of step state (no top-level JSON merge), the
# heartbeat's two statements in one transaction (no network to wait on), a
# retention batch's tasks in two statements, the incremental vacuum (Postgres's
# autovacuum needs no help), and a flush's read of its tasks, its id's insert and
# its refused-only record, statements of one transaction (Postgres does a whole
# flush in batch_write, one statement).
SQLITE_ONLY = {
    "tasks_read_state",
    "tasks_write_state",
    "task_heartbeat",
    "worker_heartbeat",
    "tasks_select_expired",
    "tasks_delete",
    "space_free_pages",
    "space_auto_vacuum",
    "space_vacuum_step",
    "flush_insert",
    "tasks_lock_owned",
    "flush_refused",
}


def test_the_dialects_define_the_same_queries() -> None:
    pg, lite = set(queries.load("postgres")), set(queries.load("sqlite"))
    assert pg - lite == POSTGRES_ONLY
    assert lite - pg == SQLITE_ONLY


def test_each_store_runs_only_queries_its_file_defines() -> None:
    for dialect in ("postgres", "sqlite"):
        source = (ENGINE / f"{dialect}.py").read_text()
        used = set(re.findall(r'fetch\(\s*"(\w+)"|read\(\s*"(\w+)"|write\(\s*"(\w+)"', source))
        names = {n for group in used for n in group if n}
        defined = set(queries.load(dialect))
        assert names and names <= defined, names - defined
        listed = {order.query for order in ListOrder}
        assert listed <= defined


def test_task_list_orders_are_fixed_clauses() -> None:
    loaded = queries.load("postgres")
    assert "task_list" not in loaded and "__ORDER__" not in "".join(loaded.values())
    assert "ORDER BY heartbeat_at DESC, seq" in loaded[ListOrder.LAST_HEARTBEAT_AT_DESC.query]
