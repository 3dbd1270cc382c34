"""The built-in maintenance jobs: pruning, backups and housekeeping as ordinary jobs, listed, paused and
recorded like any other, so that the database stays bounded without anyone remembering to do it.

``cronkeeper serve`` declares them from ``[maintenance]`` (and the report from ``[notify]``) under the origin
``builtin``.  Their targets are the functions below, named by import path so that any node can run them; each
finds the services of the scheduler running it through :func:`serving_builtins` (the scheduler's workers run
every in-process job inside :func:`serving`).  They return what they did, which becomes the run's result.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronkeeper.durations import format_duration, parse_duration
from cronkeeper.exceptions import CronkeeperError
from cronkeeper.models import AlertKind
from cronkeeper.scoped import Scoped
from cronkeeper.services.alerts import AlertService
from cronkeeper.services.jobs import JobService
from cronkeeper.services.maintenance import MaintenanceService
from cronkeeper.services.runs import RunService
from cronkeeper.settings import MaintenanceSettings, ReportSettings
from cronkeeper.store.records import JobStats

ORIGIN = "builtin"
REPORT_ID = "cronkeeper.report"
PRUNE_ID = "cronkeeper.prune"
BACKUP_ID = "cronkeeper.backup"
HOUSEKEEPING_ID = "cronkeeper.housekeeping"


@dataclass(frozen=True, slots=True)
class Builtins:
    """The services of one scheduler that its built-in jobs use."""

    maintenance: MaintenanceService
    runs: RunService
    alerts: AlertService
    jobs: JobService


# The services of the scheduler whose worker runs the current job: how a built-in job, a plain function named
# by its import path, reaches the database of the scheduler that runs it.  A context variable, not a global:
# each worker thread sees the scheduler it works for, and two schedulers in one process never mix.
_SERVING: ContextVar[Builtins | None] = ContextVar("cronkeeper_builtins", default=None)


def serving(builtins: Builtins) -> Scoped[Builtins | None]:
    """Around a job run by a scheduler's workers: built-in jobs called inside find its services."""
    return Scoped(_SERVING, builtins)


def serving_builtins() -> Builtins:
    """The services of the scheduler running the calling job; raises when there is none (a built-in job run
    in a child process, or called outside a scheduler)."""
    builtins = _SERVING.get()
    if builtins is None:
        raise CronkeeperError(
            "a built-in job runs only in a scheduler's worker thread (not isolated, not by hand)"
        )
    return builtins


def serving_maintenance() -> MaintenanceService:
    return serving_builtins().maintenance


def prune(*, older_than: str, keep: int, audit_older_than: str) -> dict[str, int]:
    """Delete runs older than ``older_than`` or beyond the newest ``keep`` of their job, audit events older
    than ``audit_older_than`` and spent bookkeeping; returns how many rows went, by table."""
    service = serving_maintenance()
    return service.prune(older_than=older_than, keep=keep, audit_older_than=audit_older_than).counts()


def backup(*, folder: str, keep: int) -> dict[str, Any]:
    """Write a checked backup into ``folder`` (beside the database when relative) and keep the newest
    ``keep`` there."""
    service = serving_maintenance()
    made = service.backup(service.backup_folder(folder), keep=keep)
    return {"path": str(made.path), "bytes": made.size, "removed": [str(path) for path in made.removed]}


def housekeeping() -> dict[str, Any]:
    """Refresh the planner's statistics and empty the write-ahead log."""
    done = serving_maintenance().housekeep()
    return {
        "done": done.done,
        "wal_frames": done.wal_frames,
        "checkpointed_frames": done.checkpointed_frames,
        "wal_truncated": done.wal_truncated,
    }


def report(*, channel: str, period: str) -> dict[str, Any]:
    """Send every job's figures over the last ``period`` to ``channel``, as one message (through the outbox,
    like any alert); returns the totals."""
    builtins = serving_builtins()
    until = builtins.runs.clock.now()
    since = until - parse_duration(period, "period")
    figures = builtins.runs.stats(since=since, until=until)
    jobs = {job.id: job for job in builtins.jobs.list_jobs(include_disabled=False) if job.id != REPORT_ID}
    facts = report_facts(
        [stats for job_id, stats in figures.items() if job_id in jobs],
        names={job_id: job.spec.display_name for job_id, job in jobs.items()},
        period=period,
        window=(since, until),
    )
    totals: dict[str, Any] = facts["totals"]
    return {**totals, "alert_id": builtins.alerts.enqueue(AlertKind.REPORT.value, channel, facts)}


