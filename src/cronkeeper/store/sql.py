"""The JobStore on SQLAlchemy Core: SQLite (default) and PostgreSQL."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from cronkeeper.exceptions import (
    ConflictError,
    JobExistsError,
    JobNotFoundError,
    RunNotFoundError,
    StoreError,
)
from cronkeeper.models import OUTCOME_FIELDS, Job, JobSpec, Run, RunStatus, TriggerSource
from cronkeeper.specs import spec_to_dict
from cronkeeper.store.base import Checkin, ClaimResult, Completion, JobStore, NewJob, RunFilter
from cronkeeper.store.batch import BatchStatement, KeyLookup
from cronkeeper.store.checkins import record_checkin
from cronkeeper.store.claims import Claimer
from cronkeeper.store.engines import open_engine, reading, writing
from cronkeeper.store.incidents import (
    FinalOutcome,
    any_long_runs,
    any_overdue,
    any_silent_checkins,
    end_silent_checkins,
    flag_long_runs,
    flag_overdue,
    may_change_incidents,
    run_outcome,
    track_outcomes,
)
from cronkeeper.store.rows import (
    ACTIVE,
    ACTIVE_RUN,
    WAITING_ITS_TURN,
    AnyRow,
    SpecCache,
    job_runs_here,
    run_from_row,
    run_of_job_elsewhere,
)
from cronkeeper.store.schema import UTCDateTime, incidents, jobs, nodes, runs

log = logging.getLogger(__name__)

# PostgreSQL NOTIFY channel on which every process announces changes, so the others wake at once.
CHANGES_CHANNEL = "cronkeeper_changes"


class SqlJobStore(JobStore):
    """A JobStore on one SQLAlchemy engine; safe to share between threads."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = open_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        # Parsed specs by job id and version: claims happen constantly, and parsing a cron expression is not
        # free.  A new version (any edit) replaces the entry.
        self._specs = SpecCache()
        self.alerts_written = threading.Event()
        self._claimer = Claimer(self.engine.dialect, self._specs)
        dialect = self.engine.dialect
        # Read before every start of runs claimed ahead, for as many jobs as are due together.
        self._versions = KeyLookup(
            dialect, lambda keys: select(jobs.c.id, jobs.c.version).where(jobs.c.id.in_(keys))
        )
        # An outcome write's runs, still this owner's and active, locked (PostgreSQL) until it commits.
        self._live_runs = KeyLookup(
            dialect,
            lambda keys: (
                select(*_LIVE_COLUMNS)
                .where(runs.c.id.in_(keys), runs.c.owner == bindparam("owner", None), ACTIVE_RUN)
                .with_for_update()
            ),
            params=["owner"],
        )
        self._stored_instant = functools.partial(UTCDateTime().process_result_value, dialect=dialect)
        self._insert_jobs = BatchStatement(
            dialect, insert(jobs).values({n: bindparam(n) for n in _JOB_COLUMNS})
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
        self._progress_runs = BatchStatement(
            dialect,
            update(runs)
            .where(
                runs.c.id == bindparam("rid"),
                runs.c.owner == bindparam("owner"),
                runs.c.status == RunStatus.RUNNING.value,
            )
            .values(output=bindparam("output")),
        )
        self._finish_runs = BatchStatement(
            dialect,
            update(runs)
            .where(runs.c.id == bindparam("rid"))
            .values({n: bindparam(n) for n in _OUTCOME_FIELDS}),
        )

    def _alerts_written(self) -> None:
        self.alerts_written.set()

    def _write(self) -> AbstractContextManager[Connection]:
        return writing(self.engine)

    def _read(self) -> AbstractContextManager[Connection]:
        return reading(self.engine)

    # ---- jobs -------------------------------------------------------------------------------------------

    def add_job(
        self,
        spec: JobSpec,
        *,
        next_fire_at: datetime | None,
        next_due_at: datetime | None,
        now: datetime,
        by: str | None,
        origin: str,
        paused: bool = False,
        runs_on: str | None = None,
    ) -> Job:
        new = NewJob(spec.id, spec.name, spec_to_dict(spec), next_fire_at, next_due_at, paused, runs_on)
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
                "next_due_at": new.next_due_at,
                "origin": origin,
                "runs_on": new.runs_on,
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
        next_due_at: datetime | None,
        now: datetime,
        by: str | None,
        expected_version: int | None = None,
        enabled: bool | None = None,
    ) -> Job:
        values: dict[str, Any] = {
            "name": spec.name,
            "spec": spec_to_dict(spec),
            "next_fire_at": next_fire_at,
            "next_due_at": next_due_at,
            "updated_at": now,
            "updated_by": by,
            "version": jobs.c.version + 1,
        }
        if enabled is not None:
            values["enabled"] = enabled
        with self._write() as conn:
            statement = update(jobs).where(_version_matches(spec.id, expected_version)).values(values)
            if conn.execute(statement).rowcount == 0:
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
        next_due_at: datetime | None,
        now: datetime,
        by: str | None,
        expected_version: int | None = None,
    ) -> Job:
        with self._write() as conn:
            result = conn.execute(
                update(jobs)
                .where(_version_matches(job_id, expected_version))
                .values(
                    paused=paused,
                    next_fire_at=next_fire_at,
                    next_due_at=next_due_at,
                    updated_at=now,
                    updated_by=by,
                    version=jobs.c.version + 1,
                )
            )
            if result.rowcount == 0:
                self._raise_missing_or_conflict(conn, job_id)
        return self.get_job(job_id)

    def set_declared(self, job_id: str, *, origin: str, runs_on: str | None) -> Job:
        with self._write() as conn:
            statement = update(jobs).where(jobs.c.id == job_id).values(origin=origin, runs_on=runs_on)
            if conn.execute(statement).rowcount == 0:
                raise JobNotFoundError(job_id)
        return self.get_job(job_id)

    def job_versions(self, job_ids: Sequence[str]) -> dict[str, int]:
        if not job_ids:
            return {}
        with self._read() as conn:
            return {row[0]: row[1] for row in self._versions.rows(conn, job_ids)}

    def find_job(self, job_id: str) -> Job | None:
        with self._read() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else self._job(row)

    def find_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        if not job_ids:
            return []
        with self._read() as conn:
            rows = {row.id: row for row in conn.execute(select(jobs).where(jobs.c.id.in_(list(job_ids))))}
        return [self._job(rows[job_id]) for job_id in job_ids if job_id in rows]

    def list_jobs(self, *, include_disabled: bool = True) -> list[Job]:
        query = select(jobs).order_by(jobs.c.id)
        if not include_disabled:
            query = query.where(jobs.c.enabled)
        with self._read() as conn:
            return [self._job(row) for row in conn.execute(query)]

    def delete_job(self, job_id: str, *, expected_version: int | None = None) -> None:
        with self._write() as conn:
            if conn.execute(delete(jobs).where(_version_matches(job_id, expected_version))).rowcount == 0:
                self._raise_missing_or_conflict(conn, job_id)
            conn.execute(delete(runs).where(runs.c.job_id == job_id, runs.c.status.not_in(ACTIVE)))
            # Its incidents go with its history: a new job of the same id starts with none open.
            conn.execute(delete(incidents).where(incidents.c.job_id == job_id))
            # Runs still going are asked to stop, and keep their rows until their owners record the end.
            conn.execute(
                update(runs).where(runs.c.job_id == job_id, ACTIVE_RUN).values(cancel_requested=True)
            )
        self._specs.forget(job_id)

    def _job(self, row: AnyRow) -> Job:
        return Job(
            spec=self._specs.get(row.id, row.version, row.spec),
            enabled=row.enabled,
            paused=row.paused,
            next_fire_at=row.next_fire_at,
            next_due_at=row.next_due_at,
            version=row.version,
            origin=row.origin,
            created_at=row.created_at,
            updated_at=row.updated_at,
            created_by=row.created_by,
            updated_by=row.updated_by,
            runs_on=row.runs_on,
        )

    # ---- the loop --------------------------------------------------------------------------------------

    def claim_due(
        self,
        *,
        now: datetime,
        owner: str,
        limit: int,
        horizon: datetime | None = None,
        instance_id: str | None = None,
    ) -> ClaimResult:
        with self._write() as conn:
            result = self._claimer.claim(
                conn,
                now=now,
                owner=owner,
                limit=limit,
                horizon=now if horizon is None else max(horizon, now),
                instance_id=instance_id,
            )
            missed = [run_outcome(run) for run in result.recorded if run.status is RunStatus.MISSED]
            if missed and track_outcomes(conn, missed, now=now):
                self._alerts_written()
            return result

    def flag_long_runs(self, *, now: datetime, owner: str) -> int:
        with self._read() as conn:
            if not any_long_runs(conn, now=now, owner=owner):
                return 0
        with self._write() as conn:
            written = flag_long_runs(conn, now=now, owner=owner)
        if written:
            self._alerts_written()
        return written

    def flag_overdue(self, *, now: datetime, margin: timedelta) -> int:
        # A read first: on nearly every look nothing is overdue, and then no write lock is taken.
        with self._read() as conn:
            overdue = any_overdue(conn, now=now, margin=margin)
            silent = any_silent_checkins(conn, now=now)
        if not overdue and not silent:
            return 0
        with self._write() as conn:
            written = flag_overdue(conn, now=now, margin=margin) if overdue else 0
            written += end_silent_checkins(conn, now=now) if silent else 0
        if written:
            self._alerts_written()
        return written

    def next_due_at(self, *, instance_id: str | None = None) -> datetime | None:
        job_query, run_query = _next_due_queries(instance_id)
        with self._read() as conn:
            job_due = conn.execute(job_query).scalar()
            run_due = conn.execute(run_query).scalar()
        candidates = [instant for instant in (job_due, run_due) if instant is not None]
        return min(candidates, default=None)

    def count_due(self, *, until: datetime, limit: int, instance_id: str | None = None) -> int:
        due = (
            select(jobs.c.id)
            .where(jobs.c.next_due_at <= until, job_runs_here(instance_id))
            .limit(limit)
            .subquery()
        )
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(due)).scalar_one())

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

    def settle_claimed(
        self, skipped: Sequence[tuple[int, str]], dropped: Sequence[int], *, owner: str, now: datetime
    ) -> list[Run]:
        held = (runs.c.owner == owner, runs.c.status == RunStatus.QUEUED.value)
        with self._write() as conn:
            if skipped:
                conn.execute(
                    update(runs)
                    .where(runs.c.id == bindparam("rid"), *held)
                    .values(status=RunStatus.SKIPPED.value, finished_at=now, error=bindparam("reason")),
                    [{"rid": run_id, "reason": reason} for run_id, reason in skipped],
                )
            if dropped:
                conn.execute(delete(runs).where(runs.c.id.in_(list(dropped)), *held))
            if not skipped:
                return []
            ids = [run_id for run_id, _ in skipped]
            rows = conn.execute(
                select(runs).where(runs.c.id.in_(ids), runs.c.status == RunStatus.SKIPPED.value)
            )
            return [run_from_row(row) for row in rows]

    def record_started(self, started: Sequence[tuple[int, datetime]], *, owner: str) -> None:
        if not started:
            return
        with self._write() as conn:
            self._start_runs.execute(
                conn, [{"rid": run_id, "at": at, "owner": owner} for run_id, at in started]
            )

    def record_progress(self, progress: Sequence[tuple[int, str]], *, owner: str) -> None:
        # The status condition is the fence against a final outcome: on PostgreSQL an update that waited for
        # the outcome's row lock checks it again on the row as the outcome left it.
        if not progress:
            return
        with self._write() as conn:
            self._progress_runs.execute(
                conn, [{"rid": run_id, "output": output, "owner": owner} for run_id, output in progress]
            )

    def record_finished(self, completions: Sequence[Completion], *, owner: str, now: datetime) -> list[int]:
        if not completions:
            return []
        with self._write() as conn:
            ids = [completion.run_id for completion in completions]
            live = {row[0]: _LiveRun._make(row) for row in self._live_runs.rows(conn, ids, owner=owner)}
            accepted = [completion for completion in completions if completion.run_id in live]
            self._finish_runs.execute(conn, [_outcome_values(completion) for completion in accepted])
            instant = self._stored_instant
            retries = [
                _retry_row(live[c.run_id], instant, c, now) for c in accepted if c.retry_at is not None
            ]
            if retries:
                conn.execute(insert(runs), retries)
                # Other nodes learn of the retry when this commits, and wake for its due time; nothing
                # else would tell them before their next poll.
                self._notify(conn)
            finished = [completion for completion in accepted if completion.retry_at is None]
            if may_change_incidents(
                conn, ((live[c.run_id].job_id, c.status, c.reports_every_run) for c in finished)
            ) and track_outcomes(conn, [_final(live[c.run_id], instant, c) for c in finished], now=now):
                self._alerts_written()
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
                    select(runs.c.id).where(runs.c.owner == owner, ACTIVE_RUN, runs.c.cancel_requested)
                )
            ]

    def database_time(self) -> datetime | None:
        if self.engine.dialect.name != "postgresql":
            return None
        with self._read() as conn:
            found = conn.execute(text("SELECT now()")).scalar_one()
        assert isinstance(found, datetime)
        return found.astimezone(UTC)

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
                    .where(ACTIVE_RUN, runs.c.owner.is_not(None), dead_owner)
                )
            ]
            if not ids:
                return []
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids), ACTIVE_RUN)
                .values(
                    status=RunStatus.LOST.value,
                    finished_at=now,
                    error="lost: the process that owned this run stopped without finishing it",
                )
            )
            lost = [run_from_row(row) for row in conn.execute(select(runs).where(runs.c.id.in_(ids)))]
            if track_outcomes(conn, [run_outcome(run) for run in lost], now=now):
                self._alerts_written()
            return lost

    # ---- runs ------------------------------------------------------------------------------------------

    def enqueue_run(
        self, job_id: str, *, now: datetime, trigger_source: TriggerSource, triggered_by: str | None
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
                    "trigger_source": trigger_source.value,
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

    def record_checkin(self, checkin: Checkin, *, now: datetime) -> Run:
        with self._write() as conn:
            run, written = record_checkin(conn, checkin, now=now)
        if written:
            self._alerts_written()
        return run

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
            conn.execute(update(runs).where(runs.c.id.in_(ids), ACTIVE_RUN).values(cancel_requested=True))

    def get_run(self, run_id: int) -> Run:
        with self._read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFoundError(run_id)
        return run_from_row(row)

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
        if run_filter.since is not None:
            query = query.where(runs.c.scheduled_for >= run_filter.since)
        if run_filter.until is not None:
            query = query.where(runs.c.scheduled_for < run_filter.until)
        with self._read() as conn:
            return [run_from_row(row) for row in conn.execute(query)]

    def announce_change(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return  # SQLite: other processes poll
        with self._write() as conn:
            self._notify(conn)

    def _notify(self, conn: Connection) -> None:
        """Wake the other nodes when the transaction commits (PostgreSQL; on SQLite they poll)."""
        if self.engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANGES_CHANNEL})

    def watch_changes(self, on_change: Callable[[], None], stop: threading.Event) -> threading.Thread | None:
        if self.engine.dialect.name != "postgresql":
            return None
        thread = threading.Thread(
            target=self._watch, args=(on_change, stop), name="cronkeeper-listen", daemon=True
        )
        thread.start()
        return thread

    def _watch(self, on_change: Callable[[], None], stop: threading.Event) -> None:
        """LISTEN on a connection of its own; reconnect after a failure, never give up while running."""
        import psycopg  # only PostgreSQL URLs get here, and psycopg is their driver

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANGES_CHANNEL}")
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            on_change()
            except psycopg.Error as exc:
                log.warning("listening for changes failed (%s); retrying", exc)
                stop.wait(1.0)

    def close(self) -> None:
        self.engine.dispose()


