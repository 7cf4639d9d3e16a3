"""Idempotent flushes: each worker flush leaves its id, so a retry after an
ambiguous commit (the connection dropped after COMMIT) writes nothing twice.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flushes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("refused", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_flushes_created_at", "flushes", ["created_at"])


def downgrade() -> None:
    op.drop_table("flushes")
