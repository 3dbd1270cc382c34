"""Looking after the database itself: schema upgrades, pruning old history, backups and restores, and
housekeeping.  ``cronkeeper db`` and the built-in maintenance jobs (:mod:`cronkeeper.services.builtin_jobs`)
call the same methods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cronkeeper.clock import Clock
from cronkeeper.durations import parse_duration
from cronkeeper.exceptions import SchedulerStateError, ValidationError
from cronkeeper.services.runs import IDEMPOTENCY_WINDOW
from cronkeeper.settings import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_KEEP_AUDIT_FOR,
    DEFAULT_KEEP_RUNS_FOR,
    DEFAULT_KEEP_RUNS_PER_JOB,
)
from cronkeeper.store.base import MaintenanceStore, StatusView
from cronkeeper.store.database import Database
from cronkeeper.store.records import Housekeeping, PruneReport, Retention

# Rows deleted per transaction at most (fewer when a batch holds SQLite's lock too long).
PRUNE_BATCH = 1000
# Login attempts matter for the throttle's window (minutes); a day is far past any window.
LOGIN_ATTEMPTS_KEPT_FOR = timedelta(days=1)
# A node silent this long is long dead (the lease is seconds); the status page shows a day of them.
NODES_KEPT_FOR = timedelta(days=7)
BACKUP_NAME = re.compile(r"cronkeeper-(\d{8}T\d{6}Z)(?:-(\d+))?(\.sqlite3|\.dump)")
Duration = timedelta | str


def upgrade_database(url: str) -> tuple[str | None, str]:
    """Create or upgrade the tables of ``url`` to this version's schema (safe to run again); returns the
    revisions before and after."""
    database = Database(url, migrate=False)
    try:
        return database.upgrade()
    finally:
        database.close()


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup written: where, its size, and the older backups rotation deleted to make room."""

    path: Path
    size: int
    removed: tuple[Path, ...] = ()


