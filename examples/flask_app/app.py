"""A multi-user Flask service's maintenance jobs, with cronkeeper's dashboard served beside the app at /cron.

The jobs work on the app's own SQLite database (``app.db``; cronkeeper keeps its schedules and history in
``cronkeeper.db`` next to it):

- ``clean-sessions``      hourly           delete expired login sessions
- ``archive-audit-log``   daily at 01:00   move audit entries older than 90 days to an archive table
- ``backup-database``     daily at 02:00   copy app.db to backups/, keeping the last 7 copies
- ``clean-error-log``     Sundays at 03:00 delete error entries older than 30 days
- ``check-credentials``   the 1st at 04:00 disable accounts that have not logged in for 90 days

Run it (files in the working directory, or in ``$APP_DATA_DIR``; ``CRONKEEPER_DB`` overrides the scheduler's
database)::

    cd examples/flask_app
    flask --app app run                     # http://127.0.0.1:5000/ and the dashboard at /cron/
    # The dashboard needs a first user; create one (it asks for the password) from another terminal:
    cronkeeper --db sqlite:///cronkeeper.db users add admin --role admin

Under gunicorn with several workers (``gunicorn -w 4 'app:create_app()'``) each worker starts a scheduler on
the same database, and every fire still runs once: the database decides which worker takes it.  Leave out
``--preload``: a scheduler thread started before the fork would not exist in the workers.
"""

from __future__ import annotations

import atexit
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from cronkeeper import Clock, Run, Scheduler
from cronkeeper.web import wsgi_app

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, user_id INTEGER, expires_at TEXT);
CREATE TABLE IF NOT EXISTS audit_log (id INTEGER PRIMARY KEY, at TEXT, actor TEXT, action TEXT);
CREATE TABLE IF NOT EXISTS audit_archive (id INTEGER PRIMARY KEY, at TEXT, actor TEXT, action TEXT);
CREATE TABLE IF NOT EXISTS error_log (id INTEGER PRIMARY KEY, at TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, last_login_at TEXT, disabled INTEGER);
"""
KEEP_BACKUPS = 7


class Maintenance:
    """The service's housekeeping, one method per job.  Each returns what it did, which cronkeeper keeps as
    the run's result.  Times come from the scheduler's clock, so a test moving a fake clock moves them too.
    Instants are stored as UTC ISO-8601 text, which sorts (and compares) in time order."""

    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self.database = data_dir / "app.db"
        self.backups = data_dir / "backups"
        self.clock = clock
        with self.connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success and is always closed (a bare ``with sqlite3.connect()`` only
        commits)."""
        with closing(sqlite3.connect(self.database)) as db, db:
            yield db

    def _ago(self, days: int) -> str:
        return (self.clock.now() - timedelta(days=days)).isoformat()

    def clean_sessions(self) -> dict[str, int]:
        with self.connect() as db:
            cursor = db.execute("DELETE FROM sessions WHERE expires_at < ?", (self.clock.now().isoformat(),))
        return {"deleted": cursor.rowcount}

    def archive_audit_log(self) -> dict[str, int]:
        cutoff = self._ago(90)
        with self.connect() as db:  # one transaction: an entry is never in both tables, or in neither
            db.execute("INSERT INTO audit_archive SELECT * FROM audit_log WHERE at < ?", (cutoff,))
            cursor = db.execute("DELETE FROM audit_log WHERE at < ?", (cutoff,))
        return {"archived": cursor.rowcount}

    def backup_database(self) -> dict[str, Any]:
        self.backups.mkdir(exist_ok=True)
        target = self.backups / f"app-{self.clock.now():%Y%m%dT%H%M}.db"
        # SQLite's online backup: a consistent copy even while the app writes.
        with closing(sqlite3.connect(self.database)) as source, closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
        old = sorted(self.backups.glob("app-*.db"))[:-KEEP_BACKUPS]
        for path in old:
            path.unlink()
        return {"file": target.name, "bytes": target.stat().st_size, "pruned": len(old)}

    def clean_error_log(self) -> dict[str, int]:
        with self.connect() as db:
            cursor = db.execute("DELETE FROM error_log WHERE at < ?", (self._ago(30),))
        return {"deleted": cursor.rowcount}

    def check_credentials(self) -> dict[str, int]:
        with self.connect() as db:
            cursor = db.execute(
                "UPDATE users SET disabled = 1 WHERE disabled = 0 AND last_login_at < ?", (self._ago(90),)
            )
        return {"disabled": cursor.rowcount}


def schedule_maintenance(scheduler: Scheduler, maintenance: Maintenance) -> None:
    """Declare the jobs; ``add_job`` on an existing id updates it, so this runs at every start.

    The jobs are methods of an object of this process, so only processes that build it can run them: every
    worker of this app can, but a plain ``cronkeeper serve`` on the same database would record their runs as
    failed.  (Jobs that any process may run are module-level functions with JSON ``kwargs``.)
    """
    scheduler.add_job(maintenance.clean_sessions, id="clean-sessions", cron="0 * * * *")
    scheduler.add_job(maintenance.archive_audit_log, id="archive-audit-log", cron="0 1 * * *")
    scheduler.add_job(maintenance.backup_database, id="backup-database", cron="0 2 * * *", overlap="forbid")
    scheduler.add_job(maintenance.clean_error_log, id="clean-error-log", cron="0 3 * * SUN")
    scheduler.add_job(maintenance.check_credentials, id="check-credentials", cron="0 4 1 * *")


def summary(run: Run) -> dict[str, Any]:
    return {"status": run.status.value, "scheduled_for": run.scheduled_for.isoformat(), "result": run.result}


JOB_IDS = ("clean-sessions", "archive-audit-log", "backup-database", "clean-error-log", "check-credentials")


def create_app(data_dir: Path | None = None, scheduler: Scheduler | None = None) -> Flask:
    """The app factory ``flask --app app run`` calls.

    Whoever creates the scheduler starts it: without one, this opens ``$CRONKEEPER_DB`` (else cronkeeper.db in
    the data directory) and starts it for the life of the process; a scheduler passed in is left as it is, so
    that a test can step it with a fake clock.
    """
    data_dir = data_dir or Path(os.environ.get("APP_DATA_DIR", "."))
    owned = scheduler is None
    if scheduler is None:
        scheduler = Scheduler(os.environ.get("CRONKEEPER_DB", f"sqlite:///{data_dir / 'cronkeeper.db'}"))
    schedule_maintenance(scheduler, Maintenance(data_dir, scheduler.clock))
    if owned:
        scheduler.start()
        atexit.register(scheduler.stop)  # running jobs get up to 30 s to finish when the server exits

    app = Flask(__name__)

    @app.get("/")
    def home() -> dict[str, str]:
        return {"service": "ok"}

    @app.get("/maintenance")
    def maintenance_status() -> dict[str, Any]:
        """The last run of each maintenance job, read from cronkeeper's history."""
        status: dict[str, Any] = {}
        for job_id in JOB_IDS:
            last = scheduler.runs(job_id=job_id, limit=1)  # newest first
            status[job_id] = summary(last[0]) if last else None
        return status

    # The dashboard and its JSON API at /cron/: an ASGI app, adapted to WSGI by wsgi_app() and mounted beside
    # Flask's own routes.  (Flask documents replacing app.wsgi_app like this; mypy objects to assigning to a
    # method.)
    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/cron": wsgi_app(scheduler)}
    )
    return app
