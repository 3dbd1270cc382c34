"""``cronkeeper channels`` and ``cronkeeper notifications``: where alerts go, and what became of them."""

from __future__ import annotations

import click

from cronkeeper.cli.context import CLI_VIA, AppContext, os_user, pass_app
from cronkeeper.cli.output import console, print_json, table, when
from cronkeeper.services.alerts import alert_to_dict
from cronkeeper.store.records import AlertStatus

EXIT_NOT_DELIVERED = 1


@click.group()
def channels() -> None:
    """Manage alert channels: named Apprise URLs (mailtos://, slack://, json://, ntfy://, …)."""


@channels.command("add")
@click.argument("name")
@click.argument("url")
@pass_app
def add_channel(app: AppContext, name: str, url: str) -> None:
    """Add a channel, or replace the URL of the one named NAME.  Shown masked from now on: the URL
    holds credentials."""
    channel = app.scheduler().alerts.add_channel(name, url, origin="cli", by=os_user(), via=CLI_VIA)
    click.echo(f"channel {channel.name}: {channel.url}")


@channels.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_app
def list_channels(app: AppContext, as_json: bool) -> None:
    """Every channel, its URL masked."""
    found = app.scheduler().alerts.list_channels()
    if as_json:
        print_json([channel.to_dict() for channel in found])
        return
    out = table("NAME", "URL", "ORIGIN", "LAST SENT (UTC)")
    for channel in found:
        out.add_row(channel.name, channel.url, channel.origin, when(channel.last_sent_at))
    console.print(out)


@channels.command("remove")
@click.argument("name")
@pass_app
def remove_channel(app: AppContext, name: str) -> None:
    """Remove a channel; alerts still waiting for it fail, saying so."""
    app.scheduler().alerts.remove_channel(name, by=os_user(), via=CLI_VIA)
    click.echo(f"removed channel {name}")


@channels.command("test")
@click.argument("name")
@pass_app
def test_channel(app: AppContext, name: str) -> None:
    """Send a test message now and say whether the service took it (exit status 1 if not)."""
    error = app.scheduler().alerts.test_channel(name, by=os_user(), via=CLI_VIA)
    if error is not None:
        click.echo(f"channel {name}: not delivered: {error}", err=True)
        raise click.exceptions.Exit(EXIT_NOT_DELIVERED)
    click.echo(f"channel {name}: delivered")


@click.group()
def notifications() -> None:
    """Alerts that were sent, are waiting or failed."""


@notifications.command("list")
@click.option("--status", type=click.Choice([status.value for status in AlertStatus]), help="Only these.")
@click.option("--job", "job_id", metavar="JOB_ID", help="Only this job's.")
@click.option("--channel", metavar="NAME", help="Only this channel's.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, with every attempt's error.")
@pass_app
def list_notifications(
    app: AppContext, status: str | None, job_id: str | None, channel: str | None, limit: int, as_json: bool
) -> None:
    """Alerts, newest first: what each was about, where it went, and what became of it."""
    found = app.scheduler().alerts.list_alerts(status=status, job_id=job_id, channel=channel, limit=limit)
    if as_json:
        print_json([alert_to_dict(alert) for alert in found])
        return
    out = table("ID", "CREATED (UTC)", "KIND", "JOB", "RUN", "CHANNEL", "STATUS", "TRIES", "LAST ERROR")
    for alert in found:
        out.add_row(
            str(alert.id),
            when(alert.created_at),
            alert.kind,
            alert.job_id or "-",
            str(alert.run_id or "-"),
            alert.channel,
            alert.status.value,
            str(alert.attempts),
            alert.last_error or "",
        )
    console.print(out)
