"""Heartbeats that write no index entry: ix_tasks_processing replaces
ix_tasks_heartbeat, and on Postgres tasks' pages keep room for new row versions.

A heartbeat changes only ``tasks.heartbeat_at``. While an index had that column
(``ix_tasks_heartbeat``, the janitor's scan), every heartbeat of every running
task wrote a new entry into each of the table's indexes, and a beat of 10,000
running tasks took seconds on a loaded machine. The janitor's scan now reads
the processing tasks (``ix_tasks_processing``, keyed on ``seq``: claims take
tasks in about that order, so a claim appends at the index's end, where a random
id would dirty a page anywhere) and tests their heartbeat: a read of the running
tasks instead of a write into six indexes at every beat. Postgres can then
update the row in place of its page (a heap-only tuple) when the page has room,
which ``fillfactor = 90`` keeps on the pages written from now on. SQLite only
rewrites the indexes that hold a changed column: none, now.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

PROCESSING = "status = 'processing'"


def _processing_index(name: str, column: str) -> None:
    where = sa.text(PROCESSING)
    op.create_index(name, "tasks", [column], postgresql_where=where, sqlite_where=where)


def upgrade() -> None:
    _processing_index("ix_tasks_processing", "seq")
    op.drop_index("ix_tasks_heartbeat", table_name="tasks")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tasks SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tasks RESET (fillfactor)")
    _processing_index("ix_tasks_heartbeat", "heartbeat_at")
    op.drop_index("ix_tasks_processing", table_name="tasks")
