"""Jobs, runs and nodes.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cronkeeper.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ACTIVE_SQL = "status IN ('queued', 'running')"
UNOWNED_SQL = "status = 'queued' AND owner IS NULL"


def upgrade() -> None:
    op.create_table(
        "ck_jobs",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("next_fire_at", UTCDateTime),
        sa.Column("next_run_at", UTCDateTime),
        sa.Column("origin", sa.String(20), nullable=False, server_default="api"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("updated_by", sa.String(200)),
    )
    op.create_index("ix_ck_jobs_next_run_at", "ck_jobs", ["next_run_at"])
    op.create_table(
        "ck_runs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("scheduled_for", UTCDateTime, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parent_run_id", sa.BigInteger),
        sa.Column("trigger_source", sa.String(20), nullable=False),
        sa.Column("triggered_by", sa.String(200)),
        sa.Column("owner", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("queued_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("exit_code", sa.Integer),
        sa.Column("output", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("traceback", sa.Text),
        sa.Column("result", sa.JSON),
        sa.Column("peak_memory_bytes", sa.BigInteger),
        sa.Column("cpu_time", sa.Float),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.UniqueConstraint("job_id", "scheduled_for", "attempt", name="uq_ck_runs_fire"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ck_runs_job_id_id", "ck_runs", ["job_id", "id"])
    op.create_index("ix_ck_runs_status_id", "ck_runs", ["status", "id"])
    op.create_index(
        "ix_ck_runs_active_job",
        "ck_runs",
        ["job_id"],
        sqlite_where=sa.text(ACTIVE_SQL),
        postgresql_where=sa.text(ACTIVE_SQL),
    )
    op.create_index(
        "ix_ck_runs_unowned_due",
        "ck_runs",
        ["due_at"],
        sqlite_where=sa.text(UNOWNED_SQL),
        postgresql_where=sa.text(UNOWNED_SQL),
    )
    op.create_table(
        "ck_nodes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
        sa.Column("stopped_at", UTCDateTime),
    )


def downgrade() -> None:
    op.drop_table("ck_nodes")
    op.drop_table("ck_runs")
    op.drop_table("ck_jobs")
