"""Indexes for history filtered by job and status together, and by trigger source.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ck_runs_job_status_id", "ck_runs", ["job_id", "status", "id"])
    op.create_index("ix_ck_runs_source_id", "ck_runs", ["trigger_source", "id"])


def downgrade() -> None:
    op.drop_index("ix_ck_runs_source_id", "ck_runs")
    op.drop_index("ix_ck_runs_job_status_id", "ck_runs")
