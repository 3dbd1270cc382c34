"""``cronkeeper import-apscheduler``: move the jobs of an APScheduler 3 SQLAlchemy job store into cronkeeper.

Shaped like ``import-crontab``: read and translate everything (:mod:`cronkeeper.importers.apscheduler`),
validate every job with :meth:`JobService.build` and plan add / update / unchanged, write only then (unless
``--dry-run``), and list the jobs that could not be imported with the reason.  Ids are kept, so importing
again finds the jobs of the first import and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from rich.markup import escape

from cronkeeper.cli.context import CLI_VIA, AppContext, os_user, pass_app
from cronkeeper.cli.output import console, import_summary, print_json, table
from cronkeeper.exceptions import ValidationError
from cronkeeper.importers.apscheduler import (
    DEFAULT_TABLE,
    Definition,
    NotImportable,
    read_apscheduler_jobs,
    to_definitions,
)
from cronkeeper.models import Job, JobSpec
from cronkeeper.serialize import schedule_text
from cronkeeper.services.jobs import JobService
from cronkeeper.triggers import CronTrigger, DateTrigger

ORIGIN = "apscheduler"


@dataclass(frozen=True, slots=True)
class Planned:
    """One translated job, what importing it does (``add``, ``update`` or ``unchanged``) and whether a new
    job is added paused."""

    definition: Definition
    action: str
    spec: JobSpec
    paused: bool


@click.command("import-apscheduler")
@click.argument("url", metavar="URL")
@click.option(
    "--table",
    "table_name",
    default=DEFAULT_TABLE,
    show_default=True,
    metavar="NAME",
    help="The job store's table (SQLAlchemyJobStore's tablename).",
)
@click.option("--schema", metavar="NAME", help="The table's schema (SQLAlchemyJobStore's tableschema).")
@click.option("--dry-run", is_flag=True, help="Show what would change and write nothing.")
@click.option(
    "--paused",
    is_flag=True,
    help="Add new jobs paused (resume them once APScheduler no longer runs them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan or result as JSON.")
@pass_app
def import_apscheduler(
    app: AppContext,
    url: str,
    table_name: str,
    schema: str | None,
    dry_run: bool,
    paused: bool,
    as_json: bool,
) -> None:
    """Import the jobs of APScheduler 3's SQLAlchemyJobStore at URL (the url you gave it, e.g.
    sqlite:///jobs.sqlite or postgresql://user@host/db) as Python-function jobs.

    Reading the table UNPICKLES it, which can run any code: only import from a database you trust, your
    own. It needs APScheduler 3 installed (pip install "apscheduler<4").

    Ids, functions (module:function), JSON arguments, cron/interval/date triggers and coalesce,
    max_instances and misfire_grace_time are kept; jobs paused in APScheduler stay paused. Jobs that cannot
    be imported (arguments that are not JSON, combining triggers, ...) are listed with the reason. Importing
    again changes nothing.

    The jobs' functions must be importable by the process that runs them: run `cronkeeper serve` from your
    project's directory (it is put on sys.path) or install your project in its environment.
    """
    foreign = read_apscheduler_jobs(url, table=table_name, schema=schema)  # first: a bad URL writes nothing
    service = app.planning_service(dry_run=dry_run)  # a dry run neither creates nor migrates the database
    conversion = to_definitions(foreign, service.default_timezone, now=service.clock.now())
    plan, refused = _plan(service, conversion.definitions, conversion.refused, paused=paused)
    if not dry_run:
        _apply(service, plan)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "jobs": [_json_item(item) for item in plan],
                "skipped": [{"apscheduler_id": job.source_id, "reason": job.reason} for job in refused],
            }
        )
        return
    _report(plan, refused, dry_run=dry_run)


def _plan(
    service: JobService,
    definitions: list[Definition],
    refused: list[NotImportable],
    *,
    paused: bool,
) -> tuple[list[Planned], list[NotImportable]]:
    """Validate every job before anything is written; a job the spec layer refuses is not imported."""
    plan: list[Planned] = []
    skipped = list(refused)
    now = service.clock.now()
    for definition in definitions:
        try:
            spec = service.build(definition.job)
            existing = service.find_job(spec.id)
            _check_date(spec, existing, now)
        except ValidationError as exc:
            skipped.append(NotImportable(definition.source_id, f"{exc.field}: {exc.reason}"))
            continue
        unchanged = existing is not None and existing.spec == spec and existing.enabled
        action = "add" if existing is None else "unchanged" if unchanged else "update"
        pause = existing is None and (paused or definition.paused)
        plan.append(Planned(definition, action, spec, pause))
    return plan, sorted(skipped, key=lambda job: job.source_id)


def _check_date(spec: JobSpec, existing: Job | None, now: datetime) -> None:
    """Refuse, before anything is written, a new one-off whose run date is past its misfire grace (the
    service would refuse it only while writing; added paused, it could never run).  APScheduler would drop
    it as missed too.  A stored job with that very trigger is left alone: it is simply unchanged."""
    if not isinstance(spec.trigger, DateTrigger):
        return
    if existing is not None and existing.spec.trigger == spec.trigger:
        return
    if spec.trigger.at < now - spec.misfire_grace:
        raise ValidationError("run_date", f"{spec.trigger.at.isoformat()} is in the past")


def _apply(service: JobService, plan: list[Planned]) -> None:
    by = os_user()
    for item in plan:
        job = item.definition.job
        if item.action == "add":
            service.add_job(job, by=by, origin=ORIGIN, paused=item.paused, via=CLI_VIA)
        elif item.action == "update":
            service.upsert_job(job, by=by, origin=ORIGIN, via=CLI_VIA)


def _json_item(item: Planned) -> dict[str, Any]:
    return {
        "apscheduler_id": item.definition.source_id,
        "id": item.spec.id,
        "action": item.action,
        "paused": item.paused,
        "notes": list(item.definition.notes),
    }


def _report(plan: list[Planned], skipped: list[NotImportable], *, dry_run: bool) -> None:
    if plan:
        out = table("APSCHEDULER ID", "ACTION", "ID", "SCHEDULE", "CALL")
        for item in plan:
            action = item.action + (" (paused)" if item.paused else "")
            trigger = item.spec.trigger
            schedule = schedule_text(trigger)
            if isinstance(trigger, CronTrigger):
                schedule += f" ({trigger.timezone.key})"
            out.add_row(
                escape(item.definition.source_id),
                action,
                item.spec.id,
                escape(schedule),
                escape(item.definition.job["call"]),
            )
        console.print(out)
    for item in plan:
        for note in item.definition.notes:
            click.echo(f"job {item.definition.source_id}: {note}", err=True)
    for job in skipped:
        click.echo(f"job {job.source_id}: not imported: {job.reason}", err=True)
    import_summary((item.action for item in plan), len(skipped), dry_run=dry_run)
