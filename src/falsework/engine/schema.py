"""The tables as the store expects them.

The SQL itself lives in ``engine/sql/*.sql``; this metadata is what the Alembic
migrations must produce (a test compares the migrated database with it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

# jsonb on Postgres (for ``||`` and indexing), JSON text on SQLite.
JSONB = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# A bigint on Postgres; SQLite only auto-increments an INTEGER PRIMARY KEY.
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    # strict FIFO within a priority: created_at ties inside one bulk insert
    sa.Column("seq", BIGINT, sa.Identity(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
    sa.Column("secrets", sa.Text(), nullable=True),
    sa.Column("created_by", sa.Text(), nullable=True),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("run_after", TIMESTAMP, nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("recovery", sa.String(16), nullable=False, server_default="resume"),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claim_token", sa.String(36), nullable=True),
    sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("step_state", JSONB, nullable=False),
    sa.Column("checkpoints", JSONB, nullable=False),
    sa.Column("idempotency_key", sa.Text(), nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("finished_at", TIMESTAMP, nullable=True),
    # the webhooks' outbox: finished_at differs from hooked_at until dispatched
    sa.Column("hooked_at", TIMESTAMP, nullable=True),
    # a record something still needs (a template update's base): retention spares it
    sa.Column("keep", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("seq", name="uq_tasks_seq"),
    sa.UniqueConstraint("idempotency_key", name="uq_tasks_idempotency_key"),
    sa.Index(
        "ix_tasks_claim",
        sa.text("priority DESC"),
        "seq",
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    ),
    # the janitor's scan for stale leases: the running tasks. Not keyed on
    # heartbeat_at: a heartbeat then changes no indexed column and writes no index
    # entry (on Postgres, a heap-only update; migration 0012). Keyed on seq, which
    # claims follow, so a claim appends at the index's end (a random id would not).
    sa.Index(
        "ix_tasks_processing",
        "seq",
        postgresql_where=sa.text("status = 'processing'"),
        sqlite_where=sa.text("status = 'processing'"),
    ),
    sa.Index("ix_tasks_created_by", "created_by", "status"),
    sa.Index(
        "ix_tasks_unhooked",
        "finished_at",
        postgresql_where=sa.text(
            "finished_at IS NOT NULL AND hooked_at IS DISTINCT FROM finished_at"
        ),
        sqlite_where=sa.text("finished_at IS NOT NULL AND hooked_at IS NOT finished_at"),
    ),
    # retention's scan for finished tasks past their age, oldest first
    sa.Index(
        "ix_tasks_expiry",
        "status",
        "finished_at",
        postgresql_where=sa.text("finished_at IS NOT NULL AND NOT keep"),
        sqlite_where=sa.text("finished_at IS NOT NULL AND NOT keep"),
    ),
    # room on each page for a row's next version: heartbeats and step-state
    # writes update in place (heap-only tuples) instead of in every index
    postgresql_with={"fillfactor": 90},
)

task_events = sa.Table(
    "task_events",
    metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    # no foreign key (migration 0013): every writer holds its task locked, and
    # retention deletes a task's events with it
    sa.Column("task_id", sa.String(36), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("body", sa.JSON(), nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Index("ix_task_events_task", "task_id", "id"),
    sqlite_autoincrement=True,
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("host", sa.Text(), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("concurrency_limit", sa.Integer(), nullable=False),
    sa.Column("running", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("started_at", TIMESTAMP, nullable=False),
    sa.Column("heartbeat_at", TIMESTAMP, nullable=False),
)

# who did what (engine/audit.py); read newest first, by actor or action
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.Text(), nullable=True),
    sa.Column("detail", sa.JSON(), nullable=False),
    sa.Index("ix_audit_events_at", "at"),
    sa.Index("ix_audit_events_actor", "actor", "id"),
    sa.Index("ix_audit_events_action", "action", "id"),
    sqlite_autoincrement=True,
)

# switches every node obeys (engine/cluster.py): a row present is a switch on
cluster_flags = sa.Table(
    "cluster_flags",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("detail", sa.JSON(), nullable=False),
    sa.Column("set_by", sa.Text(), nullable=True),
    sa.Column("set_at", TIMESTAMP, nullable=False),
)

# one node at a time: a named turn (retention, cluster metrics) held until expires_at
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
)

# the cluster metrics computed by one node (engine/cluster.py), read by every node
cluster_metrics = sa.Table(
    "cluster_metrics",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_event_id", BIGINT, nullable=False),
    sa.Column("body", sa.JSON(), nullable=False),
    sa.Column("computed_at", TIMESTAMP, nullable=False),
)

# the repositories made with scaffold recording (template updates, docs/updates.md):
# one row per repository and branch, what its last create or update task saw
scaffolds = sa.Table(
    "scaffolds",
    metadata,
    sa.Column("repository", sa.Text(), primary_key=True),
    sa.Column("template_ref", sa.Text(), nullable=False),
    sa.Column("version", sa.Text(), nullable=False),
    sa.Column("record", sa.JSON(), nullable=False),
    sa.Column("task_id", sa.Text(), nullable=True),
    sa.Column("created_by", sa.Text(), nullable=True),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.Index("ix_scaffolds_template", "template_ref", "repository"),
)

# the ids of worker flushes written lately (a retried flush is a no-op), with the
# task ids that flush refused; pruned by the janitor
flushes = sa.Table(
    "flushes",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("refused", sa.Text(), nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Index("ix_flushes_created_at", "created_at"),
)
