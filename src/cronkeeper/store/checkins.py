"""Check-ins: runs of jobs that run elsewhere (system cron, CI, a container), reported to the database.

A check-in writes its run as the scheduler would have (started, ended, exit code, output) and moves the
job's expectation on to its next fire, in one transaction; an ending is judged like any outcome (incidents
and alerts).  A job nobody checks in for is reported ``missed`` by the nodes' overdue watch.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from cronkeeper.exceptions import ConflictError, JobNotFoundError, RunNotFoundError, StoreError
from cronkeeper.models import Run, RunStatus, TriggerSource
from cronkeeper.store.base import Checkin
from cronkeeper.store.incidents import run_outcome, track_outcomes
from cronkeeper.store.rows import run_from_row
from cronkeeper.store.schema import jobs, runs


def record_checkin(conn: Connection, checkin: Checkin, *, now: datetime) -> tuple[Run, int]:
    """Write ``checkin``; returns its run and how many alerts it wrote."""
    if conn.execute(select(jobs.c.id).where(jobs.c.id == checkin.job_id).with_for_update()).first() is None:
        raise JobNotFoundError(checkin.job_id)
    if checkin.run_id is not None:
        run_id = _end_started(conn, checkin, now)
    else:
        run_id = _insert(conn, checkin, now)
        if checkin.moves_expectation:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == checkin.job_id)
                .values(next_fire_at=checkin.next_fire_at, next_due_at=checkin.next_due_at)
            )
    run = run_from_row(conn.execute(select(runs).where(runs.c.id == run_id)).one())
    written = (
        track_outcomes(conn, [run_outcome(run)], now=now) if checkin.status is not RunStatus.RUNNING else 0
    )
    return run, written


def _ending(checkin: Checkin, now: datetime) -> dict[str, Any]:
    return {
        "status": checkin.status.value,
        "finished_at": now,
        "exit_code": checkin.exit_code,
        "output": checkin.output,
        "error": checkin.error,
    }


def _end_started(conn: Connection, checkin: Checkin, now: datetime) -> int:
    """The end of a run a start check-in began: only a running check-in run of this job may be ended."""
    row = conn.execute(
        select(runs.c.id, runs.c.job_id, runs.c.status, runs.c.trigger_source)
        .where(runs.c.id == checkin.run_id)
        .with_for_update()
    ).first()
    if row is None or row.job_id != checkin.job_id:
        raise RunNotFoundError(checkin.run_id or 0)
    if row.trigger_source != TriggerSource.CHECKIN.value or row.status != RunStatus.RUNNING.value:
        raise ConflictError(f"run {row.id} is not a check-in still running (it is {row.status})")
    conn.execute(update(runs).where(runs.c.id == row.id).values(_ending(checkin, now)))
    return int(row.id)


def _insert(conn: Connection, checkin: Checkin, now: datetime) -> int:
    """A run for the instant the check-in came (the next free microsecond, as a manual run is)."""
    started = now - checkin.duration if checkin.duration is not None else now
    values: dict[str, Any] = {
        "job_id": checkin.job_id,
        "attempt": 0,
        "trigger_source": TriggerSource.CHECKIN.value,
        "triggered_by": checkin.by,
        "owner": checkin.owner,
        "due_at": started,
        "queued_at": started,
        "started_at": started,
        "status": RunStatus.RUNNING.value,
    }
    if checkin.status is not RunStatus.RUNNING:
        values.update(_ending(checkin, now))
    for nudge in range(100):
        try:
            with conn.begin_nested():
                row = {**values, "scheduled_for": started + timedelta(microseconds=nudge)}
                return int(conn.execute(insert(runs).returning(runs.c.id), row).scalar_one())
        except IntegrityError:
            continue
    raise StoreError(f"could not record a check-in of {checkin.job_id!r}: too many at {now.isoformat()}")
