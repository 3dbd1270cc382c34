"""Backup files: copies of a SQLite file made with SQLite's online backup, and ``pg_dump`` archives.

Every copy is written under a hidden temporary name beside its destination, checked, and only then renamed to
the name it was asked for: a name that looks like a backup is always a sound one, whatever failed on the way
(a full disk, a crash, a copy that does not pass its check).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL

from cronkeeper.exceptions import StoreError

# Pages copied per step of a SQLite backup (4 MB of 4 KB pages).  The copy reads one snapshot, so its size
# only decides how often the copying thread lets others in (the GIL is released inside each step).
BACKUP_STEP_PAGES = 1024
# How long restoring into a live file waits for a writer to finish (seconds); nothing should be writing.
RESTORE_BUSY_TIMEOUT = 5.0


@contextmanager
def written_atomically(destination: Path, what: str) -> Iterator[Path]:
    """A temporary path beside ``destination`` to write to; renamed to ``destination`` when the block ends
    without error, deleted otherwise (an OSError, a full disk, becomes a StoreError saying so)."""
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        yield partial
        _sync(partial)
        os.replace(partial, destination)
        _sync(destination.parent)
    except OSError as exc:
        raise StoreError(f"{what} to {destination} failed: {exc.strerror or exc}") from exc
    finally:
        for leftover in (partial, partial.with_name(partial.name + "-journal")):
            leftover.unlink(missing_ok=True)


def _sync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, so that a crash after the rename finds the whole copy."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- SQLite ---------------------------------------------------------------------------------------------


def sqlite_backup(source: Path, destination: Path) -> int:
    """Copy the live file ``source`` to ``destination`` with SQLite's online backup; returns its size.

    The copy reads one snapshot: a read transaction held across the steps.  In WAL mode a reader never
    blocks a writer, so schedulers fire on; and without the snapshot, every write by another connection
    between two steps would restart the copy, which on a busy database would never end.
    """
    with written_atomically(destination, "the backup") as partial:
        try:
            with closing(_connect(source)) as src, closing(sqlite3.connect(partial)) as dst:
                src.execute("BEGIN")
                src.execute("SELECT count(*) FROM sqlite_master").fetchone()
                src.backup(dst, pages=BACKUP_STEP_PAGES, sleep=0)
                src.execute("COMMIT")
                # One self-contained file, without a write-ahead log beside it.
                dst.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            raise StoreError(f"the backup of {source} failed: {exc}") from exc
        check_sqlite_file(partial)
    return destination.stat().st_size


def check_sqlite_file(path: Path) -> None:
    """Raise StoreError unless ``path`` is a SQLite database whose ``PRAGMA integrity_check`` says "ok"."""
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as conn:
            verdict = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a sound SQLite database: {exc}") from exc
    if verdict != ["ok"]:
        raise StoreError(f"{path} is damaged: integrity_check says {'; '.join(map(str, verdict))}")


def sqlite_revision(path: Path) -> str | None:
    """The schema revision of a (checked) SQLite file; None when it holds no cronkeeper tables."""
    with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"ck_jobs", "ck_runs", "alembic_version"} <= names:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def sqlite_restore(source: Path, target: Path) -> None:
    """Copy ``source`` over the live file ``target`` with SQLite's backup API, in one step: one transaction
    on ``target``, so its other connections see the old database or the new one, and its write-ahead log
    and shared memory stay consistent (no file is swapped under them)."""
    try:
        with closing(_connect(source)) as src, closing(_connect(target, RESTORE_BUSY_TIMEOUT)) as dst:
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as exc:
        raise StoreError(f"restoring {target} from {source} failed, nothing was changed: {exc}") from exc


def sqlite_checkpoint(path: Path, *, busy_timeout: float) -> tuple[int, int, bool]:
    """Fold the write-ahead log into the database file: first PASSIVE (copies what it can, waiting on no
    one), then TRUNCATE to empty the log file, which takes the write lock and waits for readers, but here
    for at most ``busy_timeout`` seconds before giving up.  Returns the frames in the log, the frames
    copied, and whether the log was emptied."""
    with closing(_connect(path, busy_timeout)) as conn:
        _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(frames), int(copied), busy == 0


def sqlite_optimize(path: Path) -> None:
    """``PRAGMA optimize``: SQLite analyses what its own heuristics find stale (from a connection of its own,
    before SQLite 3.46, that is little or nothing), with ANALYZE limited to a sample of each index so that
    its write is short.  A plain ANALYZE is not run: the statistics it writes would change the plans of the
    claim and dashboard queries, which are tuned without them."""
    with closing(_connect(path)) as conn:
        conn.execute("PRAGMA analysis_limit=400")
        conn.execute("PRAGMA optimize")


def _connect(path: Path, busy_timeout: float = 30.0) -> sqlite3.Connection:
    """A connection of its own (outside the engine's pool), in autocommit: the statements here manage their
    own transactions, and a checkpoint cannot run inside one."""
    if not path.exists():
        raise StoreError(f"{path} does not exist")
    return sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)


# ---- PostgreSQL -----------------------------------------------------------------------------------------


def pg_backup(url: URL, destination: Path) -> int:
    """``pg_dump -Fc`` of the database to ``destination``, checked by listing it with ``pg_restore``."""
    with written_atomically(destination, "the backup") as partial:
        _run_tool("pg_dump", ["--format=custom", f"--file={partial}"], url)
        check_pg_archive(partial)
    return destination.stat().st_size


def check_pg_archive(path: Path) -> None:
    """Raise StoreError unless ``pg_restore`` can read the archive's table of contents."""
    _run_tool("pg_restore", ["--list", str(path)], None)


def pg_restore(url: URL, source: Path) -> None:
    """Replace the database's objects with the archive's, in one transaction (all or nothing)."""
    _run_tool(
        "pg_restore",
        ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error", str(source)],
        url,
    )


def _run_tool(name: str, arguments: list[str], url: URL | None) -> None:
    """Run a PostgreSQL client tool; its errors become StoreError.  The password goes in the environment,
    never on the command line, where any user of the machine could read it."""
    tool = _tool(name)
    env = dict(os.environ)
    if url is not None:
        if url.password is not None:
            env["PGPASSWORD"] = str(url.password)
        conninfo = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
        arguments = [f"--dbname={conninfo}", *arguments]
    result = subprocess.run([tool, *arguments], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()
        raise StoreError(f"{name} failed: {message[-1] if message else f'exit status {result.returncode}'}")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise StoreError(
            f"{name} is not on PATH: install the PostgreSQL client tools of the server's major version "
            "(Debian/Ubuntu: apt install postgresql-client; macOS: brew install libpq)"
        )
    return found
