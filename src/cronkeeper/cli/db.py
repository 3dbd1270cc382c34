"""``cronkeeper db``: the database itself: schema upgrades, pruning, backups and restores."""

from __future__ import annotations

from pathlib import Path

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.cli.output import print_json
from cronkeeper.services.maintenance import upgrade_database


@click.group()
def db() -> None:
    """Manage the database: schema, history retention, backups."""


@db.command("upgrade")
@pass_app
def upgrade_command(app: AppContext) -> None:
    """Create or upgrade the tables to this version's schema (safe to run again)."""
    before, after = upgrade_database(app.db_url)
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"upgraded database from {before or 'empty'} to {after} (head {after})")


@db.command("prune")
@click.option(
    "--older-than", metavar="DURATION", help="Delete ended runs older than this [default: [maintenance] 90d]."
)
@click.option(
    "--keep", type=int, metavar="N", help="Keep at most N runs per job [default: [maintenance] 10000]."
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def prune_command(
    app: AppContext, older_than: str | None, keep: int | None, dry_run: bool, as_json: bool
) -> None:
    """Delete old history now: ended runs past their retention (never a queued or running run, nor a job's
    latest), old audit events, expired sessions and spent bookkeeping.  In short transactions: safe while
    schedulers run."""
    settings = app.config.maintenance
    report = app.scheduler().maintenance.prune(
        older_than=older_than or settings.keep_runs_for,
        keep=settings.keep_runs_per_job if keep is None else keep,
        audit_older_than=settings.keep_audit_for,
        dry_run=dry_run,
    )
    if as_json:
        print_json({"dry_run": dry_run, "deleted": report.counts()})
        return
    verb = "would delete" if dry_run else "deleted"
    counts = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in report.counts().items())
    click.echo(f"{verb} {counts}")
    if not dry_run and report.runs:
        click.echo("(new runs reuse the freed space: the file keeps its size)")


@db.command("backup")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--keep", type=int, metavar="N", help="Then keep only the newest N backups of that folder.")
@pass_app
def backup_command(app: AppContext, path: Path | None, keep: int | None) -> None:
    """Write a checked copy of the database while schedulers run.  PATH is a new file, or a folder to write
    cronkeeper-YYYYmmddTHHMMSSZ.sqlite3 into [default: backups/ beside the database file].  PostgreSQL:
    pg_dump's custom format (.dump), pg_dump must be installed."""
    maintenance = app.scheduler().maintenance
    if path is None:
        path = maintenance.backup_folder(app.config.maintenance.backup_dir)
    made = maintenance.backup(path, keep=keep)
    click.echo(f"{made.path} ({made.size:,} bytes)")
    for removed in made.removed:
        click.echo(f"removed {removed}")


@db.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def restore_command(app: AppContext, path: Path, yes: bool) -> None:
    """Replace the database with the backup at PATH, checked first.  Refused while a scheduler is running on
    the database: stop it first."""
    scheduler = app.scheduler()
    if not yes:
        click.confirm(f"Replace every job and run of {scheduler.database_url} with {path}?", abort=True)
    scheduler.maintenance.restore(path)
    click.echo(f"restored {scheduler.database_url} from {path}")
