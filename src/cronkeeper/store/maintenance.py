"""Pruning, backups and housekeeping on the scheduler's engine: the MaintenanceStore contract.

On SQLite every write takes the one write lock, which claims need too.  Pruning therefore never deletes with
one statement whatever matches: it picks the ids of a batch first (a read, which in WAL mode blocks no one),
deletes those ids in a short transaction, and pauses before the next one so that a claim waiting for the lock
(SQLite's busy handler polls every few milliseconds) takes it in between.  A batch that held the lock longer
than it should is followed by smaller ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, Table, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.engine import URL
from sqlalchemy.sql.elements import KeyedColumnElement

from cronkeeper.exceptions import StoreError
from cronkeeper.models import RunStatus
from cronkeeper.store.backup import (
    check_pg_archive,
    check_sqlite_file,
    pg_backup,
    pg_restore,
    sqlite_backup,
    sqlite_checkpoint,
    sqlite_optimize,
    sqlite_restore,
    sqlite_revision,
)
from cronkeeper.store.base import MaintenanceStore
from cronkeeper.store.engines import reading, writing
from cronkeeper.store.migrate import known_revision, upgrade
from cronkeeper.store.records import Housekeeping, PruneReport, Retention
from cronkeeper.store.schema import (
    alerts,
    audit_events,
    idempotency_keys,
    incidents,
    login_attempts,
    nodes,
    runs,
    sessions,
)

ENDED = [status.value for status in RunStatus if not status.is_active]
# The longest a delete transaction should hold SQLite's write lock (seconds): a fire claimed ahead of time
# starts from memory, but the loop's own writes (starts, outcomes) wait for the lock, and a fire is due to
# start within 50 ms of its time.  A batch that takes longer halves the next ones.
LOCK_BUDGET = 0.02
SMALLEST_BATCH = 50
# The pause after each delete transaction on SQLite (seconds): longer than the busy handler's polling steps
# (at most 25 ms in its first 100 ms of waiting), so that any writer that waited gets the lock first.
PAUSE = 0.03
# How long the TRUNCATE checkpoint may wait for readers while it holds the write lock (seconds).
CHECKPOINT_WAIT = 0.02

KeyColumns = Sequence[KeyedColumnElement[object]]


class SqlMaintenanceStore(MaintenanceStore):
    """Maintenance of the database behind ``engine`` (whose URL is ``url``)."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self._url = url
        self._sqlite = url.get_backend_name() == "sqlite"

    @property
    def file(self) -> Path | None:
        return Path(self._url.database) if self._sqlite and self._url.database else None

    @property
    def backup_suffix(self) -> str:
        return ".sqlite3" if self._sqlite else ".dump"

    # ---- pruning ---------------------------------------------------------------------------------------

    def prune(self, retention: Retention, *, batch_size: int, dry_run: bool = False) -> PruneReport:
        deleter = BatchDeleter(self.engine, batch_size, dry_run=dry_run, pause=PAUSE if self._sqlite else 0.0)
        run_rules = (_run_rule(self.engine, job_id, retention) for job_id in _run_job_ids(self.engine))
        before = retention.audit_before
        audit = (
            0
            if before is None
            else deleter.delete(audit_events, [audit_events.c.id], audit_events.c.at < before)
        )
        keys = idempotency_keys.c
        # Who was told what is kept as long as who changed what: alerts that ended, incidents that closed.
        ended = alerts.c.status.in_(["delivered", "failed"])
        return PruneReport(
            runs=sum(deleter.delete(runs, [runs.c.id], rule) for rule in run_rules if rule is not None),
            audit_events=audit,
            alerts=0
            if before is None
            else deleter.delete(alerts, [alerts.c.id], ended & (alerts.c.created_at < before)),
            incidents=0
            if before is None
            else deleter.delete(incidents, [incidents.c.id], incidents.c.closed_at < before),
            sessions=deleter.delete(
                sessions, [sessions.c.id_hash], sessions.c.expires_at <= retention.sessions_expired_by
            ),
            idempotency_keys=deleter.delete(
                idempotency_keys, [keys.actor, keys.key], keys.created_at < retention.idempotency_before
            ),
            login_attempts=deleter.delete(
                login_attempts, [login_attempts.c.id], login_attempts.c.at < retention.login_attempts_before
            ),
            nodes=deleter.delete(nodes, [nodes.c.id], nodes.c.heartbeat_at < retention.nodes_silent_since),
        )

    # ---- backups ---------------------------------------------------------------------------------------

    def backup(self, destination: Path) -> int:
        if self._sqlite:
            return sqlite_backup(self._file(), destination)
        return pg_backup(self._url, destination)

    def check_backup(self, source: Path) -> None:
        if not source.is_file():
            raise StoreError(f"{source} is not a file")
        if not self._sqlite:
            check_pg_archive(source)
            return
        check_sqlite_file(source)
        revision = sqlite_revision(source)
        if revision is None:
            raise StoreError(f"{source} is not a cronkeeper database (it has no cronkeeper tables)")
        if not known_revision(revision):
            raise StoreError(
                f"{source} was made by a newer cronkeeper (schema revision {revision}); upgrade cronkeeper"
            )

    def restore(self, source: Path) -> None:
        self.check_backup(source)
        self.engine.dispose()  # pooled connections are opened again on the restored database
        if self._sqlite:
            sqlite_restore(source, self._file())
        else:
            pg_restore(self._url, source)
        self.engine.dispose()
        upgrade(self.engine)
        self._end_interrupted()

    def _end_interrupted(self) -> None:
        """Runs the backup caught under way (the backup job's own, at least) were not lost by a crash: they
        were interrupted by the restore.  They end ``cancelled``, saying so, not ``lost``, which would alert
        as a failure when a scheduler starts."""
        with writing(self.engine) as conn:
            conn.execute(
                update(runs)
                .where(runs.c.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]))
                .values(
                    status=RunStatus.CANCELLED.value,
                    finished_at=func.coalesce(runs.c.started_at, runs.c.queued_at),
                    error="interrupted: the database was restored from a backup taken while it was active",
                )
            )

    # ---- housekeeping ----------------------------------------------------------------------------------

    def housekeep(self) -> Housekeeping:
        if not self._sqlite:
            return Housekeeping(done=False)
        path = self._file()
        sqlite_optimize(path)
        frames, copied, truncated = sqlite_checkpoint(path, busy_timeout=CHECKPOINT_WAIT)
        return Housekeeping(True, frames, copied, truncated)

    def _file(self) -> Path:
        path = self.file
        assert path is not None, "a SQLite database always has a file (in-memory ones are refused)"
        return path


