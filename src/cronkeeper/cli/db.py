"""``cronkeeper db``: schema management."""

from __future__ import annotations

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.services.maintenance import upgrade_database


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@pass_app
def upgrade_command(app: AppContext) -> None:
    """Create or upgrade the tables to this version's schema (safe to run again)."""
    before, after = upgrade_database(app.db_url)
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"upgraded database from {before or 'empty'} to {after} (head {after})")
