"""``cronkeeper import-crontab``: move a crontab's lines into cronkeeper as command jobs.

The import owns a job's schedule, zone, command, environment, working directory, name, description and tags
(and who is told of it, where the crontab has ``MAILTO``): importing again compares and writes only those, so
the options set in cronkeeper afterwards (timeout, retries, overlap, ...) stay as they are.  ``MAILTO``'s
addresses become e-mail channels sent through the ``SMTP_*`` settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import click
from rich.markup import escape

from cronkeeper.cli.context import CLI_VIA, AppContext, os_user, pass_app
from cronkeeper.cli.output import console, import_summary, print_json, table
from cronkeeper.config import email_url
from cronkeeper.exceptions import ValidationError
from cronkeeper.importers.crontab import Skipped, parse_crontab
from cronkeeper.models import Job
from cronkeeper.services.jobs import JobService
from cronkeeper.specs import spec_to_dict

ORIGIN = "crontab"
# The options a crontab line gives its job; every other option is the user's, set in cronkeeper.
OWNED = ("cron", "timezone", "command", "env", "cwd", "name", "description", "tags")
# Owned too when the crontab has MAILTO (otherwise a channel chosen in cronkeeper stays).
MAIL_OWNED = ("notify", "notify_on")
# Options that cannot be given with a cron command job (another schedule or target kind).
_OTHER_KINDS = frozenset({"id", "every", "at", "call", "args", "kwargs", "isolate"})
_LOCALTIME = Path("/etc/localtime")
_TIMEZONE_FILE = Path("/etc/timezone")


@dataclass(frozen=True, slots=True)
class Planned:
    """One translated line and what importing it does: ``add``, ``update`` or ``unchanged``."""

    line: int
    action: str
    job: dict[str, Any]
    existing: Job | None = None


@click.command("import-crontab")
@click.argument("source", type=click.File("r", encoding="utf-8"), metavar="FILE|-")
@click.option("--system", is_flag=True, help="The file has a user column (/etc/crontab, /etc/cron.d/*).")
@click.option(
    "--timezone",
    metavar="ZONE",
    help="The zone of the lines without CRON_TZ (cron runs them in the host's local time) [default: the "
    "host's zone].",
)
@click.option("--dry-run", is_flag=True, help="Show what would change and write nothing.")
@click.option(
    "--paused", is_flag=True, help="Add new jobs paused (resume them once cron no longer runs them)."
)
@click.option(
    "--prune", is_flag=True, help="Disable the jobs imported from a crontab that this one no longer has."
)
@click.option(
    "--mail-output",
    is_flag=True,
    help="MAILTO mails every run that wrote output, as cron did [default: failures and recoveries].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan or result as JSON.")
@pass_app
def import_crontab(
    app: AppContext,
    source: IO[str],
    system: bool,
    timezone: str | None,
    dry_run: bool,
    paused: bool,
    prune: bool,
    mail_output: bool,
    as_json: bool,
) -> None:
    """Turn each line of a crontab into a command job (`crontab -l | cronkeeper import-crontab -`).

    Lines that cannot be translated are listed with the reason. Importing again changes nothing: a job's id
    comes from its schedule, zone and command, and only what the crontab gives a job is compared and
    written, so options set in cronkeeper since (timeout, retries...) are kept.
    """
    zone = timezone if timezone is not None else _host_timezone()
    parsed = parse_crontab(source.read(), system=system, timezone=zone, mail_output=mail_output)
    channels = _mail_channels(parsed.mail_channels)
    service = app.planning_service(dry_run=dry_run)
    plan, skipped = _plan(service, parsed.jobs, parsed.skipped)
    stale = _stale(service, plan)
    if not dry_run:
        _add_channels(app, channels)
        _apply(service, plan, paused=paused)
        if prune:
            _disable(app, stale)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "jobs": [_json_item(item) for item in plan],
                "skipped": [{"line": s.line, "text": s.text, "reason": s.reason} for s in skipped],
                "notes": [{"line": n.line, "text": n.text, "reason": n.reason} for n in parsed.notes],
                "stale": [job.id for job in stale],
                "pruned": prune,
                "channels": [
                    {"name": c.name, "addresses": c.addresses, "sent": c.url is not None} for c in channels
                ],
            }
        )
        return
    _report_channels(channels, dry_run=dry_run)
    _report(plan, skipped, parsed.notes, dry_run=dry_run)
    _report_stale(stale, prune=prune, dry_run=dry_run)


@dataclass(frozen=True, slots=True)
class MailChannel:
    """A MAILTO's channel; ``url`` None when no ``SMTP_HOST`` says how to send e-mail."""

    name: str
    addresses: str
    url: str | None


