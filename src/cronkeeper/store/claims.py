"""Claiming due fires: the one transaction that turns due jobs and queued runs into runs to start.

Each due job is planned (:mod:`cronkeeper.planning`), its run rows inserted and its next fire advanced in the
caller's write transaction; queued runs (manual triggers, retries) are taken under their job's lock.  Rows are
unique on (job, scheduled_for, attempt) and inserted ON CONFLICT DO NOTHING: only the rows written start.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from cronkeeper.models import JobSpec, Overlap, RunStatus, TriggerSource
from cronkeeper.planning import FirePlan, PlannedRun, free_slots, plan_fires, skip_reason, still_a_fire
from cronkeeper.store.base import ClaimResult, StartOrder
from cronkeeper.store.batch import BatchStatement, KeyLookup
from cronkeeper.store.rows import (
    ACTIVE_RUN,
    AnyRow,
    SpecCache,
    job_runs_here,
    run_from_mapping,
    run_from_row,
    run_of_job_elsewhere,
)
from cronkeeper.store.schema import jobs, runs

log = logging.getLogger(__name__)

# When a job's fires cannot be planned (a bug, or a schedule that fails to compute), when to try again.
PLAN_RETRY = timedelta(minutes=1)

# Looked up once: an enum's value, or an enum by value, costs a Python call on a path every fire takes.
_QUEUED = RunStatus.QUEUED.value
_SOURCES = {source.value: source for source in TriggerSource}

_SQLITE_HIGHEST_RUN_ID = (
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'ck_runs'), 0), "
    "coalesce((SELECT max(id) FROM ck_runs), 0))"
)

_RUN_COLUMNS = (
    "id",
    "job_id",
    "scheduled_for",
    "attempt",
    "trigger_source",
    "owner",
    "status",
    "due_at",
    "queued_at",
    "finished_at",
    "error",
    "result",
    "triggered_by",
    "parent_run_id",
)


class Claimer:
    """Claims for one database dialect, with the statements it runs for every claim compiled once."""

    def __init__(self, dialect: Dialect, specs: SpecCache) -> None:
        self.dialect = dialect.name
        self._specs = specs
        # Fires whose planning failed and was logged in full: a retry that fails again logs one line.
        self._failed_fires: set[tuple[str, datetime]] = set()
        self._insert_runs = BatchStatement(dialect, _insert_ignoring_duplicates(dialect.name, _RUN_COLUMNS))
        # Live runs per job, of every due job of a claim.
        self._count_active = KeyLookup(
            dialect,
            lambda keys: (
                select(runs.c.job_id, func.count())
                .where(runs.c.job_id.in_(keys), ACTIVE_RUN, runs.c.owner.is_not(None))
                .group_by(runs.c.job_id)
            ),
        )
        self._advance_jobs = BatchStatement(
            dialect,
            update(jobs)
            .where(jobs.c.id == bindparam("job"))
            .values(next_fire_at=bindparam("fire"), next_due_at=bindparam("run")),
        )

    def claim(
        self,
        conn: Connection,
        *,
        now: datetime,
        owner: str,
        limit: int,
        horizon: datetime,
        instance_id: str | None = None,
    ) -> ClaimResult:
        """The body of :meth:`JobStore.claim_due`, inside the caller's write transaction."""
        due = conn.execute(
            select(jobs.c.id, jobs.c.version, jobs.c.next_fire_at, jobs.c.next_due_at)
            .where(jobs.c.next_due_at <= horizon, job_runs_here(instance_id))
            .order_by(jobs.c.next_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        queued = conn.execute(
            select(
                runs.c.id,
                runs.c.job_id,
                runs.c.scheduled_for,
                runs.c.due_at,
                runs.c.attempt,
                runs.c.trigger_source,
                runs.c.triggered_by,
            )
            .where(
                runs.c.status == RunStatus.QUEUED.value,
                runs.c.owner.is_(None),
                runs.c.due_at <= now,
                ~run_of_job_elsewhere(instance_id),
            )
            .order_by(runs.c.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        queued = self._queued_of_lockable_jobs(conn, queued, {row.id for row in due})
        if not due and not queued:
            return ClaimResult()
        job_ids = {row.id for row in due} | {row.job_id for row in queued}
        active = self._active_counts(conn, job_ids)
        specs = self._specs.of(conn, [(row.id, row.version) for row in due], {row.job_id for row in queued})
        result = ClaimResult()
        # Queued runs first: they are older (a run handed back at a restart, a manual run) than the fires
        # planned now, which the overlap policy then weighs against them, not the other way round.
        self._claim_queued(conn, queued, specs, active, result, now=now, owner=owner)
        self._claim_jobs(conn, due, specs, active, result, now=now, owner=owner)
        return result

    def _active_counts(self, conn: Connection, job_ids: set[str]) -> dict[str, int]:
        counts = dict.fromkeys(job_ids, 0)
        counts.update({row[0]: row[1] for row in self._count_active.rows(conn, list(job_ids))})
        return counts

    def _claim_jobs(
        self,
        conn: Connection,
        due: Sequence[AnyRow],
        specs: dict[str, JobSpec],
        active: dict[str, int],
        result: ClaimResult,
        *,
        now: datetime,
        owner: str,
    ) -> None:
        inserts: list[dict[str, Any]] = []
        advances: list[dict[str, Any]] = []
        replaced: list[str] = []
        versions = {row.id: row.version for row in due}
        for row in due:
            plan = _plan_job(row, specs[row.id], active[row.id], now, self._failed_fires)
            if plan is None:
                continue
            jitter = row.next_due_at - row.next_fire_at
            inserts.extend(_planned_row(row.id, planned, jitter, now, owner) for planned in plan.runs)
            advances.append({"job": row.id, "fire": plan.next_fire_at, "run": plan.next_due_at})
            if plan.replace_active:
                replaced.append(row.id)
        self._advance_jobs.execute(conn, advances)
        if replaced:
            result.to_cancel.extend(self._request_cancel_for_jobs(conn, replaced))
        for run_id, values in self._insert_planned(conn, inserts):
            job_id = values["job_id"]
            if values["status"] == _QUEUED and values["owner"] is not None:
                active[job_id] += 1
                source = _SOURCES[values["trigger_source"]]
                result.to_start.append(
                    StartOrder(
                        run_id,
                        specs[job_id],
                        values["scheduled_for"],
                        values["due_at"],
                        0,
                        source,
                        version=versions[job_id],
                        claimed_at=now,
                    )
                )
            elif values["status"] != _QUEUED:  # queued unowned: waits its turn
                result.recorded.append(run_from_mapping(values))

    def _insert_planned(
        self, conn: Connection, inserts: list[dict[str, Any]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Insert planned runs; return (id, values) of those written.

        A fire that already has its row (an edit moved the schedule back onto a fire claimed ahead, or a
        manual run holds that very instant) is not inserted again, so it cannot start twice.
        """
        if not inserts:
            return []
        ids = self._allocate_run_ids(conn, len(inserts))
        for run_id, values in zip(ids, inserts, strict=True):
            values["id"] = run_id
        if self._insert_runs.execute(conn, inserts) == len(inserts):
            return [(values["id"], values) for values in inserts]  # every row was written: nearly always
        written = set(conn.execute(select(runs.c.id).where(runs.c.id.in_(ids))).scalars())
        for values in inserts:
            if values["id"] not in written:
                log.info(
                    "job %s: fire %s already has a run", values["job_id"], values["scheduled_for"].isoformat()
                )
        return [(values["id"], values) for values in inserts if values["id"] in written]

    def _allocate_run_ids(self, conn: Connection, count: int) -> list[int]:
        """Ids for runs about to be inserted in this transaction, so one executemany can write them all."""
        if self.dialect == "postgresql":
            query = text(
                "SELECT nextval(pg_get_serial_sequence('ck_runs', 'id')) FROM generate_series(1, :n)"
            )
            return list(conn.execute(query, {"n": count}).scalars())
        # SQLite: the claim holds the write lock (BEGIN IMMEDIATE), so nobody else can take these ids; the
        # AUTOINCREMENT counter keeps ids of deleted runs from ever being used again.
        highest = conn.execute(text(_SQLITE_HIGHEST_RUN_ID)).scalar() or 0
        return list(range(highest + 1, highest + count + 1))

    def _queued_of_lockable_jobs(
        self, conn: Connection, queued: Sequence[AnyRow], locked: set[str]
    ) -> list[AnyRow]:
        """Queued runs whose job row this claim holds (or could lock now), so that counting a job's active
        runs and starting another happen under that job's lock on every node (PostgreSQL; SQLite's claim
        holds the whole database).  Runs of jobs another claimer holds wait for a later claim."""
        wanted = {row.job_id for row in queued} - locked
        if wanted:
            locked = locked | set(
                conn.execute(
                    select(jobs.c.id).where(jobs.c.id.in_(wanted)).with_for_update(skip_locked=True)
                ).scalars()
            )
            existing = set(conn.execute(select(jobs.c.id).where(jobs.c.id.in_(wanted))).scalars())
            locked |= wanted - existing  # runs of removed jobs are refused, which needs no lock
        return [row for row in queued if row.job_id in locked]

    def _request_cancel_for_jobs(
        self, conn: Connection, job_ids: list[str], keep: frozenset[int] = frozenset()
    ) -> list[int]:
        ids = [
            row.id
            for row in conn.execute(
                select(runs.c.id).where(runs.c.job_id.in_(job_ids), ACTIVE_RUN, runs.c.owner.is_not(None))
            )
            if row.id not in keep
        ]
        if ids:
            conn.execute(update(runs).where(runs.c.id.in_(ids)).values(cancel_requested=True))
        return ids

    def _claim_queued(
        self,
        conn: Connection,
        queued: Sequence[AnyRow],
        specs: dict[str, JobSpec],
        active: dict[str, int],
        result: ClaimResult,
        *,
        now: datetime,
        owner: str,
    ) -> None:
        if not queued:
            return
        taken: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        replaced: list[str] = []
        stopped = _stopped_jobs(conn, {row.job_id for row in queued})
        for row in queued:
            spec = specs.get(row.job_id)
            verdict = _queued_verdict(row, spec, active, now, stopped.get(row.job_id))
            if verdict is _WAIT:
                continue
            if verdict is not None:
                refused.append({"rid": row.id, "status": verdict[0].value, "error": verdict[1]})
                continue
            assert spec is not None
            if spec.overlap is Overlap.REPLACE and active[row.job_id]:
                replaced.append(row.job_id)
            active[row.job_id] += 1
            taken.append({"rid": row.id})
            result.to_start.append(
                StartOrder(
                    row.id,
                    spec,
                    row.scheduled_for,
                    row.due_at,
                    row.attempt,
                    TriggerSource(row.trigger_source),
                    row.triggered_by,
                    claimed_at=now,
                )
            )
        if taken:
            conn.execute(update(runs).where(runs.c.id == bindparam("rid")).values(owner=owner), taken)
        if replaced:
            keep = frozenset(item["rid"] for item in taken)
            result.to_cancel.extend(self._request_cancel_for_jobs(conn, replaced, keep))
        if refused:
            conn.execute(
                update(runs)
                .where(runs.c.id == bindparam("rid"))
                .values(status=bindparam("status"), finished_at=now, error=bindparam("error")),
                refused,
            )
            ids = [item["rid"] for item in refused]
            result.recorded.extend(
                run_from_row(row) for row in conn.execute(select(runs).where(runs.c.id.in_(ids)))
            )


def _planned_row(
    job_id: str, planned: PlannedRun, jitter: timedelta, now: datetime, owner: str
) -> dict[str, Any]:
    queued = planned.status is RunStatus.QUEUED
    return {
        "job_id": job_id,
        "scheduled_for": planned.scheduled_for,
        "attempt": 0,
        "trigger_source": planned.trigger_source.value,
        "owner": owner if queued and not planned.waits else None,
        "status": planned.status.value,
        "due_at": planned.scheduled_for + jitter,
        "queued_at": now,
        # A record of a fire that did not run ends when it was written, or at its due time if written ahead.
        "finished_at": None if queued else max(now, planned.scheduled_for + jitter),
        "error": planned.error,
        "result": planned.result,
        "triggered_by": None,
        "parent_run_id": None,
    }


def _plan_job(
    row: AnyRow, spec: JobSpec, active: int, now: datetime, failed_fires: set[tuple[str, datetime]]
) -> FirePlan | None:
    """What to do with one due job, or None to leave it for later.  A job whose fires cannot be planned does
    not stop the others: its due fire is recorded ``failed`` with the reason (once, whatever the retries: the
    run row is unique per fire), and the job is looked at again after ``PLAN_RETRY``."""
    if row.next_due_at > now:
        # Claimed ahead of time: only fires that will certainly start, planned as if on time.  A job the
        # overlap policy would hold back now waits to be claimed when it is due.
        if free_slots(spec, active) == 0:
            return None
        at = row.next_fire_at
    else:
        at = now - (row.next_due_at - row.next_fire_at)  # lateness counts from the jittered due time
    try:
        return plan_fires(spec, row.next_fire_at, at, active)
    except Exception as exc:
        if (row.id, row.next_fire_at) in failed_fires:
            log.warning(
                "job %s: still cannot plan its fires (%s); trying again in %s", row.id, exc, PLAN_RETRY
            )
        else:
            failed_fires.add((row.id, row.next_fire_at))
            log.exception("job %s: could not plan its fires; trying again in %s", row.id, PLAN_RETRY)
        failed = PlannedRun(
            row.next_fire_at,
            TriggerSource.SCHEDULE,
            RunStatus.FAILED,
            error=f"not started: the schedule could not be computed ({exc})",
        )
        return FirePlan([failed], next_fire_at=row.next_fire_at, next_due_at=now + PLAN_RETRY)


def _insert_ignoring_duplicates(dialect: str, columns: Sequence[str]) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for runs (both databases have it)."""
    values: dict[str, Any] = {name: bindparam(name) for name in columns}
    if dialect == "postgresql":
        return postgresql_insert(runs).values(values).on_conflict_do_nothing()
    return sqlite_insert(runs).values(values).on_conflict_do_nothing()


_WAIT = (RunStatus.QUEUED, "waiting for its turn")


def _stopped_jobs(conn: Connection, job_ids: set[str]) -> dict[str, str]:
    """Of these jobs, the paused or disabled ones, and which."""
    rows = conn.execute(
        select(jobs.c.id, jobs.c.enabled).where(jobs.c.id.in_(job_ids), or_(jobs.c.paused, ~jobs.c.enabled))
    )
    return {row.id: "paused" if row.enabled else "disabled" for row in rows}


def _queued_verdict(
    row: AnyRow, spec: JobSpec | None, active: dict[str, int], now: datetime, stopped: str | None = None
) -> tuple[RunStatus, str] | None:
    """Why a queued run must not start now (a status and a message; ``_WAIT`` to leave it queued), or None
    if it may.  ``stopped`` says the job is paused or disabled: its scheduled runs do not start (one asked
    for by someone still does)."""
    if spec is None:
        return RunStatus.SKIPPED, "not started: the job was removed"
    catching_up = row.trigger_source == TriggerSource.CATCHUP.value
    scheduled = catching_up or row.trigger_source == TriggerSource.SCHEDULE.value
    if stopped is not None and scheduled:
        return RunStatus.SKIPPED, f"not started: the job was {stopped} before the run started"
    if scheduled and not still_a_fire(spec, row.scheduled_for):
        # Handed back at a stop, then the job was given a new schedule: its slot is no fire any more.
        return RunStatus.SKIPPED, "not started: the job's schedule changed and no longer fires then"
    if row.trigger_source == TriggerSource.SCHEDULE.value and now - row.due_at > spec.misfire_grace:
        # A scheduled run handed back at shutdown and not taken up in time is a misfire like any other;
        # a catch-up run is late on purpose.
        return RunStatus.MISSED, f"missed: not started within the misfire grace of its due time {row.due_at}"
    if free_slots(spec, active[row.job_id]) == 0:
        return _WAIT if catching_up else (RunStatus.SKIPPED, skip_reason(spec, active[row.job_id]))
    return None
