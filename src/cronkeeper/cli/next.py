"""``cronkeeper next``: preview a cron expression's next fires in a zone."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.cli.output import print_json
from cronkeeper.cron import CronExpression
from cronkeeper.exceptions import ValidationError
from cronkeeper.specs import parse_zone


@click.command("next")
@click.argument("expression")
@click.option("--tz", "zone_name", help="IANA time zone [default: the configuration's timezone, else UTC].")
@click.option("--after", metavar="ISO", help="Start after this instant [default: now]; naive means in --tz.")
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option("--seconds", is_flag=True, help="The expression has a leading seconds field (6 fields).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def next_command(
    app: AppContext,
    expression: str,
    zone_name: str | None,
    after: str | None,
    count: int,
    seconds: bool,
    as_json: bool,
) -> None:
    """Show the next fire times of EXPRESSION and what it means."""
    zone = parse_zone(zone_name or app.config.timezone or "UTC")
    cron = CronExpression(expression, seconds=seconds, field="expression")
    start = _start(after, zone)
    fires = list(itertools.islice(cron.fires_after(start, zone), count))
    local = [fire.astimezone(zone).isoformat() for fire in fires]
    if as_json:
        print_json(
            {
                "expression": cron.expression,
                "timezone": zone.key,
                "description": cron.describe(),
                "after": start.astimezone(zone).isoformat(),
                "next": local,
            }
        )
        return
    click.echo(f"{cron.expression}: {cron.describe()} ({zone.key})")
    for text in local:
        click.echo(f"  {text}")


def _start(after: str | None, zone: ZoneInfo) -> datetime:
    if after is None:
        return datetime.now(UTC)
    try:
        instant = datetime.fromisoformat(after)
    except ValueError:
        raise ValidationError("after", f"{after!r} is not an ISO-8601 date and time") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=zone)
    return instant