def _mail_channels(found: dict[str, str]) -> list[MailChannel]:
    """The MAILTO channels, sent through the SMTP_* settings (checked before anything is written)."""
    channels = []
    for name, addresses in found.items():
        try:
            url = email_url({**os.environ, "SMTP_TO": addresses})
        except ValidationError as exc:
            raise ValidationError(exc.field, f"{exc.reason} (to send MAILTO's e-mail)") from None
        channels.append(MailChannel(name, addresses, url))
    return channels


def _add_channels(app: AppContext, channels: list[MailChannel]) -> None:
    alerts = app.scheduler().alerts
    for channel in channels:
        if channel.url is not None:
            alerts.add_channel(channel.name, channel.url, origin=ORIGIN, by=os_user(), via=CLI_VIA)


def _report_channels(channels: list[MailChannel], *, dry_run: bool) -> None:
    for channel in channels:
        if channel.url is None:
            click.echo(
                f"MAILTO={channel.addresses}: set SMTP_HOST, SMTP_FROM (and SMTP_USER, SMTP_PASSWORD…) and "
                f"import again to send its e-mail; until then its jobs' alerts fail (channel {channel.name})",
                err=True,
            )
        else:
            verb = "would add" if dry_run else "added"
            click.echo(f"MAILTO={channel.addresses}: {verb} the e-mail channel {channel.name}", err=True)


