"""The JobStore on SQLAlchemy Core: SQLite (default) and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from cronkeeper.exceptions import (
    ConflictError,
    JobExistsError,
    JobNotFoundError,
    RunNotFoundError,
    StoreError,
)
from cronkeeper.models import ACTIVE_STATUSES, Job, JobSpec, Overlap, Run, RunStatus, TriggerSource
from cronkeeper.planning import FirePlan, PlannedRun, free_slots, skip_reason
from cronkeeper.specs import build_spec, spec_to_dict
from cronkeeper.store.base import ClaimResult, Completion, JobStore, NewJob, Planner, RunFilter, StartOrder
from cronkeeper.store.batch import BatchStatement
from cronkeeper.store.engines import open_engine
from cronkeeper.store.schema import jobs, nodes, runs

log = logging.getLogger(__name__)

# When a job's fires cannot be planned (a bug, or a schedule that fails to compute), when to try again.
PLAN_RETRY = timedelta(minutes=1)
PLAN_FAILED = FirePlan()

# Rows of any shape: the store reads columns by name.
AnyRow = Row[*tuple[Any, ...]]

ACTIVE = [status.value for status in ACTIVE_STATUSES]
_active = runs.c.status.in_(ACTIVE)


class SqlJobStore(JobStore):
    """A JobStore on one SQLAlchemy engine; safe to share between threads."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = open_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        # Parsed specs by job id and version: claims happen constantly, and parsing a cron expression is not
        # free.  A new version (any edit) replaces the entry.
        self._specs: dict[str, tuple[int, JobSpec]] = {}
        dialect = self.engine.dialect
        self._insert_runs = BatchStatement(dialect, _insert_ignoring_duplicates(dialect.name, _RUN_COLUMNS))
        self._insert_jobs = BatchStatement(
            dialect, insert(jobs).values({n: bindparam(n) for n in _JOB_COLUMNS})
        )
        self._advance_jobs = BatchStatement(
            dialect,
            update(jobs)
            .where(jobs.c.id == bindparam("job"))
            .values(next_fire_at=bindparam("fire"), next_run_at=bindparam("run")),
        )
        self._start_runs = BatchStatement(
            dialect,
            update(runs)
            .where(
                runs.c.id == bindparam("rid"),
                runs.c.owner == bindparam("owner"),
                runs.c.status == RunStatus.QUEUED.value,
            )
            .values(status=RunStatus.RUNNING.value, started_at=bindparam("at")),
        )
        self._finish_runs = BatchStatement(
            dialect,
            update(runs)
            .where(runs.c.id == bindparam("rid"))
            .values({n: bindparam(n) for n in _OUTCOME_FIELDS}),
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database write failed: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn.execution_options(ck_read=True)
        except SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {exc}") from exc

    # ---- jobs -------------------------------------------------------------------------------------------

    def add_job(
        self,
        spec: JobSpec,
        *,
        next_fire_at: datetime | None,
        next_run_at: datetime | None,
        now: datetime,
        by: str | None,
        origin: str,
        paused: bool = False,
    ) -> Job:
        new = NewJob(spec.id, spec.name, spec_to_dict(spec), next_fire_at, next_run_at, paused)
        self.add_jobs([new], now=now, by=by, origin=origin)
        return self.get_job(spec.id)

    def add_jobs(self, new_jobs: Sequence[NewJob], *, now: datetime, by: str | None, origin: str) -> None:
        rows = [
            {
                "id": new.id,
                "name": new.name,
                "spec": new.spec,
                "enabled": True,
                "paused": new.paused,
                "next_fire_at": new.next_fire_at,
                "next_run_at": new.next_run_at,
                "origin": origin,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "created_by": by,
                "updated_by": by,
            }
            for new in new_jobs
        ]
        with self._write() as conn:
            ids = [row["id"] for row in rows]
            for start in range(0, len(ids), _ID_CHUNK):
                taken = conn.execute(
                    select(jobs.c.id).where(jobs.c.id.in_(ids[start : start + _ID_CHUNK]))
                ).first()
                if taken is not None:
                    raise JobExistsError(taken.id)
            self._insert_jobs.execute(conn, rows)

    def update_job(
        self,
        spec: JobSpec,
        *,
        next_fire_at: datetime | None,
        next_run_at: datetime | None,
        now: datetime,
        by: str | None,
        expected_version: int | None = None,
        enabled: bool | None = None,
        origin: str | None = None,
    ) -> Job:
        values: dict[str, Any] = {
            "name": spec.name,
            "spec": spec_to_dict(spec),
            "next_fire_at": next_fire_at,
            "next_run_at": next_run_at,
            "updated_at": now,
            "updated_by": by,
            "version": jobs.c.version + 1,
        }
        if enabled is not None:
            values["enabled"] = enabled
        if origin is not None:
            values["origin"] = origin
        condition = jobs.c.id == spec.id
        if expected_version is not None:
            condition = and_(condition, jobs.c.version == expected_version)
        with self._write() as conn:
            if conn.execute(update(jobs).where(condition).values(values)).rowcount == 0:
                self._raise_missing_or_conflict(conn, spec.id)
        return self.get_job(spec.id)

    def _raise_missing_or_conflict(self, conn: Connection, job_id: str) -> None:
        if conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
            raise JobNotFoundError(job_id)
        raise ConflictError(f"job {job_id!r} was changed by someone else; reload and try again")

    def set_paused(
        self,
        job_id: str,
        paused: bool,
        *,
        next_fire_at: datetime | None,
        next_run_at: datetime | None,
        now: datetime,
        by: str | None,
    ) -> Job:
        with self._write() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    paused=paused,
                    next_fire_at=next_fire_at,
                    next_run_at=next_run_at,
                    updated_at=now,
                    updated_by=by,
                    version=jobs.c.version + 1,
                )
            )
            if result.rowcount == 0:
                raise JobNotFoundError(job_id)
        return self.get_job(job_id)

    def find_job(self, job_id: str) -> Job | None:
        with self._read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else self._job(row)

    def list_jobs(self, *, include_disabled: bool = True) -> list[Job]:
        query = select(jobs).order_by(jobs.c.id)
        if not include_disabled:
            query = query.where(jobs.c.enabled)
        with self._read() as conn:
            return [self._job(row) for row in conn.execute(query)]

    def delete_job(self, job_id: str) -> None:
        with self._write() as conn:
            if conn.execute(delete(jobs).where(jobs.c.id == job_id)).rowcount == 0:
                raise JobNotFoundError(job_id)
            conn.execute(delete(runs).where(runs.c.job_id == job_id, runs.c.status.not_in(ACTIVE)))
            # Runs still going are asked to stop, and keep their rows until their owners record the end.
            conn.execute(update(runs).where(runs.c.job_id == job_id, _active).values(cancel_requested=True))
        self._specs.pop(job_id, None)

    def _spec(self, job_id: str, version: int, data: dict[str, Any]) -> JobSpec:
        cached = self._specs.get(job_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        # Stored specs were validated when saved and carry their zone and anchor, so no defaults apply.
        spec = build_spec(data, now=datetime.fromisoformat("2000-01-01T00:00:00+00:00"))
        self._specs[job_id] = (version, spec)
        return spec

    def _job(self, row: AnyRow) -> Job:
        return Job(
            spec=self._spec(row.id, row.version, row.spec),
            enabled=row.enabled,
            paused=row.paused,
            next_fire_at=row.next_fire_at,
            next_run_at=row.next_run_at,
            version=row.version,
            origin=row.origin,
            created_at=row.created_at,
            updated_at=row.updated_at,
            created_by=row.created_by,
            updated_by=row.updated_by,
        )

    # ---- the loop --------------------------------------------------------------------------------------

    def claim_due(
        self, *, now: datetime, owner: str, limit: int, planner: Planner, horizon: datetime | None = None
    ) -> ClaimResult:
        horizon = now if horizon is None else max(horizon, now)
        with self._write() as conn:
            due = conn.execute(
                select(jobs.c.id, jobs.c.version, jobs.c.next_fire_at, jobs.c.next_run_at)
                .where(jobs.c.next_run_at <= horizon)
                .order_by(jobs.c.next_run_at)
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
                .where(runs.c.status == RunStatus.QUEUED.value, runs.c.owner.is_(None), runs.c.due_at <= now)
                .order_by(runs.c.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            queued = self._queued_of_lockable_jobs(conn, queued, {row.id for row in due})
            if not due and not queued:
                return ClaimResult()
            job_ids = {row.id for row in due} | {row.job_id for row in queued}
            active = self._active_counts(conn, job_ids)
            specs = self._specs_of(
                conn, [(row.id, row.version) for row in due], {row.job_id for row in queued}
            )
            result = ClaimResult()
            self._claim_jobs(conn, due, specs, active, result, now=now, owner=owner, planner=planner)
            self._claim_queued(conn, queued, specs, active, result, now=now, owner=owner)
        return result

    def _specs_of(
        self, conn: Connection, versions: list[tuple[str, int]], other_ids: set[str]
    ) -> dict[str, JobSpec]:
        """Specs of the given jobs, from the cache when its version is current; one query for the rest."""
        specs: dict[str, JobSpec] = {}
        missing = set(other_ids)
        for job_id, version in versions:
            cached = self._specs.get(job_id)
            if cached is not None and cached[0] == version:
                specs[job_id] = cached[1]
            else:
                missing.add(job_id)
        missing -= specs.keys()
        if missing:
            rows = conn.execute(select(jobs.c.id, jobs.c.version, jobs.c.spec).where(jobs.c.id.in_(missing)))
            specs.update({row.id: self._spec(row.id, row.version, row.spec) for row in rows})
        return specs

    def _active_counts(self, conn: Connection, job_ids: set[str]) -> dict[str, int]:
        rows = conn.execute(
            select(runs.c.job_id, func.count())
            .where(runs.c.job_id.in_(job_ids), _active, runs.c.owner.is_not(None))
            .group_by(runs.c.job_id)
        )
        counts = dict.fromkeys(job_ids, 0)
        counts.update({row[0]: row[1] for row in rows})
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
        planner: Planner,
    ) -> None:
        inserts: list[dict[str, Any]] = []
        advances: list[dict[str, Any]] = []
        replaced: list[str] = []
        for row in due:
            plan = _plan_job(row, specs[row.id], active[row.id], now, planner)
            if plan is None:
                continue
            if plan is PLAN_FAILED:  # look at the job again later
                advances.append({"job": row.id, "fire": row.next_fire_at, "run": now + PLAN_RETRY})
                continue
            jitter = row.next_run_at - row.next_fire_at
            inserts.extend(_planned_row(row.id, planned, jitter, now, owner) for planned in plan.runs)
            advances.append({"job": row.id, "fire": plan.next_fire_at, "run": plan.next_run_at})
            if plan.replace_active:
                replaced.append(row.id)
        self._advance_jobs.execute(conn, advances)
        if replaced:
            result.to_cancel.extend(self._request_cancel_for_jobs(conn, replaced))
        for run_id, values in self._insert_planned(conn, inserts):
            job_id = values["job_id"]
            if values["status"] == RunStatus.QUEUED.value:
                active[job_id] += 1
                source = TriggerSource(values["trigger_source"])
                result.to_start.append(
                    StartOrder(run_id, specs[job_id], values["scheduled_for"], values["due_at"], 0, source)
                )
            else:
                result.recorded.append(_run_from_values(run_id, values))

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
        self._insert_runs.execute(conn, inserts)
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
                select(runs.c.id).where(runs.c.job_id.in_(job_ids), _active, runs.c.owner.is_not(None))
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
        for row in queued:
            spec = specs.get(row.job_id)
            verdict = _queued_verdict(row, spec, active, now)
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
            result.recorded.extend(_run(row) for row in conn.execute(select(runs).where(runs.c.id.in_(ids))))

    def next_due_at(self) -> datetime | None:
        with self._read() as conn:
            job_due = conn.execute(select(func.min(jobs.c.next_run_at))).scalar()
            run_due = conn.execute(
                select(func.min(runs.c.due_at)).where(
                    runs.c.status == RunStatus.QUEUED.value, runs.c.owner.is_(None)
                )
            ).scalar()
        candidates = [instant for instant in (job_due, run_due) if instant is not None]
        return min(candidates, default=None)

    def release_runs(self, run_ids: Sequence[int], *, owner: str) -> None:
        if not run_ids:
            return
        with self._write() as conn:
            conn.execute(
                update(runs)
                .where(
                    runs.c.id.in_(list(run_ids)),
                    runs.c.owner == owner,
                    runs.c.status == RunStatus.QUEUED.value,
                )
                .values(owner=None)
            )

    def record_started(self, started: Sequence[tuple[int, datetime]], *, owner: str) -> None:
        if not started:
            return
        with self._write() as conn:
            self._start_runs.execute(
                conn, [{"rid": run_id, "at": at, "owner": owner} for run_id, at in started]
            )

    def record_finished(self, completions: Sequence[Completion], *, owner: str, now: datetime) -> list[int]:
        if not completions:
            return []
        with self._write() as conn:
            ids = [completion.run_id for completion in completions]
            live = {
                row.id: row
                for row in conn.execute(
                    select(runs.c.id, runs.c.job_id, runs.c.scheduled_for, runs.c.attempt)
                    .where(runs.c.id.in_(ids), runs.c.owner == owner, _active)
                    .with_for_update()
                )
            }
            accepted = [completion for completion in completions if completion.run_id in live]
            self._finish_runs.execute(conn, [_outcome_values(completion) for completion in accepted])
            retries = [_retry_row(live[c.run_id], c, now) for c in accepted if c.retry_at is not None]
            if retries:
                conn.execute(insert(runs), retries)
        return [completion.run_id for completion in accepted]

    def heartbeat(self, *, owner: str, now: datetime, hostname: str, pid: int) -> list[int]:
        with self._write() as conn:
            if conn.execute(update(nodes).where(nodes.c.id == owner).values(heartbeat_at=now)).rowcount == 0:
                conn.execute(
                    insert(nodes).values(
                        id=owner, hostname=hostname, pid=pid, started_at=now, heartbeat_at=now
                    )
                )
            return [
                row.id
                for row in conn.execute(
                    select(runs.c.id).where(runs.c.owner == owner, _active, runs.c.cancel_requested)
                )
            ]

    def retire_node(self, *, owner: str, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(update(nodes).where(nodes.c.id == owner).values(stopped_at=now, heartbeat_at=now))

    def reap_lost(self, *, now: datetime, lease: timedelta) -> list[Run]:
        cutoff = now - lease
        dead_owner = or_(
            and_(nodes.c.id.is_(None), runs.c.queued_at < cutoff),
            nodes.c.heartbeat_at < cutoff,
            nodes.c.stopped_at.is_not(None),
        )
        with self._write() as conn:
            ids = [
                row.id
                for row in conn.execute(
                    select(runs.c.id)
                    .select_from(runs.outerjoin(nodes, nodes.c.id == runs.c.owner))
                    .where(_active, runs.c.owner.is_not(None), dead_owner)
                )
            ]
            if not ids:
                return []
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids), _active)
                .values(
                    status=RunStatus.LOST.value,
                    finished_at=now,
                    error="lost: the process that owned this run stopped without finishing it",
                )
            )
            return [_run(row) for row in conn.execute(select(runs).where(runs.c.id.in_(ids)))]

    # ---- runs ------------------------------------------------------------------------------------------

    def enqueue_run(
        self, job_id: str, *, now: datetime, source: TriggerSource, triggered_by: str | None
    ) -> int:
        with self._write() as conn:
            if conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
                raise JobNotFoundError(job_id)
            # A manual run is "for" the instant it was asked; should a scheduled fire (or another request)
            # hold that exact instant, the next free microsecond keeps (job, scheduled_for, attempt) unique.
            for nudge in range(100):
                row = {
                    "job_id": job_id,
                    "scheduled_for": now + timedelta(microseconds=nudge),
                    "attempt": 0,
                    "trigger_source": source.value,
                    "triggered_by": triggered_by,
                    "status": RunStatus.QUEUED.value,
                    "due_at": now,
                    "queued_at": now,
                }
                try:
                    with conn.begin_nested():
                        return int(conn.execute(insert(runs).returning(runs.c.id), row).scalar_one())
                except IntegrityError:
                    continue
        raise StoreError(f"could not queue a run of {job_id!r}: too many runs requested at {now.isoformat()}")

    def request_cancel(self, run_ids: Sequence[int], *, now: datetime) -> None:
        ids = list(run_ids)
        with self._write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids), runs.c.status == RunStatus.QUEUED.value, runs.c.owner.is_(None))
                .values(
                    status=RunStatus.CANCELLED.value, finished_at=now, error="cancelled before it started"
                )
            )
            conn.execute(update(runs).where(runs.c.id.in_(ids), _active).values(cancel_requested=True))

    def get_run(self, run_id: int) -> Run:
        with self._read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFoundError(run_id)
        return _run(row)

    def list_runs(self, run_filter: RunFilter) -> list[Run]:
        query = select(runs).order_by(runs.c.id.desc()).limit(run_filter.limit)
        if run_filter.job_id is not None:
            query = query.where(runs.c.job_id == run_filter.job_id)
        if run_filter.statuses:
            query = query.where(runs.c.status.in_([status.value for status in run_filter.statuses]))
        if run_filter.sources:
            query = query.where(runs.c.trigger_source.in_([source.value for source in run_filter.sources]))
        if run_filter.before_id is not None:
            query = query.where(runs.c.id < run_filter.before_id)
        with self._read() as conn:
            return [_run(row) for row in conn.execute(query)]

    def close(self) -> None:
        self.engine.dispose()


