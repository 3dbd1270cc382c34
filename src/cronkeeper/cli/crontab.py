"""``cronkeeper import-crontab``: move a crontab's lines into cronkeeper as command jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

import click
from rich.markup import escape

from cronkeeper.cli.context import CLI_SOURCE, AppContext, os_user, pass_app
from cronkeeper.cli.output import console, print_json, table
from cronkeeper.crontab import Skipped, parse_crontab
from cronkeeper.exceptions import ValidationError
from cronkeeper.service import JobService

ORIGIN = "crontab"


@dataclass(frozen=True, slots=True)
class Planned:
    """One translated line and what importing it does: ``add``, ``update`` or ``unchanged``."""

    line: int
    action: str
    job: dict[str, Any]


@click.command("import-crontab")
@click.argument("source", type=click.File("r", encoding="utf-8"), metavar="FILE|-")
@click.option("--system", is_flag=True, help="The file has a user column (/etc/crontab, /etc/cron.d/*).")
@click.option("--dry-run", is_flag=True, help="Show what would change and write nothing.")
@click.option(
    "--paused", is_flag=True, help="Add new jobs paused (resume them once cron no longer runs them)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan or result as JSON.")
@pass_app
def import_crontab(
    app: AppContext, source: IO[str], system: bool, dry_run: bool, paused: bool, as_json: bool
) -> None:
    """Turn each line of a crontab into a command job (`crontab -l | cronkeeper import-crontab -`).

    Lines that cannot be translated are listed with the reason. Importing again changes nothing: a job's id
    comes from its schedule, zone, command and environment.
    """
    parsed = parse_crontab(source.read(), system=system)
    service = app.scheduler().service
    plan, skipped = _plan(service, parsed.jobs, parsed.skipped)
    if not dry_run:
        _apply(service, plan, paused=paused)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "jobs": [{"line": item.line, "action": item.action, "id": item.job["id"]} for item in plan],
                "skipped": [{"line": s.line, "text": s.text, "reason": s.reason} for s in skipped],
            }
        )
        return
    _report(plan, skipped, dry_run=dry_run)


def _plan(
    service: JobService, jobs: list[tuple[int, dict[str, Any]]], skipped: list[Skipped]
) -> tuple[list[Planned], list[Skipped]]:
    """Validate every job before anything is written; a job the spec layer refuses is a skipped line."""
    plan: list[Planned] = []
    refused = list(skipped)
    for line, job in jobs:
        try:
            spec = service.build(job)
        except ValidationError as exc:
            refused.append(
                Skipped(line, job["cron"] + " " + job["command"][-1], f"{exc.field}: {exc.reason}")
            )
            continue
        existing = service.store.find_job(job["id"])
        action = "add" if existing is None else "unchanged" if existing.spec == spec else "update"
        plan.append(Planned(line, action, job))
    return plan, sorted(refused, key=lambda item: item.line)


def _apply(service: JobService, plan: list[Planned], *, paused: bool) -> None:
    by = os_user()
    for item in plan:
        if item.action == "add":
            service.add_job(item.job, by=by, origin=ORIGIN, paused=paused, source=CLI_SOURCE)
        elif item.action == "update":
            service.upsert_job(item.job, by=by, origin=ORIGIN)


def _report(plan: list[Planned], skipped: list[Skipped], *, dry_run: bool) -> None:
    if plan:
        out = table("LINE", "ACTION", "ID", "SCHEDULE", "COMMAND")
        for item in plan:
            schedule = item.job["cron"] + (f" ({item.job['timezone']})" if "timezone" in item.job else "")
            out.add_row(
                str(item.line), item.action, item.job["id"], schedule, escape(item.job["command"][-1])
            )
        console.print(out)
    for line in skipped:
        click.echo(f"line {line.line}: not imported: {line.reason}\n  {line.text.strip()}", err=True)
    counts = {
        action: sum(item.action == action for item in plan) for action in ("add", "update", "unchanged")
    }
    verb = "would add" if dry_run else "added"
    click.echo(
        f"{verb} {counts['add']}, {'would update' if dry_run else 'updated'} {counts['update']}, "
        f"unchanged {counts['unchanged']}, not imported {len(skipped)}",
        err=True,
    )
