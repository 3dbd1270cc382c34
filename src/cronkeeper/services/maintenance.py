"""Looking after the database itself: schema upgrades (``cronkeeper db upgrade``)."""

from __future__ import annotations

from cronkeeper.store.database import Database


def upgrade_database(url: str) -> tuple[str | None, str]:
    """Create or upgrade the tables of ``url`` to this version's schema (safe to run again); returns the
    revisions before and after."""
    database = Database(url, migrate=False)
    try:
        return database.upgrade()
    finally:
        database.close()
