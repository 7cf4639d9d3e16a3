"""Completion webhooks and the cluster switches: tasks.hooked_at, cluster_flags.

``tasks.hooked_at`` is the outbox of finished tasks: a task whose ``finished_at``
differs from its ``hooked_at`` has finished (again, after a retry) and its
webhooks are not dispatched yet. Tasks finished before this revision count as
dispatched. ``cluster_flags`` holds the switches every node obeys (``paused``:
no worker claims).

Revision ID: 0007
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("tasks", sa.Column("hooked_at", TIMESTAMP, nullable=True))
    op.execute("UPDATE tasks SET hooked_at = finished_at WHERE finished_at IS NOT NULL")
    op.create_index(
        "ix_tasks_unhooked",
        "tasks",
        ["finished_at"],
        postgresql_where=sa.text(
            "finished_at IS NOT NULL AND hooked_at IS DISTINCT FROM finished_at"
        ),
        sqlite_where=sa.text("finished_at IS NOT NULL AND hooked_at IS NOT finished_at"),
    )
    op.create_table(
        "cluster_flags",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=True),
        sa.Column("set_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_flags")
    op.drop_index("ix_tasks_unhooked", table_name="tasks")
    op.drop_column("tasks", "hooked_at")
