"""A job's origin names the declaration it came from, not only its kind: ``config /srv/app/cronkeeper.toml``,
``apscheduler host:pid:id``.  Twenty characters cannot hold that.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ck_jobs") as batch:
        batch.alter_column(
            "origin", type_=sa.String(200), existing_type=sa.String(20), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ck_jobs") as batch:
        batch.alter_column(
            "origin", type_=sa.String(20), existing_type=sa.String(200), existing_nullable=False
        )
