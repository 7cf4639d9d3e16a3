"""Template updates: scaffolds (the repositories made with scaffold recording).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
# 0004 (faults) may come before this one: the lead re-chains them when merging
down_revision = "0008"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scaffolds",
        sa.Column("repository", sa.Text(), primary_key=True),
        sa.Column("template_ref", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_scaffolds_template", "scaffolds", ["template_ref", "repository"])


def downgrade() -> None:
    op.drop_table("scaffolds")