@functools.lru_cache(maxsize=64)
def _next_due_queries(instance_id: str | None) -> tuple[Select[Any], Select[Any]]:
    """The loop's two questions at every pass, built once per scheduler object: the earliest due job, in
    index order, passing over jobs only another scheduler object can run; the earliest queued run."""
    job_due = (
        select(jobs.c.next_due_at)
        .where(jobs.c.next_due_at.is_not(None), job_runs_here(instance_id))
        .order_by(jobs.c.next_due_at)
        .limit(1)
    )
    run_due = select(func.min(runs.c.due_at)).where(
        runs.c.status == RunStatus.QUEUED.value,
        runs.c.owner.is_(None),
        ~run_of_job_elsewhere(instance_id),
        ~WAITING_ITS_TURN,
    )
    return job_due, run_due


def _version_matches(job_id: str, expected_version: int | None) -> ColumnElement[bool]:
    """The job, and only at ``expected_version`` when one is given: the check and the write are one statement,
    so a change landing in between cannot slip past it.  A version the column cannot hold (it is a 32-bit
    integer on PostgreSQL) matches nothing rather than reaching the database as an error."""
    condition = jobs.c.id == job_id
    if expected_version is None:
        return condition
    if not 0 < expected_version <= _MAX_VERSION:
        return and_(condition, false())
    return and_(condition, jobs.c.version == expected_version)


