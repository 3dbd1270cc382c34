"""Read models for the dashboard's busiest pages: a page of jobs with the health of their recent runs.

The jobs page must answer in a few milliseconds whatever the size of the history, so it never issues a query
per job: one query reads a page of jobs, one more reads the latest runs of all of them, each job's share
through the ``(job_id, id)`` index.  Only the columns a summary needs are read (never output or tracebacks).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Engine,
    Integer,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    not_,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)

from cronkeeper.models import Run, RunStatus
from cronkeeper.store.base import DashboardView
from cronkeeper.store.engines import reading
from cronkeeper.store.records import (
    JobPage,
    JobPageFilter,
    JobRow,
    JobState,
    RecentRun,
    RunRelations,
    RunWindow,
    SpanRun,
)
from cronkeeper.store.rows import AnyRow, SpecCache
from cronkeeper.store.schema import ACTIVE_SQL, UTCDateTime, jobs, runs, seconds_between

_STATUSES = {status.value: status for status in RunStatus}
# How long before a timeline's window a run may have been scheduled and still show in it (running into it).
LONGEST_SPAN = timedelta(hours=6)
# SQLite caps a compound SELECT at 500 arms; a page holds far fewer jobs than this.
_ARMS_PER_QUERY = 100
# With a tag filter, rows the LIKE prefilter let through may fail the exact check: scan on this many times
# at most to fill a page, then hand back a shorter page with a cursor that continues where the scan stopped.
_MAX_SCANS = 4

_SPAN_COLUMNS = (
    runs.c.id,
    runs.c.job_id,
    runs.c.status,
    runs.c.scheduled_for,
    runs.c.started_at,
    runs.c.finished_at,
)

_JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.name,
    jobs.c.spec,
    jobs.c.version,
    jobs.c.enabled,
    jobs.c.paused,
    jobs.c.next_due_at,
    jobs.c.next_fire_at,
)


class SqlDashboardView(DashboardView):
    """The dashboard's reads on the scheduler's engine; keeps parsed specs between requests."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._specs = SpecCache()

    def job_page(self, page: JobPageFilter) -> JobPage:
        """One query in the usual case; see ``_MAX_SCANS`` for a tag that the prefilter cannot pin down."""
        wanted = page.limit + 1
        kept: list[AnyRow] = []
        cursor, exhausted = page.after_id, False
        with reading(self.engine) as conn:
            for _ in range(_MAX_SCANS):
                batch = list(conn.execute(job_page_query(page, cursor, wanted)))
                kept.extend(row for row in batch if _has_tag(row.spec, page.tag))
                exhausted = len(batch) < wanted
                if exhausted or len(kept) >= wanted:
                    break
                cursor = batch[-1].id
        if len(kept) > page.limit:
            next_after: str | None = kept[page.limit - 1].id
        else:
            next_after = None if exhausted else cursor
        return JobPage([self._row(row) for row in kept[: page.limit]], next_after)

    def _row(self, row: AnyRow) -> JobRow:
        spec = self._specs.get(row.id, row.version, row.spec)
        return JobRow(row.id, row.name, spec, row.enabled, row.paused, row.next_due_at, row.next_fire_at)

    def recent_runs(self, job_ids: Iterable[str], per_job: int = 20) -> dict[str, list[RecentRun]]:
        """The latest ``per_job`` runs of each job, newest first, in one query per 100 jobs."""
        ids = list(dict.fromkeys(job_ids))
        found: dict[str, list[RecentRun]] = {job_id: [] for job_id in ids}
        with reading(self.engine) as conn:
            for start in range(0, len(ids), _ARMS_PER_QUERY):
                chunk = ids[start : start + _ARMS_PER_QUERY]
                query = recent_runs_query(self.engine.dialect.name, len(chunk))
                params: dict[str, Any] = {f"job_{i}": job_id for i, job_id in enumerate(chunk)}
                # fetchall and plain tuples: a thousand rows one fetch and attribute lookup at a time cost
                # more than the query.
                for run_id, job_id, status, at, seconds in conn.execute(
                    query, {**params, "per_job": per_job}
                ).all():
                    found[job_id].append(RecentRun(run_id, job_id, _STATUSES[status], at, seconds))
        for recent in found.values():
            recent.sort(key=lambda run: run.id, reverse=True)
        return found

    def existing(self, job_ids: Iterable[str], run_ids: Iterable[int]) -> tuple[set[str], set[int]]:
        """Which of these jobs and runs still exist: the audit log links only to those."""
        wanted_jobs, wanted_runs = list(set(job_ids)), list(set(run_ids))
        jobs_found: set[str] = set()
        runs_found: set[int] = set()
        with reading(self.engine) as conn:
            if wanted_jobs:
                jobs_found = set(conn.scalars(select(jobs.c.id).where(jobs.c.id.in_(wanted_jobs))))
            if wanted_runs:
                runs_found = set(conn.scalars(select(runs.c.id).where(runs.c.id.in_(wanted_runs))))
        return jobs_found, runs_found

    def outcome_counts(self, job_id: str, windows: Sequence[datetime]) -> list[dict[RunStatus, int]]:
        """Runs by status scheduled since each instant of ``windows``, in one range scan of the oldest
        (``uq_ck_runs_fire`` starts with the job and the fire)."""
        if not windows:
            return []
        columns = [
            func.sum(case((runs.c.scheduled_for >= bindparam(f"since_{i}", since, UTCDateTime), 1), else_=0))
            for i, since in enumerate(windows)
        ]
        query = (
            select(runs.c.status, *columns)
            .where(runs.c.job_id == job_id, runs.c.scheduled_for >= min(windows))
            .group_by(runs.c.status)
        )
        counts: list[dict[RunStatus, int]] = [{} for _ in windows]
        with reading(self.engine) as conn:
            for status, *sums in conn.execute(query).all():
                for found, total in zip(counts, sums, strict=True):
                    if total:
                        found[_STATUSES[status]] = int(total)
        return counts

    def busy_jobs(self, window: RunWindow) -> tuple[dict[str, int], bool]:
        """Counted by the database over the same capped scan :meth:`runs_in_window` reads."""
        with reading(self.engine) as conn:
            counts: dict[str, int] = {}
            for (job_id,) in conn.execute(_older_active(window, runs.c.job_id)):
                counts[job_id] = counts.get(job_id, 0) + 1
            room = max(window.limit - sum(counts.values()), 0)
            scan = _newest_overlapping(window, room).subquery()
            for job_id, found in conn.execute(select(scan.c.job_id, func.count()).group_by(scan.c.job_id)):
                counts[job_id] = counts.get(job_id, 0) + int(found)
            more = conn.execute(_newest_overlapping(window, 1).offset(room)).first() is not None
        return counts, more

    def runs_in_window(self, window: RunWindow, job_ids: Collection[str]) -> list[SpanRun]:
        """The capped scan again, with only the rows of ``job_ids`` leaving the database: converting the
        instants of the runs no lane draws would cost more than the scan."""
        wanted = set(job_ids)
        with reading(self.engine) as conn:
            older = conn.execute(_older_active(window, *_SPAN_COLUMNS)).all()
            room = max(window.limit - len(older), 0)
            scan = _newest_overlapping(window, room, *_SPAN_COLUMNS).subquery()
            rows = [row for row in older if row.job_id in wanted]
            rows += conn.execute(select(scan).where(scan.c.job_id.in_(wanted))).all()
        return [
            SpanRun(run_id, job_id, _STATUSES[status], scheduled_for, started_at, finished_at)
            for run_id, job_id, status, scheduled_for, started_at, finished_at in rows
        ]

    def jobs_by_id(self, job_ids: Iterable[str]) -> dict[str, JobRow]:
        """These jobs (those that exist), in one query per 500."""
        ids = list(dict.fromkeys(job_ids))
        found: dict[str, JobRow] = {}
        with reading(self.engine) as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for row in conn.execute(select(*_JOB_COLUMNS).where(jobs.c.id.in_(chunk))):
                    found[row.id] = self._row(row)
        return found

    def next_up(self, limit: int) -> list[JobRow]:
        query = (
            select(*_JOB_COLUMNS)
            .where(jobs.c.enabled, ~jobs.c.paused, jobs.c.next_due_at.is_not(None))
            .order_by(jobs.c.next_due_at)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [self._row(row) for row in conn.execute(query)]

    def run_relations(self, run: Run) -> RunRelations:
        """Three indexed lookups: the neighbours by ``ix_ck_runs_job_id_id``, the attempts by the fire's own
        unique index."""
        same_job = runs.c.job_id == run.job_id
        with reading(self.engine) as conn:
            previous_id = conn.scalar(select(func.max(runs.c.id)).where(same_job, runs.c.id < run.id))
            next_id = conn.scalar(select(func.min(runs.c.id)).where(same_job, runs.c.id > run.id))
            attempts = conn.execute(
                select(
                    runs.c.id,
                    runs.c.status,
                    func.coalesce(runs.c.finished_at, runs.c.started_at, runs.c.scheduled_for),
                    seconds_between(self.engine.dialect.name, runs.c.started_at, runs.c.finished_at),
                )
                .where(same_job, runs.c.scheduled_for == run.scheduled_for)
                .order_by(runs.c.attempt)
            ).all()
        return RunRelations(
            previous_id,
            next_id,
            tuple(
                RecentRun(run_id, run.job_id, _STATUSES[status], at, seconds)
                for run_id, status, at, seconds in attempts
            ),
        )


def _older_active(window: RunWindow, *columns: Any) -> Select[Any]:
    """The few runs still going that were scheduled before the scan's reach (the active runs' partial index):
    read first, so that the cap never cuts them for newer ones."""
    query = select(*columns).where(text(ACTIVE_SQL), runs.c.scheduled_for < window.since - LONGEST_SPAN)
    return _job_contains(query, window).limit(window.limit)


def _newest_overlapping(window: RunWindow, limit: int, *columns: Any) -> Select[Any]:
    """One range scan of ``ix_ck_runs_scheduled_for``, newest first: the runs scheduled in the window, and
    those scheduled up to ``LONGEST_SPAN`` before it that had not ended when it began."""
    since = window.since
    query = (
        select(*(columns or (runs.c.job_id,)))
        .where(
            runs.c.scheduled_for >= since - LONGEST_SPAN,
            runs.c.scheduled_for < window.until,
            or_(runs.c.scheduled_for >= since, runs.c.finished_at.is_(None), runs.c.finished_at >= since),
        )
        # The id breaks ties (many jobs fire on the same minute), so that both reads of the scan stop at
        # the same run.
        .order_by(runs.c.scheduled_for.desc(), runs.c.id.desc())
        .limit(limit)
    )
    return _job_contains(query, window)


def _job_contains(query: Select[Any], window: RunWindow) -> Select[Any]:
    if not window.job_contains:
        return query
    return query.where(runs.c.job_id.icontains(window.job_contains, autoescape=True))


def job_page_query(page: JobPageFilter, after_id: str | None, limit: int) -> Select[Any]:
    """A page of jobs in id order, filtered in SQL; a tag only roughly (``_has_tag`` finishes the job)."""
    query = select(*_JOB_COLUMNS).order_by(jobs.c.id).limit(limit)
    if after_id is not None:
        query = query.where(jobs.c.id > after_id)
    if page.state is JobState.DISABLED:
        query = query.where(not_(jobs.c.enabled))
    elif page.state is not None:
        query = query.where(jobs.c.enabled, jobs.c.paused == (page.state is JobState.PAUSED))
    if page.search:
        query = query.where(
            or_(
                jobs.c.id.icontains(page.search, autoescape=True),
                jobs.c.name.icontains(page.search, autoescape=True),
            )
        )
    if page.tag:
        # Specs are stored as JSON text with default escaping: the tag appears as its JSON string.
        query = query.where(cast(jobs.c.spec, Text).contains(json.dumps(page.tag), autoescape=True))
    return query


@functools.lru_cache(maxsize=256)
def recent_runs_query(dialect: str, jobs_count: int) -> Select[Any] | CompoundSelect[Any]:
    """``SELECT … FROM (SELECT … WHERE job_id = :job_0 ORDER BY id DESC LIMIT :per_job) UNION ALL …``: each
    arm is a backward walk of ``ix_ck_runs_job_id_id`` that stops after ``per_job`` rows, on SQLite and
    PostgreSQL alike.  Built once per shape: building and keying 50 subqueries costs more than running them.
    Durations are computed by the database, which saves converting two instants per run in Python."""
    columns = (
        runs.c.id,
        runs.c.job_id,
        runs.c.status,
        type_coerce(
            func.coalesce(runs.c.finished_at, runs.c.started_at, runs.c.scheduled_for), UTCDateTime()
        ).label("at"),
        seconds_between(dialect, runs.c.started_at, runs.c.finished_at).label("seconds"),
    )
    arms = [
        select(*columns)
        .where(runs.c.job_id == bindparam(f"job_{i}"))
        .order_by(runs.c.id.desc())
        .limit(bindparam("per_job", type_=Integer))
        .subquery()
        for i in range(jobs_count)
    ]
    if len(arms) == 1:
        return select(arms[0])
    return union_all(*(select(arm) for arm in arms))


def _has_tag(spec: Any, tag: str | None) -> bool:
    if not tag:
        return True
    tags = spec.get("tags") if isinstance(spec, dict) else None
    return isinstance(tags, list) and tag in tags