# Ids per IN (...) list: SQLite allows 32,766 parameters in a statement.
_ID_CHUNK = 10_000

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
_JOB_COLUMNS = (
    "id",
    "name",
    "spec",
    "enabled",
    "paused",
    "next_fire_at",
    "next_run_at",
    "origin",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
)

_OUTCOME_FIELDS = (
    "status",
    "started_at",
    "finished_at",
    "exit_code",
    "output",
    "error",
    "traceback",
    "result",
    "peak_memory_bytes",
    "cpu_time",
)


def _outcome_values(completion: Completion) -> dict[str, Any]:
    values = {name: getattr(completion, name) for name in _OUTCOME_FIELDS}
    values["status"] = completion.status.value
    values["rid"] = completion.run_id
    return values


def _retry_row(parent: AnyRow, completion: Completion, now: datetime) -> dict[str, Any]:
    return {
        "job_id": parent.job_id,
        "scheduled_for": parent.scheduled_for,
        "attempt": parent.attempt + 1,
        "parent_run_id": parent.id,
        "trigger_source": TriggerSource.RETRY.value,
        "status": RunStatus.QUEUED.value,
        "due_at": completion.retry_at,
        "queued_at": now,
    }


def _planned_row(
    job_id: str, planned: PlannedRun, jitter: timedelta, now: datetime, owner: str
) -> dict[str, Any]:
    queued = planned.status is RunStatus.QUEUED
    return {
        "job_id": job_id,
        "scheduled_for": planned.scheduled_for,
        "attempt": 0,
        "trigger_source": planned.source.value,
        "owner": owner if queued else None,
        "status": planned.status.value,
        "due_at": planned.scheduled_for + jitter,
        "queued_at": now,
        "finished_at": None if queued else now,
        "error": planned.error,
        "result": planned.result,
        "triggered_by": None,
        "parent_run_id": None,
    }


