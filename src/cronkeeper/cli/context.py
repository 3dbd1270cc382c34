"""What every subcommand shares: where the database is, the configuration file, and a scheduler to act on."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from cronkeeper.clock import SystemClock
from cronkeeper.config import Config, load_config
from cronkeeper.scheduler import DEFAULT_DB, Scheduler
from cronkeeper.services.accounts import AccountService, Actor
from cronkeeper.services.jobs import JobService
from cronkeeper.store.access import SqlAccessStore
from cronkeeper.store.migrate import current_revision, upgrade
from cronkeeper.store.sql import SqlJobStore

DEFAULT_CONFIG = Path("cronkeeper.toml")
# Where a change came from, in the audit log (the web app records the client's address instead).
CLI_VIA = "cli"


def os_user() -> str:
    """Who runs the command, as the OS knows them: the CLI has no login of its own, so the audit log and a
    job's ``created_by`` name the account that typed the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def cli_actor() -> Actor:
    return Actor(os_user(), CLI_VIA)


@dataclass(slots=True)
class AppContext:
    """Resolved global options; the scheduler is opened on first use and closed when the command ends."""

    db_option: str | None
    config_option: Path | None
    _config: Config | None = None
    _scheduler: Scheduler | None = field(default=None, repr=False)
    _accounts: AccountService | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            path = self.config_option or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
            self._config = load_config(path) if path is not None else Config()
        return self._config

    @property
    def db_url(self) -> str:
        """``--db`` or ``CRONKEEPER_DB``, else the file's ``db``, else ``cronkeeper.db`` here."""
        return self.db_option or self.config.db or DEFAULT_DB

    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            config = self.config
            self._scheduler = Scheduler(
                self.db_url, timezone=config.timezone or "UTC", settings=config.settings
            )
            click.get_current_context().call_on_close(self._scheduler.close)
        return self._scheduler

    def planning_service(self, *, dry_run: bool) -> JobService:
        """The job service an importer plans with.  For a dry run it writes nothing: the database is opened
        without migrating it, and one that does not exist yet or has no schema is read as empty (a throwaway
        in-memory database stands in for it), so every job would be added."""
        if not dry_run:
            return self.scheduler().service
        timezone = self.config.timezone or "UTC"
        if self._database_exists():
            scheduler = Scheduler(
                self.db_url, timezone=timezone, settings=self.config.settings, migrate=False
            )
            click.get_current_context().call_on_close(scheduler.close)
            if current_revision(scheduler.store.engine) is not None:
                return scheduler.service
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        click.get_current_context().call_on_close(engine.dispose)
        upgrade(engine)
        return JobService(SqlJobStore(engine), SystemClock(), default_timezone=timezone)

    def _database_exists(self) -> bool:
        """False for a SQLite file that is not there (opening it would create it); other databases exist."""
        url = make_url(self.db_url)
        if url.get_backend_name() != "sqlite":
            return True
        return url.database is not None and Path(url.database).exists()

    def accounts(self) -> AccountService:
        """Users and tokens on the scheduler's database, audited in the same log as job changes."""
        if self._accounts is None:
            scheduler = self.scheduler()
            self._accounts = AccountService(
                SqlAccessStore(scheduler.store.engine), scheduler.audit, scheduler.clock
            )
        return self._accounts


pass_app = click.make_pass_decorator(AppContext)
