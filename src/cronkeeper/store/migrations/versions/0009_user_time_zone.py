"""The zone a user reads times in on the dashboard: an IANA name, ``job`` (each job's own), or NULL (the
browser's).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ck_users", sa.Column("time_zone", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ck_users") as batch:
        batch.drop_column("time_zone")
