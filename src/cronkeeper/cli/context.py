"""What every subcommand shares: where the database is, the configuration file, and a scheduler to act on."""

from __future__ import annotations

import getpass
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click

from cronkeeper.config import Config, bare_config, load_config
from cronkeeper.durations import parse_instant_or_ago
from cronkeeper.exceptions import ValidationError
from cronkeeper.scheduler import DEFAULT_DB, Scheduler, database_exists
from cronkeeper.services.accounts import AccountService, Actor
from cronkeeper.services.jobs import JobService

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

    @property
    def config(self) -> Config:
        if self._config is None:
            path = self.config_option or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
            self._config = load_config(path) if path is not None else bare_config(os.environ)
        return self._config

    @property
    def db_url(self) -> str:
        """``--db`` or ``CRONKEEPER_DB``, else the file's ``db``, else ``cronkeeper.db`` here."""
        return self.db_option or self.config.db or DEFAULT_DB

    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            self._scheduler = self._open(self.db_url, migrate=True)
        return self._scheduler

    def planning_service(self, *, dry_run: bool) -> JobService:
        """The job service an importer plans with.  For a dry run it writes nothing: the database is opened
        without migrating it, and one that does not exist yet or has no schema is read as empty (a throwaway
        database in a temporary folder stands in for it), so every job would be added."""
        if not dry_run:
            return self.scheduler().service
        context = click.get_current_context()
        if database_exists(self.db_url):
            scheduler = self._open(self.db_url, migrate=False)
            if scheduler.schema_revision() is not None:
                return scheduler.service
        scratch = Path(context.with_resource(tempfile.TemporaryDirectory(prefix="cronkeeper-plan-")))
        return self._open(scratch / "plan.db", migrate=True).service

    def _open(self, url: str | Path, *, migrate: bool) -> Scheduler:
        """Another scheduler on ``url``, closed when the command ends."""
        scheduler = self.unmanaged_scheduler(url, migrate=migrate)
        click.get_current_context().call_on_close(scheduler.close)
        return scheduler

    def unmanaged_scheduler(self, url: str | Path | None = None, *, migrate: bool = True) -> Scheduler:
        """A scheduler on ``url`` (the database by default) that the caller closes: for a thread of its own,
        outside the command's context (``exec`` records beside the command it runs)."""
        config = self.config
        scheduler = Scheduler(
            self.db_url if url is None else url,
            timezone=config.timezone or "UTC",
            settings=config.settings,
            delivery=config.notify.delivery,
            migrate=migrate,
        )
        return scheduler

    def accounts(self) -> AccountService:
        """Users and tokens on the scheduler's database, audited in the same log as job changes."""
        return self.scheduler().accounts


pass_app = click.make_pass_decorator(AppContext)


def instant_option(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """An instant on the command line: ISO-8601, read in UTC without an offset (the CLI prints UTC), or a
    duration such as ``24h`` or ``7d`` meaning that long before now.  A click callback, so that bad input is
    a usage error (exit status 2) naming the option."""
    if value is None:
        return None
    try:
        return parse_instant_or_ago(value, param.name or "instant", now=datetime.now(UTC), naive_zone=UTC)
    except ValidationError as exc:
        raise click.BadParameter(exc.reason, ctx, param) from None
