"""Login attempts in the database, so that the throttle holds for the whole cluster and across restarts.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cronkeeper.store.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ck_login_attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_ck_login_attempts_name_at", "ck_login_attempts", ["name_key", "at"])
    op.create_index("ix_ck_login_attempts_at", "ck_login_attempts", ["at"])


def downgrade() -> None:
    op.drop_table("ck_login_attempts")
