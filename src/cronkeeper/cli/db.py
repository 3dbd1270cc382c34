"""``cronkeeper db``: schema management."""

from __future__ import annotations

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.store.engines import open_engine
from cronkeeper.store.migrate import current_revision, head_revision, upgrade


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@pass_app
def upgrade_command(app: AppContext) -> None:
    """Create or upgrade the tables to this version's schema (safe to run again)."""
    engine = open_engine(app.db_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"upgraded database from {before or 'empty'} to {after} (head {head_revision()})")
