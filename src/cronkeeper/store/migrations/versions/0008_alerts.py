"""Alerts: channels (named Apprise URLs), incidents (streaks of bad outcomes) and the outbox of alerts.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cronkeeper.store.schema import OPEN_INCIDENT_SQL, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "ck_channels",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_sent_at", UTCDateTime()),
    )
    op.create_table(
        "ck_incidents",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("first_run_id", sa.BigInteger),
        sa.Column("last_run_id", sa.BigInteger),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("alerted", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("closed_at", UTCDateTime()),
        sa.Column("closed_by_run_id", sa.BigInteger),
        sa.Column("overdue_for", UTCDateTime()),
    )
    op.create_index(
        "uq_ck_incidents_open",
        "ck_incidents",
        ["job_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_INCIDENT_SQL),
        postgresql_where=sa.text(OPEN_INCIDENT_SQL),
    )
    op.create_index("ix_ck_incidents_job_id_id", "ck_incidents", ["job_id", "id"])
    op.create_table(
        "ck_alerts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(128)),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("incident_id", sa.BigInteger),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("attempt_log", sa.JSON),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_ck_alerts_status_due", "ck_alerts", ["status", "due_at"])
    op.create_index("ix_ck_alerts_run_id", "ck_alerts", ["run_id"])


def downgrade() -> None:
    op.drop_table("ck_alerts")
    op.drop_table("ck_incidents")
    op.drop_table("ck_channels")
