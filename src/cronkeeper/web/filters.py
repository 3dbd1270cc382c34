"""Jinja filters: instants, durations and sizes as people read them.

Instants are shown in the zone the page is read in (``zone`` in the template's context: see
:mod:`cronkeeper.web.zones`), with its offset, and the same instant in UTC on hover; when the reader chose
each job's own zone, a template passes the job's zone along.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from cronkeeper.models import JobSpec, exit_code_text
from cronkeeper.triggers import CronTrigger


def in_zone(value: datetime, zone: tzinfo) -> str:
    """``2026-11-23 15:05:03 +01:00``, or ``… UTC`` in UTC: the offset says which zone the reader sees."""
    local = value.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    if zone is UTC or (offset == timedelta(0) and local.tzname() in ("UTC", "GMT", None)):
        suffix = "UTC"
    else:
        sign, total = ("+" if offset >= timedelta(0) else "-"), abs(int(offset.total_seconds()))
        suffix = f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"
    return f"{local:%Y-%m-%d %H:%M:%S} {suffix}"


def shown_zone(context: Context | dict[str, Any], job_zone: tzinfo | str | None = None) -> tzinfo:
    """The zone an instant is shown in: the page's, or the job's own where the reader asked for that."""
    if context.get("per_job_zone") and job_zone is not None:
        return ZoneInfo(job_zone) if isinstance(job_zone, str) else job_zone
    zone = context.get("zone")
    return zone if isinstance(zone, tzinfo) else UTC


@pass_context
def instant(context: Context, value: datetime | None, job_zone: tzinfo | str | None = None) -> Markup | str:
    """An instant in the reader's zone, marked up as ``<time>`` with the UTC instant on hover."""
    if value is None:
        return "—"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        value.astimezone(UTC).isoformat(), in_zone(value, UTC), in_zone(value, shown_zone(context, job_zone))
    )


@pass_context
def instant_text(context: Context, value: datetime | None, job_zone: tzinfo | str | None = None) -> str:
    """:func:`instant` as plain text, for an attribute."""
    return "—" if value is None else in_zone(value, shown_zone(context, job_zone))


def seconds(value: float | timedelta | None) -> str:
    """``0.042 s``, ``3.2 s``, ``4 min 10 s``, ``2 h 5 min``."""
    if value is None:
        return "—"
    total = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if total < 10:
        return f"{total:.3f} s" if total < 1 else f"{total:.1f} s"
    whole = round(total)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def relative(value: datetime | None, now: datetime) -> str:
    """``in 4 min`` or ``12 s ago``."""
    if value is None:
        return "—"
    delta = (value - now).total_seconds()
    text = seconds(abs(delta)) if abs(delta) >= 1 else "now"
    if text == "now":
        return text
    return f"in {text}" if delta > 0 else f"{text} ago"


def size(value: int | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def exit_code(value: int | None) -> str:
    return "—" if value is None else exit_code_text(value)


def zone_of(spec: JobSpec) -> ZoneInfo | None:
    """A job's own zone: its cron schedule's (an interval or a one-off has none of its own)."""
    trigger = spec.trigger
    return trigger.timezone if isinstance(trigger, CronTrigger) else None


@pass_context
def job_local(context: Context, value: datetime | None, spec: JobSpec) -> str:
    """``03:00 Europe/Paris``: when a job, by its own zone, if the page shows another one (else blank)."""
    zone = zone_of(spec)
    if value is None or zone is None:
        return ""
    if value.astimezone(shown_zone(context, zone)).utcoffset() == value.astimezone(zone).utcoffset():
        return ""
    return f"{value.astimezone(zone):%H:%M} {zone.key}"


def install_filters(env: Environment) -> None:
    env.filters.update(
        instant=instant,
        instant_text=instant_text,
        seconds=seconds,
        relative=relative,
        size=size,
        exit_code=exit_code,
        zone_of=zone_of,
        job_local=job_local,
    )