def _plan_job(row: AnyRow, spec: JobSpec, active: int, now: datetime, planner: Planner) -> FirePlan | None:
    """What to do with one due job: None to leave it for later, ``PLAN_FAILED`` if it could not be planned."""
    if row.next_run_at > now:
        # Claimed ahead of time: only fires that will certainly start, planned as if on time.  A job the
        # overlap policy would hold back now waits to be claimed when it is due.
        if free_slots(spec, active) == 0:
            return None
        at = row.next_fire_at
    else:
        at = now - (row.next_run_at - row.next_fire_at)  # lateness counts from the jittered due time
    try:
        return planner(spec, row.next_fire_at, at, active)
    except Exception:
        # One job whose schedule cannot be computed must not stop the others.
        log.exception("job %s: could not plan its fires; trying again in %s", row.id, PLAN_RETRY)
        return PLAN_FAILED


def _insert_ignoring_duplicates(dialect: str, columns: Sequence[str]) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for runs (both databases have it)."""
    values: dict[str, Any] = {name: bindparam(name) for name in columns}
    if dialect == "postgresql":
        return postgresql_insert(runs).values(values).on_conflict_do_nothing()
    return sqlite_insert(runs).values(values).on_conflict_do_nothing()


def _queued_verdict(
    row: AnyRow, spec: JobSpec | None, active: dict[str, int], now: datetime
) -> tuple[RunStatus, str] | None:
    """Why a queued run must not start now (a status and a message), or None if it may."""
    if spec is None:
        return RunStatus.SKIPPED, "not started: the job was removed"
    scheduled = row.trigger_source in (TriggerSource.SCHEDULE.value, TriggerSource.CATCHUP.value)
    if scheduled and now - row.due_at > spec.misfire_grace:
        # A scheduled run handed back at shutdown and not taken up in time is a misfire like any other.
        return RunStatus.MISSED, f"missed: not started within the misfire grace of its due time {row.due_at}"
    if free_slots(spec, active[row.job_id]) == 0:
        return RunStatus.SKIPPED, skip_reason(spec, active[row.job_id])
    return None


def _run_from_values(run_id: int, values: dict[str, Any]) -> Run:
    """The Run just inserted from ``values``, without reading it back."""
    return Run(
        id=run_id,
        job_id=values["job_id"],
        scheduled_for=values["scheduled_for"],
        attempt=values["attempt"],
        status=RunStatus(values["status"]),
        trigger_source=TriggerSource(values["trigger_source"]),
        due_at=values["due_at"],
        queued_at=values["queued_at"],
        finished_at=values["finished_at"],
        error=values["error"],
        result=values["result"],
    )


def _run(row: AnyRow) -> Run:
    return Run(
        id=row.id,
        job_id=row.job_id,
        scheduled_for=row.scheduled_for,
        attempt=row.attempt,
        status=RunStatus(row.status),
        trigger_source=TriggerSource(row.trigger_source),
        due_at=row.due_at,
        queued_at=row.queued_at,
        parent_run_id=row.parent_run_id,
        triggered_by=row.triggered_by,
        owner=row.owner,
        started_at=row.started_at,
        finished_at=row.finished_at,
        exit_code=row.exit_code,
        output=row.output,
        error=row.error,
        traceback=row.traceback,
        result=row.result,
        peak_memory_bytes=row.peak_memory_bytes,
        cpu_time=row.cpu_time,
    )
