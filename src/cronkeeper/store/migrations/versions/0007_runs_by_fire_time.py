"""An index on the instant runs are for, so that history and figures over a window of every job read only
that window.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ck_runs_scheduled_for", "ck_runs", ["scheduled_for"])


def downgrade() -> None:
    op.drop_index("ix_ck_runs_scheduled_for", "ck_runs")
