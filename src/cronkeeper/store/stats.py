"""Figures about jobs over a window of their history: counts by status, duration percentiles, the last success
and failure.

Three queries whatever the number of jobs (four past 500 jobs), each reading the window's runs through an
index (one job's through ``uq_ck_runs_fire``, every job's through ``ix_ck_runs_scheduled_for``, the whole
history through ``ix_ck_runs_job_status_id``): counts and the latest run id of each status, grouped by job and
status; the durations of the runs that ended on their own, computed by the database (to the microsecond on
both databases); the latest success and failure of each job, by id.  Percentiles need every
duration in order: the durations are ranked here rather than by a window function, which measured about
three times slower on SQLite (its sorter against Python's), and the same code on both databases gives the
same figures to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, case, func, select, type_coerce

from cronkeeper.models import RunStatus
from cronkeeper.store.base import StatsView
from cronkeeper.store.engines import reading
from cronkeeper.store.records import FAILURE_STATUSES, TIMED_STATUSES, JobStats, RunMark
from cronkeeper.store.schema import UTCDateTime, jobs, runs, seconds_between

# The percentiles reported, as fractions (numerator, denominator): the rank arithmetic stays exact.
MEDIAN = (1, 2)
P95 = (95, 100)
# How much of an error message a figure carries: a line of a report, not the traceback.
ERROR_EXCERPT = 200
# Run ids per lookup of the latest runs: well under SQLite's bound on parameters.
_IDS_PER_QUERY = 500

_TIMED = [status.value for status in TIMED_STATUSES]
_SUCCESS = {RunStatus.SUCCEEDED.value}
_FAILURES = {status.value for status in FAILURE_STATUSES}
# Per job and status: how many runs, and the id of the latest.
Groups = dict[str, dict[str, tuple[int, int]]]


class SqlStatsView(StatsView):
    """Figures on the scheduler's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def job_stats(
        self, job_ids: Sequence[str] | None, *, since: datetime | None, until: datetime | None
    ) -> dict[str, JobStats]:
        window = _window(job_ids, since, until)
        with reading(self.engine) as conn:
            ids = _existing(conn, job_ids)
            groups = _groups(conn, window)
            durations = _durations(conn, window, self.engine.dialect.name)
            marks = _marks(conn, groups)
        empty = {status.value: 0 for status in RunStatus}
        return {
            job_id: JobStats(
                job_id,
                since,
                until,
                {**empty, **{status: count for status, (count, _) in groups.get(job_id, {}).items()}},
                *durations.get(job_id, (None, None, None)),
                *marks.get(job_id, (None, None)),
            )
            for job_id in ids
        }


def _window(
    job_ids: Sequence[str] | None, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if job_ids is not None:
        conditions.append(runs.c.job_id.in_(list(job_ids)))
    if since is not None:
        conditions.append(runs.c.scheduled_for >= since)
    if until is not None:
        conditions.append(runs.c.scheduled_for < until)
    return conditions


def _existing(conn: Connection, job_ids: Sequence[str] | None) -> list[str]:
    query = select(jobs.c.id).order_by(jobs.c.id)
    if job_ids is not None:
        query = query.where(jobs.c.id.in_(list(job_ids)))
    return list(conn.scalars(query))


def _groups(conn: Connection, window: list[ColumnElement[bool]]) -> Groups:
    query = (
        select(runs.c.job_id, runs.c.status, func.count(), func.max(runs.c.id))
        .where(*window)
        .group_by(runs.c.job_id, runs.c.status)
    )
    found: Groups = {}
    for job_id, status, count, latest in conn.execute(query).all():
        found.setdefault(job_id, {})[status] = (int(count), int(latest))
    return found


def _durations(
    conn: Connection, window: list[ColumnElement[bool]], dialect: str
) -> dict[str, tuple[float | None, float | None, float | None]]:
    """(median, p95, max) of each job with runs that ended on their own, streamed (one float per run held).

    The status is tested in the select list, not the WHERE clause: there it would tempt SQLite to read every
    run of those statuses through their index instead of the window's runs through the window's."""
    seconds = case(
        (runs.c.status.in_(_TIMED), seconds_between(dialect, runs.c.started_at, runs.c.finished_at))
    )
    query = select(runs.c.job_id, seconds).where(*window)
    by_job: dict[str, list[float]] = {}
    for job_id, value in conn.execute(query, execution_options={"yield_per": 10_000}):
        if value is not None:
            by_job.setdefault(job_id, []).append(value)
    figures: dict[str, tuple[float | None, float | None, float | None]] = {}
    for job_id, values in by_job.items():
        values.sort()
        figures[job_id] = (percentile(values, MEDIAN), percentile(values, P95), values[-1])
    return figures


def percentile(ordered: Sequence[float], fraction: tuple[int, int]) -> float:
    """Linear interpolation between the closest ranks of ``ordered`` (ascending, not empty): the value at
    0-based rank ``p * (n - 1)``.  The rank is split with integers, so the figure does not depend on how a
    float rounds ``p``."""
    numerator, denominator = fraction
    below, remainder = divmod((len(ordered) - 1) * numerator, denominator)
    low = ordered[below]
    if remainder == 0:
        return low
    return low + (ordered[below + 1] - low) * remainder / denominator


def _marks(conn: Connection, groups: Groups) -> dict[str, tuple[RunMark | None, RunMark | None]]:
    """(last success, last failure) of each job: the latest run of each kind, latest as the dashboard's
    histories order runs, by id (the order they were written: a retry comes after the run it retries)."""
    wanted: dict[int, str] = {}
    for job_id, by_status in groups.items():
        for kind in (_SUCCESS, _FAILURES):
            ids = [latest for status, (_, latest) in by_status.items() if status in kind]
            if ids:
                wanted[max(ids)] = job_id
    found: dict[str, dict[bool, RunMark]] = {}
    query = select(
        runs.c.id,
        runs.c.status,
        type_coerce(
            func.coalesce(runs.c.finished_at, runs.c.started_at, runs.c.scheduled_for), UTCDateTime()
        ),
        func.substr(runs.c.error, 1, ERROR_EXCERPT),
    )
    ids = sorted(wanted)
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        for run_id, status, at, error in conn.execute(query.where(runs.c.id.in_(chunk))).all():
            success = status in _SUCCESS
            mark = RunMark(run_id, at) if success else RunMark(run_id, at, error)
            found.setdefault(wanted[run_id], {})[success] = mark
    return {job_id: (marks.get(True), marks.get(False)) for job_id, marks in found.items()}