class MaintenanceService:
    """Pruning, backups, restores and housekeeping of one scheduler's database."""

    def __init__(
        self,
        store: MaintenanceStore,
        status: StatusView,
        clock: Clock,
        *,
        lease: timedelta,
    ) -> None:
        self._store = store
        self._status = status
        self._clock = clock
        self._lease = lease

    @property
    def sqlite(self) -> bool:
        """Whether the database is a SQLite file (the built-in backup and housekeeping jobs are for those)."""
        return self._store.file is not None

    # ---- pruning ---------------------------------------------------------------------------------------

    def prune(
        self,
        *,
        older_than: Duration | None = None,
        keep: int | None = None,
        audit_older_than: Duration | None = None,
        dry_run: bool = False,
        batch_size: int = PRUNE_BATCH,
    ) -> PruneReport:
        """Delete runs older than ``older_than`` or beyond the newest ``keep`` of their job (never a queued or
        running run, nor a job's latest), audit events older than ``audit_older_than``, and bookkeeping past
        its use; each left out takes its default.  With ``dry_run`` only count what would go."""
        now = self._clock.now()
        runs_for = _positive_duration(older_than, "older_than", DEFAULT_KEEP_RUNS_FOR)
        audit_for = _positive_duration(audit_older_than, "audit_older_than", DEFAULT_KEEP_AUDIT_FOR)
        keep = DEFAULT_KEEP_RUNS_PER_JOB if keep is None else keep
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValidationError("keep", "must be a whole number of runs, at least 1")
        retention = Retention(
            runs_before=now - runs_for,
            runs_per_job=keep,
            audit_before=now - audit_for,
            sessions_expired_by=now,
            idempotency_before=now - IDEMPOTENCY_WINDOW,
            login_attempts_before=now - LOGIN_ATTEMPTS_KEPT_FOR,
            nodes_silent_since=now - NODES_KEPT_FOR,
        )
        return self._store.prune(retention, batch_size=batch_size, dry_run=dry_run)

    # ---- backups ---------------------------------------------------------------------------------------

    def backup_folder(self, name: str = DEFAULT_BACKUP_DIR) -> Path:
        """The folder ``name`` as the backup job means it: relative to the SQLite file's folder (``backups/``
        beside the database by default), or to the current folder for a database on a server."""
        folder = Path(name).expanduser()
        database = self._store.file
        if folder.is_absolute() or database is None:
            return folder
        return database.absolute().parent / folder

    def backup(self, path: Path | None = None, *, keep: int | None = None) -> Backup:
        """Write a checked backup to ``path``: a new file, or a folder to write
        ``cronkeeper-YYYYmmddTHHMMSSZ.sqlite3`` into (the default one when None).  A path that is not a folder
        yet is one if its name has no suffix (``backups``), and is made; else it names the file
        (``app.sqlite3``).  With ``keep``, only the newest ``keep`` backups of that folder are kept
        afterwards."""
        if keep is not None and (isinstance(keep, bool) or keep < 1):
            raise ValidationError("keep", "must be a whole number of backups, at least 1")
        destination = self._destination(path)
        size = self._store.backup(destination)
        removed = _rotate(destination.parent, keep) if keep is not None else ()
        return Backup(destination, size, removed)

    def _destination(self, path: Path | None) -> Path:
        if path is None:
            return self._new_in(self.backup_folder())
        target = path.absolute()
        if target.is_dir() or not target.suffix:
            return self._new_in(target)
        if target.exists():
            raise ValidationError("path", f"{path} exists; give a new file name or a folder")
        if not target.parent.is_dir():
            raise ValidationError("path", f"the folder {path.parent} does not exist")
        return target

    def _new_in(self, folder: Path) -> Path:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationError("path", f"cannot make the folder {folder}: {exc.strerror}") from None
        return _new_backup_name(folder, self._clock.now(), self._store.backup_suffix)

    def restore(self, path: Path) -> None:
        """Replace the database with the backup at ``path`` (checked first).  Refused while a scheduler is
        running on the database: it would go on from a state that no longer exists."""
        _existing_file(path)
        self._refuse_while_live()
        self._store.restore(path)

    def check_backup(self, path: Path) -> None:
        """Raise StoreError unless ``path`` is a sound backup this version of cronkeeper can restore."""
        _existing_file(path)
        self._store.check_backup(path)

    def _refuse_while_live(self) -> None:
        now = self._clock.now()
        live = [node for node in self._status.nodes(now=now, lease=self._lease) if node.live]
        if live:
            names = ", ".join(f"{node.id} (pid {node.pid} on {node.hostname})" for node in live)
            raise SchedulerStateError(
                f"a scheduler is running on this database ({names}); stop it before restoring"
            )

    # ---- housekeeping ----------------------------------------------------------------------------------

    def housekeep(self) -> Housekeeping:
        """Refresh the planner's statistics and empty SQLite's write-ahead log, never blocking a fire."""
        return self._store.housekeep()


def _existing_file(path: Path) -> None:
    if not path.is_file():
        raise ValidationError("path", f"{path} is not a file" if path.exists() else f"{path} does not exist")


def _positive_duration(value: Duration | None, field: str, default: timedelta) -> timedelta:
    duration = default if value is None else parse_duration(value, field)
    if duration <= timedelta(0):
        raise ValidationError(field, "must be longer than zero")
    return duration


def _new_backup_name(folder: Path, now: datetime, suffix: str) -> Path:
    """``cronkeeper-YYYYmmddTHHMMSSZ`` and the suffix; ``-2``, ``-3``… for a second backup in one second."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    candidate, count = folder / f"cronkeeper-{stamp}{suffix}", 1
    while candidate.exists():
        count += 1
        candidate = folder / f"cronkeeper-{stamp}-{count}{suffix}"
    return candidate


def _rotate(folder: Path, keep: int) -> tuple[Path, ...]:
    """Delete all but the newest ``keep`` backups of ``folder`` (only files named as cronkeeper names its
    backups: whatever else the folder holds is not ours)."""
    found = []
    for path in folder.iterdir():
        match = BACKUP_NAME.fullmatch(path.name)
        if match is not None and path.is_file():
            found.append(((match.group(1), int(match.group(2) or 1)), path))
    found.sort(reverse=True)
    removed = tuple(path for _, path in found[keep:])
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
