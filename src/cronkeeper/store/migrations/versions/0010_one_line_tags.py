"""Tags written as forms and the CLI write them: no comma, line break or surrounding space in a tag.

Tags like these were accepted before, and a job holding one could no longer be edited through the API (its
whole definition is checked again) while the dashboard's form silently rewrote them.  Each is rewritten here
as a form would read it: split at commas, line breaks and other unprintable characters made spaces, trimmed,
empty and repeated ones dropped.  A job whose tags change gets a new version, so that every cache of parsed
definitions reads it again.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_jobs = sa.table(
    "ck_jobs", sa.column("id", sa.String), sa.column("spec", sa.JSON), sa.column("version", sa.Integer)
)


def one_line_tags(tags: list[Any]) -> list[str]:
    kept: list[str] = []
    for tag in tags:
        printable = "".join(ch if ch.isprintable() else " " for ch in str(tag))
        for part in printable.split(","):
            part = part.strip()
            if part and part not in kept:
                kept.append(part)
    return kept


def upgrade() -> None:
    conn = op.get_bind()
    for job_id, spec, version in conn.execute(sa.select(_jobs.c.id, _jobs.c.spec, _jobs.c.version)).all():
        stored = json.loads(spec) if isinstance(spec, str) else spec
        tags = stored.get("tags")
        if not isinstance(tags, list):
            continue
        fixed = one_line_tags(tags)
        if fixed != tags:
            conn.execute(
                sa.update(_jobs)
                .where(_jobs.c.id == job_id)
                .values(spec={**stored, "tags": fixed}, version=version + 1)
            )


def downgrade() -> None:
    """Nothing to undo: the tags kept are valid for every version."""
