"""task_events without its foreign key to tasks.

On Postgres every event row a flush inserts ran the key's check (a lookup and
a share lock of its task through a trigger, once per row, six rows for a
one-step task): a seventh of a worker's flush statement, whose tasks that very
statement has just locked and checked. Every path that writes events writes
them for tasks it holds locked (the flush, a cancel, the janitor's recovery) or
reads them under a key-share lock (``event_append``), and the one path that
deletes tasks (retention, ``tasks_expire``) deletes their events in the same
statement (Postgres) or transaction (SQLite), so the key guarded nothing the
statements do not. SQLite never enforced it (no ``PRAGMA foreign_keys``); its
table is copied once without it, so both dialects hold the same schema.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
# the name the SQLite copy gives the key it drops (SQLite's keys have none)
_KEY = "fk_task_events_task_id_tasks"


def _sqlite_events(with_key: bool) -> sa.Table:
    """task_events as 0001 made it on SQLite (the copy's source, no reflection)."""
    key = [sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=_KEY, ondelete="CASCADE")]
    return sa.Table(
        "task_events",
        sa.MetaData(),
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Index("ix_task_events_task", "task_id", "id"),
        *(key if with_key else []),
        sqlite_autoincrement=True,
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for fk in sa.inspect(bind).get_foreign_keys("task_events"):
            if fk["referred_table"] == "tasks" and fk["name"]:
                op.drop_constraint(fk["name"], "task_events", type_="foreignkey")
        return
    with op.batch_alter_table(
        "task_events", recreate="always", copy_from=_sqlite_events(with_key=True)
    ) as batch:
        batch.drop_constraint(_KEY, type_="foreignkey")


# Events whose task is gone: none of the engine's paths leaves one, but without the
# key nothing forbids it (a delete by hand, a path to come), and the key cannot
# come back over them. They are dropped, as the key's ON DELETE CASCADE would have.
_ORPHANS = sa.text(
    "DELETE FROM task_events WHERE NOT EXISTS "
    "(SELECT 1 FROM tasks WHERE tasks.id = task_events.task_id)"
)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # no event may lose its task between the delete and the key's check
        op.execute("LOCK TABLE tasks, task_events IN SHARE ROW EXCLUSIVE MODE")
    op.execute(_ORPHANS)
    if bind.dialect.name == "postgresql":
        op.create_foreign_key(
            "task_events_task_id_fkey",
            "task_events",
            "tasks",
            ["task_id"],
            ["id"],
            ondelete="CASCADE",
        )
        return
    with op.batch_alter_table(
        "task_events", recreate="always", copy_from=_sqlite_events(with_key=False)
    ) as batch:
        batch.create_foreign_key(_KEY, "tasks", ["task_id"], ["id"], ondelete="CASCADE")