class BatchDeleter:
    """Deletes the rows of a condition in short transactions of at most ``batch_size`` rows, keys first."""

    def __init__(self, engine: Engine, batch_size: int, *, dry_run: bool, pause: float) -> None:
        self.engine = engine
        self.batch_size = self.most = batch_size
        self.dry_run = dry_run
        self.pause = pause
        self._last_write_ended = 0.0

    def delete(self, table: Table, key: KeyColumns, condition: ColumnElement[bool]) -> int:
        """Delete every row of ``table`` matching ``condition`` (checked again as each batch is deleted, so a
        row that changed since it was picked stays); returns how many, or how many would go on a dry run."""
        if self.dry_run:
            with reading(self.engine) as conn:
                counted = conn.execute(select(func.count()).select_from(table).where(condition))
                return int(counted.scalar_one())
        total = 0
        while True:
            size = self.batch_size
            with reading(self.engine) as conn:
                picked = [tuple(row) for row in conn.execute(select(*key).where(condition).limit(size))]
            if not picked:
                return total
            deleted = self._delete(table, key, picked, condition)
            total += deleted
            # Fewer than asked: that was the last of them.  None deleted: another node prunes the same rows.
            if len(picked) < size or deleted == 0:
                return total

    def _delete(
        self, table: Table, key: KeyColumns, picked: list[tuple[object, ...]], condition: ColumnElement[bool]
    ) -> int:
        wait = self._last_write_ended + self.pause - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        matches = key[0].in_([row[0] for row in picked]) if len(key) == 1 else tuple_(*key).in_(picked)
        with writing(self.engine) as conn:
            began = time.monotonic()  # the transaction began (on SQLite: took the lock) as the block opened
            deleted = int(conn.execute(delete(table).where(matches, condition)).rowcount)
            held = time.monotonic() - began
        self._last_write_ended = time.monotonic()
        self._adapt(held)
        return deleted

    def _adapt(self, held: float) -> None:
        """Halve the batches after one that held the lock past the budget; grow them back after quick ones."""
        if held > LOCK_BUDGET:
            self.batch_size = max(SMALLEST_BATCH, self.batch_size // 2)
        elif held < LOCK_BUDGET / 4:
            self.batch_size = min(self.most, self.batch_size * 2)


def _run_job_ids(engine: Engine) -> Iterator[str]:
    """Every job id with runs (deleted jobs' leftovers too), one index lookup each, not a scan of the runs."""
    after: str | None = None
    while True:
        query = select(func.min(runs.c.job_id))
        if after is not None:
            query = query.where(runs.c.job_id > after)
        with reading(engine) as conn:
            job_id = conn.execute(query).scalar()
        if job_id is None:
            return
        yield job_id
        after = job_id


def _run_rule(engine: Engine, job_id: str, retention: Retention) -> ColumnElement[bool] | None:
    """Which runs of ``job_id`` may go: ended, not its latest, and old or beyond the newest it keeps."""
    reasons: list[ColumnElement[bool]] = []
    if retention.runs_before is not None:
        reasons.append(runs.c.scheduled_for < retention.runs_before)
    with reading(engine) as conn:
        latest = conn.execute(select(func.max(runs.c.id)).where(runs.c.job_id == job_id)).scalar()
        if retention.runs_per_job is not None:
            newest_dropped = conn.execute(
                select(runs.c.id)
                .where(runs.c.job_id == job_id)
                .order_by(runs.c.id.desc())
                .offset(retention.runs_per_job)
                .limit(1)
            ).scalar()
            if newest_dropped is not None:
                reasons.append(runs.c.id <= newest_dropped)
    if latest is None or not reasons:
        return None
    return and_(runs.c.job_id == job_id, runs.c.id < latest, runs.c.status.in_(ENDED), or_(*reasons))