def _host_timezone() -> str:
    """The IANA name of the host's local zone (what cron runs lines without CRON_TZ in), else UTC, said."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    if _LOCALTIME.is_symlink():
        target = str(_LOCALTIME.resolve())
        candidates.append(target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else "")
    if _TIMEZONE_FILE.is_file():
        candidates.append(_TIMEZONE_FILE.read_text(encoding="utf-8", errors="replace").strip())
    for name in candidates:
        if name and _is_zone(name):
            return name
    click.echo(
        "warning: cannot tell the host's time zone; lines without CRON_TZ are imported in UTC "
        "(give the zone cron ran them in with --timezone)",
        err=True,
    )
    return "UTC"


def _is_zone(name: str) -> bool:
    if name.startswith("/") or name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _plan(
    service: JobService, jobs: list[tuple[int, dict[str, Any]]], skipped: list[Skipped]
) -> tuple[list[Planned], list[Skipped]]:
    """Validate every job before anything is written; a job the spec layer refuses is a skipped line."""
    plan: list[Planned] = []
    refused = list(skipped)
    for line, job in jobs:
        try:
            mail = "notify" in job
            owned = _owned(spec_to_dict(service.build(job)), mail=mail)
        except ValidationError as exc:
            refused.append(
                Skipped(line, job["cron"] + " " + job["command"][-1], f"{exc.field}: {exc.reason}")
            )
            continue
        existing = service.find_job(job["id"])
        if existing is None:
            action = "add"
        elif owned == _owned(spec_to_dict(existing.spec), mail=mail) and existing.enabled:
            action = "unchanged"
        else:
            action = "update"
        plan.append(Planned(line, action, job, existing))
    return plan, sorted(refused, key=lambda item: item.line)


def _owned(data: dict[str, Any], *, mail: bool) -> dict[str, Any]:
    """The options the import owns, empty ones left out (no description is the same as an empty one); an
    empty ``notify`` is kept: it means "tell nobody" (``MAILTO=""``)."""
    keys = (*OWNED, *MAIL_OWNED) if mail else OWNED
    return {
        key: data[key]
        for key in keys
        if data.get(key) is not None and (key in MAIL_OWNED or data[key] not in ("", [], {}))
    }


def _stale(service: JobService, plan: list[Planned]) -> list[Job]:
    """Enabled jobs imported from a crontab that this import does not produce."""
    produced = {item.job["id"] for item in plan}
    return [
        job
        for job in service.list_jobs(include_disabled=False)
        if job.origin == ORIGIN and job.id not in produced
    ]


def _apply(service: JobService, plan: list[Planned], *, paused: bool) -> None:
    by = os_user()
    for item in plan:
        if item.action == "add":
            service.add_job(item.job, by=by, origin=ORIGIN, paused=paused, via=CLI_VIA)
        elif item.action == "update" and item.existing is not None:
            _update(service, item.existing, item.job, by=by)


def _update(service: JobService, existing: Job, job: dict[str, Any], *, by: str) -> None:
    """Write the owned options only.  A new schedule or command makes ``edit_job`` drop the options that go
    with it (start, end, shell...), so the user's values of those are given back with the change."""
    current = spec_to_dict(existing.spec)
    kept = {key: value for key, value in current.items() if key not in _OTHER_KINDS and key not in OWNED}
    owned = (*OWNED, *MAIL_OWNED) if "notify" in job else OWNED
    kept = {key: value for key, value in kept.items() if key not in owned}
    changes = {**kept, **{key: job.get(key) for key in owned}}
    if existing.enabled:
        service.edit_job(existing.id, changes, by=by, via=CLI_VIA)
    else:  # disabled by an earlier --prune and back in the crontab: enabled again
        service.upsert_job({"id": existing.id, **changes}, by=by, origin=ORIGIN, via=CLI_VIA)


def _disable(app: AppContext, stale: list[Job]) -> None:
    """Disable (not delete: their history stays) the jobs no longer in the crontab, as ``sync_jobs`` does."""
    service, by = app.scheduler().service, os_user()
    for job in stale:
        service.disable(job.id, reason="no longer in the imported crontab", by=by, via=CLI_VIA)


def _json_item(item: Planned) -> dict[str, Any]:
    return {
        "line": item.line,
        "action": item.action,
        "id": item.job["id"],
        "timezone": item.job["timezone"],
    }


def _report(plan: list[Planned], skipped: list[Skipped], notes: list[Skipped], *, dry_run: bool) -> None:
    if plan:
        out = table("LINE", "ACTION", "ID", "SCHEDULE", "ZONE", "COMMAND")
        for item in plan:
            job = item.job
            out.add_row(
                str(item.line),
                item.action,
                job["id"],
                escape(job["cron"]),
                job["timezone"],
                escape(job["command"][-1]),
            )
        console.print(out)
    for line in skipped:
        click.echo(f"line {line.line}: not imported: {line.reason}\n  {line.text.strip()}", err=True)
    for note in notes:
        click.echo(f"line {note.line}: {note.reason}", err=True)
    import_summary((item.action for item in plan), len(skipped), dry_run=dry_run)


def _report_stale(stale: list[Job], *, prune: bool, dry_run: bool) -> None:
    if not stale:
        return
    if prune:
        verb = "would disable" if dry_run else "disabled"
        click.echo(f"{verb} {len(stale)} job(s) no longer in the crontab:", err=True)
    else:
        click.echo(
            f"{len(stale)} job(s) imported from a crontab are no longer in it (--prune disables them):",
            err=True,
        )
    for job in stale:
        click.echo(f"  {job.id}  {job.spec.name}", err=True)
