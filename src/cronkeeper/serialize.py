"""The stable JSON forms of jobs and runs, shared by ``--json`` in the CLI and the HTTP API.

Fields are only ever added, never renamed or removed; instants are ISO-8601 in UTC, durations in seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cronkeeper.models import Job, Run
from cronkeeper.specs import spec_to_dict
from cronkeeper.triggers import CronTrigger, IntervalTrigger, Trigger


def iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def schedule_text(trigger: Trigger) -> str:
    """The schedule as typed: ``0 3 * * *``, ``every 5m`` or ``at 2026-12-01T09:00:00+00:00``."""
    if isinstance(trigger, CronTrigger):
        return trigger.cron.expression
    if isinstance(trigger, IntervalTrigger):
        return f"every {trigger.describe().removeprefix('Every ')}"
    return trigger.describe().replace("Once at", "at")


REDACTED = "********"


def redact_env(options: dict[str, Any]) -> dict[str, Any]:
    """Options with the values of ``env`` hidden: they often hold secrets substituted from the environment."""
    env = options.get("env")
    if not env:
        return options
    return {**options, "env": dict.fromkeys(env, REDACTED)}


def job_to_json(job: Job, *, reveal_env: bool = True) -> dict[str, Any]:
    spec = job.spec
    return {
        "id": job.id,
        "name": spec.display_name,
        "enabled": job.enabled,
        "paused": job.paused,
        "schedule": schedule_text(spec.trigger),
        "schedule_description": spec.trigger.describe(),
        "timezone": spec.trigger.timezone.key if isinstance(spec.trigger, CronTrigger) else None,
        "next_due_at": iso(job.next_due_at),
        "next_run_at": iso(job.next_due_at),  # the name before next_due_at, kept for existing clients
        "origin": job.origin,
        "runs_on": job.runs_on,
        "version": job.version,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "created_by": job.created_by,
        "updated_by": job.updated_by,
        "spec": spec_to_dict(spec) if reveal_env else redact_env(spec_to_dict(spec)),
    }


def run_to_json(run: Run, *, with_output: bool = True) -> dict[str, Any]:
    duration, lateness = run.duration, run.lateness
    data: dict[str, Any] = {
        "id": run.id,
        "job_id": run.job_id,
        "status": run.status.value,
        "trigger_source": run.trigger_source.value,
        "triggered_by": run.triggered_by,
        "attempt": run.attempt,
        "parent_run_id": run.parent_run_id,
        "scheduled_for": iso(run.scheduled_for),
        "due_at": iso(run.due_at),
        "queued_at": iso(run.queued_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_seconds": None if duration is None else duration.total_seconds(),
        "lateness_seconds": None if lateness is None else lateness.total_seconds(),
        "node": run.owner,
        "exit_code": run.exit_code,
        "error": run.error,
        "result": run.result,
        "peak_memory_bytes": run.peak_memory_bytes,
        "cpu_time_seconds": run.cpu_time,
    }
    if with_output:
        data["output"] = run.output
        data["traceback"] = run.traceback
    return data
