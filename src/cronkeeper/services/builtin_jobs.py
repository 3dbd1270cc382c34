"""The built-in maintenance jobs: pruning, backups and housekeeping as ordinary jobs, listed, paused and
recorded like any other, so that the database stays bounded without anyone remembering to do it.

``cronkeeper serve`` declares them from ``[maintenance]`` under the origin ``builtin``.  Their targets are
the functions below, named by import path so that any node can run them; each finds the database of the
scheduler running it through :func:`~cronkeeper.services.maintenance.serving_maintenance` (the scheduler's
workers run every in-process job inside its maintenance service's ``serving()``).  They return what they did,
which becomes the run's result.
"""

from __future__ import annotations

from typing import Any

from cronkeeper.durations import format_duration
from cronkeeper.services.maintenance import serving_maintenance
from cronkeeper.settings import MaintenanceSettings

ORIGIN = "builtin"
PRUNE_ID = "cronkeeper.prune"
BACKUP_ID = "cronkeeper.backup"
HOUSEKEEPING_ID = "cronkeeper.housekeeping"


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


def builtin_jobs(settings: MaintenanceSettings, *, sqlite: bool) -> list[dict[str, Any]]:
    """The definitions of the built-in jobs ``settings`` asks for (none when ``enabled`` is false).  On a
    server database only pruning: its backups are the business of its own tools, and its autovacuum does the
    housekeeping."""
    if not settings.enabled:
        return []
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
    ]