_MAX_VERSION = 2**31 - 1


# Ids per IN (...) list: SQLite allows 32,766 parameters in a statement.
_ID_CHUNK = 10_000


_JOB_COLUMNS = (
    "id",
    "name",
    "spec",
    "enabled",
    "paused",
    "next_fire_at",
    "next_due_at",
    "origin",
    "runs_on",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
)

# The columns an outcome writes: the run's status and times, and every field of its RunOutcome.
_OUTCOME_FIELDS = ("status", "started_at", "finished_at", *OUTCOME_FIELDS)


def _outcome_values(completion: Completion) -> dict[str, Any]:
    """The parameters of one outcome's update; per run on the hot path, so getattr over the names known
    in advance (``dataclasses.asdict`` would deep-copy every result)."""
    outcome = completion.outcome
    values = {name: getattr(outcome, name) for name in OUTCOME_FIELDS}
    values["status"] = completion.status.value
    values["started_at"] = completion.started_at
    values["finished_at"] = completion.finished_at
    values["rid"] = completion.run_id
    return values


# What an outcome write reads of its runs (as _LiveRun).
_LIVE_COLUMNS = (runs.c.id, runs.c.job_id, runs.c.scheduled_for, runs.c.attempt, runs.c.triggered_by)


class _LiveRun(NamedTuple):
    """A run an outcome is written for, as the driver read it: ``scheduled_for`` is the stored form (text on
    SQLite), converted only for the few outcomes that need it (a retry, an incident)."""

    id: int
    job_id: str
    scheduled_for: Any
    attempt: int
    triggered_by: str | None


def _final(row: _LiveRun, instant: Callable[[Any], datetime | None], completion: Completion) -> FinalOutcome:
    outcome = completion.outcome
    scheduled_for = instant(row.scheduled_for)
    assert scheduled_for is not None
    return FinalOutcome(
        run_id=row.id,
        job_id=row.job_id,
        status=completion.status,
        scheduled_for=scheduled_for,
        attempt=row.attempt,
        started_at=completion.started_at,
        finished_at=completion.finished_at,
        triggered_by=row.triggered_by,
        exit_code=outcome.exit_code,
        error=outcome.error,
        output=outcome.output,
        reports_every_run=completion.reports_every_run,
    )


def _retry_row(
    parent: _LiveRun, instant: Callable[[Any], datetime | None], completion: Completion, now: datetime
) -> dict[str, Any]:
    return {
        "job_id": parent.job_id,
        "scheduled_for": instant(parent.scheduled_for),
        "attempt": parent.attempt + 1,
        "parent_run_id": parent.id,
        "trigger_source": TriggerSource.RETRY.value,
        # A retry of a run someone asked for is still theirs.
        "triggered_by": parent.triggered_by,
        "status": RunStatus.QUEUED.value,
        "due_at": completion.retry_at,
        "queued_at": now,
    }
