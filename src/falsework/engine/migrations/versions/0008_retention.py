"""Retention and cluster metrics: tasks.keep, the expiry and finish indexes, leases,
cluster_metrics.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
FINISHED_UNKEPT = "finished_at IS NOT NULL AND NOT keep"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("keep", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index(
        "ix_tasks_expiry",
        "tasks",
        ["status", "finished_at"],
        postgresql_where=sa.text(FINISHED_UNKEPT),
        sqlite_where=sa.text(FINISHED_UNKEPT),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "cluster_metrics",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_event_id", BIGINT, nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("computed_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_metrics")
    op.drop_table("leases")
    op.drop_index("ix_tasks_expiry", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("keep")
