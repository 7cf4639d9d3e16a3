"""The claim index in queue order again on SQLite: ix_tasks_claim (priority DESC, seq).

0008 added ``tasks.keep`` in Alembic's batch mode, which on SQLite copies the
table and recreates its indexes from reflection; the reflection lost the DESC
of ``priority``. With ``(priority, seq)`` the claim's ``ORDER BY priority DESC,
seq`` can no longer be read off the index: every claim sorted all open tasks in
a temporary B-tree (about 4x the claim's cost at 10,000 open tasks, and growing
with the queue). Postgres altered the table in place and kept its index.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_tasks_claim", table_name="tasks")
    op.create_index(
        "ix_tasks_claim",
        "tasks",
        [sa.text("priority DESC"), "seq"],
        sqlite_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    # the order 0010 had was a defect: nothing to restore
    pass