def report_facts(
    found: list[JobStats], *, names: dict[str, str], period: str, window: tuple[datetime, datetime]
) -> dict[str, Any]:
    """What the report says: per job its runs, failures, success rate, durations and last failure; the
    totals; the jobs that did not run at all."""
    rows = [_report_row(stats, names.get(stats.job_id, stats.job_id)) for stats in found if stats.total]
    rows.sort(key=lambda row: (-row["failures"], row["job_id"]))
    runs = sum(row["runs"] for row in rows)
    failures = sum(row["failures"] for row in rows)
    succeeded = sum(row["succeeded"] for row in rows)
    verdicts = succeeded + failures
    return {
        "kind": AlertKind.REPORT.value,
        "job_id": None,
        "job_name": "cronkeeper",
        "period": period,
        "since": window[0].isoformat(),
        "until": window[1].isoformat(),
        "totals": {
            "jobs": len(found),
            "runs": runs,
            "failures": failures,
            "success_rate": succeeded / verdicts if verdicts else None,
        },
        "jobs": rows,
        "never_ran": sorted(stats.job_id for stats in found if not stats.total),
    }


def _report_row(stats: JobStats, name: str) -> dict[str, Any]:
    failure = stats.last_failure
    return {
        "job_id": stats.job_id,
        "name": name,
        "runs": stats.total,
        "succeeded": stats.succeeded,
        "failures": stats.failures,
        "success_rate": stats.success_rate,
        "median": stats.median_seconds,
        "p95": stats.p95_seconds,
        "max": stats.max_seconds,
        "last_failure": None
        if failure is None
        else {"run_id": failure.run_id, "at": failure.at.isoformat(), "error": failure.error},
    }


def builtin_jobs(
    settings: MaintenanceSettings, *, sqlite: bool, report: ReportSettings | None = None
) -> list[dict[str, Any]]:
    """The definitions of the built-in jobs ``settings`` asks for (no maintenance when ``enabled`` is
    false), and the report's when there is one.  On a server database only pruning: its backups are the
    business of its own tools, and its autovacuum does the housekeeping."""
    reports = [] if report is None else [_report_job(report)]
    if not settings.enabled:
        return reports
    prune_kwargs = {
        "older_than": format_duration(settings.keep_runs_for),
        "keep": settings.keep_runs_per_job,
        "audit_older_than": format_duration(settings.keep_audit_for),
    }
    backup_kwargs = {"folder": settings.backup_dir, "keep": settings.keep_backups}
    file_only = settings if sqlite else MaintenanceSettings(backup=None, housekeeping=None)
    wanted = [
        (PRUNE_ID, "Prune old runs", settings.prune, "prune", prune_kwargs),
        (BACKUP_ID, "Back up the database", file_only.backup, "backup", backup_kwargs),
        (HOUSEKEEPING_ID, "Database housekeeping", file_only.housekeeping, "housekeeping", {}),
    ]
    return [
        {
            "id": job_id,
            "name": name,
            "cron": cron,
            "timezone": "UTC",
            "call": f"{__name__}:{function}",
            "kwargs": kwargs,
            "tags": ["cronkeeper", "maintenance"],
            "overlap": "forbid",
        }
        for job_id, name, cron, function, kwargs in wanted
        if cron is not None
    ] + reports


def _report_job(report: ReportSettings) -> dict[str, Any]:
    return {
        "id": REPORT_ID,
        "name": f"Report to {report.channel}",
        "cron": report.schedule,
        "timezone": "UTC",
        "call": f"{__name__}:report",
        "kwargs": {"channel": report.channel, "period": format_duration(report.period)},
        "tags": ["cronkeeper", "report"],
        "overlap": "forbid",
        # The report is itself alerted like any job: a report that cannot be made is heard of.
    }
