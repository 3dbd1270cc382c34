"""Jobs whose target only one scheduler object holds (a bound method, a lambda) name that object.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ck_jobs", sa.Column("runs_on", sa.String(120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ck_jobs") as batch:
        batch.drop_column("runs_on")
