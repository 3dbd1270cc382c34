"""One database, opened once: every store of cronkeeper on one SQLAlchemy engine, each behind its contract.

This is the only place that knows which implementation backs which contract; the scheduler builds one
:class:`Database` and hands its stores to the engine and the services.  Nothing outside the store package
sees the engine.
"""

from __future__ import annotations

from pathlib import Path

from cronkeeper.store.accounts import SqlAccountStore
from cronkeeper.store.alerts import SqlAlertStore
from cronkeeper.store.audit import SqlAuditLog
from cronkeeper.store.base import (
    AccountStore,
    AlertStore,
    AuditLog,
    DashboardView,
    IdempotencyStore,
    JobStore,
    MaintenanceStore,
    SettingStore,
    StatsView,
    StatusView,
)
from cronkeeper.store.engines import database_url, open_engine
from cronkeeper.store.idempotency import SqlIdempotencyStore
from cronkeeper.store.maintenance import SqlMaintenanceStore
from cronkeeper.store.migrate import current_revision, head_revision, upgrade
from cronkeeper.store.settings import SqlSettingStore
from cronkeeper.store.sql import SqlJobStore
from cronkeeper.store.stats import SqlStatsView
from cronkeeper.store.status import SqlStatusView
from cronkeeper.store.views import SqlDashboardView


class Database:
    """The stores of one database (``sqlite:///path.db``, ``postgresql://…`` or a SQLite file's path), sharing
    one engine.

    With ``migrate`` the schema is brought to this version's first; without it the database is only read as
    it is (a dry run must not create tables).
    """

    @staticmethod
    def exists(url: str | Path) -> bool:
        """False for a SQLite file that is not there (opening it would create it); other databases exist."""
        parsed = database_url(url)
        if parsed.get_backend_name() != "sqlite":
            return True
        return parsed.database is not None and Path(parsed.database).exists()

    def __init__(self, url: str | Path, *, migrate: bool = True) -> None:
        self._url = database_url(url)
        self._engine = open_engine(url)
        if migrate:
            upgrade(self._engine)
        self.jobs: JobStore = SqlJobStore(self._engine)
        self.accounts: AccountStore = SqlAccountStore(self._engine)
        self.settings: SettingStore = SqlSettingStore(self._engine)
        self.idempotency: IdempotencyStore = SqlIdempotencyStore(self._engine)
        self.audit: AuditLog = SqlAuditLog(self._engine)
        self.status: StatusView = SqlStatusView(self._engine)
        self.dashboard: DashboardView = SqlDashboardView(self._engine)
        self.alerts: AlertStore = SqlAlertStore(self._engine)
        self.stats: StatsView = SqlStatsView(self._engine)
        self.maintenance: MaintenanceStore = SqlMaintenanceStore(self._engine, self._url)

    @property
    def display_url(self) -> str:
        """The URL as logs may show it: without its password."""
        return self._url.render_as_string(hide_password=True)

    def upgrade(self) -> tuple[str | None, str]:
        """Create or upgrade the tables to this version's schema; returns the revisions before and after (the
        same when there was nothing to do)."""
        before = current_revision(self._engine)
        upgrade(self._engine)
        return before, head_revision()

    def schema_revision(self) -> str | None:
        """The schema revision the database is at; None for a database without cronkeeper's tables."""
        return current_revision(self._engine)

    def close(self) -> None:
        """Release every connection (they are opened again on next use)."""
        self._engine.dispose()
