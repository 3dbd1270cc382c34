"""examples/flask_app: a month of maintenance jobs on a fake clock; the app with the dashboard beside it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from examples.flask_app import app as example

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.testing import run_until

START = datetime(2026, 2, 1, tzinfo=UTC)  # a Sunday, midnight; February has exactly four weeks


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def scheduler(tmp_path: Path, clock: FakeClock) -> Iterator[Scheduler]:
    sched = Scheduler(f"sqlite:///{tmp_path / 'cronkeeper.db'}", clock=clock)
    yield sched
    sched.close()


def seed(database: Path) -> None:
    """Some of the app's data for the jobs to find: two expired sessions, an old audit entry, a user who
    last logged in a year ago."""
    with closing(sqlite3.connect(database)) as db, db:
        db.executemany(
            "INSERT INTO sessions VALUES (?, 1, ?)",
            [("old-1", "2026-01-31T00:00:00+00:00"), ("old-2", "2026-02-01T00:30:00+00:00")],
        )
        db.execute("INSERT INTO audit_log VALUES (1, '2025-06-01T00:00:00+00:00', 'ana', 'login')")
        db.execute("INSERT INTO users VALUES (1, 'ben', '2025-02-01T00:00:00+00:00', 0)")


def test_a_month_of_maintenance_runs_each_job_the_expected_number_of_times(
    tmp_path: Path, scheduler: Scheduler, clock: FakeClock
) -> None:
    example.create_app(tmp_path, scheduler)
    seed(tmp_path / "app.db")
    run_until(scheduler, clock, START + timedelta(days=28))

    counts = {job_id: len(scheduler.runs(job_id=job_id, limit=1000)) for job_id in example.JOB_IDS}
    assert counts == {
        "clean-sessions": 28 * 24,
        "archive-audit-log": 28,
        "backup-database": 28,
        "clean-error-log": 4,  # Sundays 1, 8, 15 and 22 February
        "check-credentials": 1,  # 1 February
    }
    assert {run.status for run in scheduler.runs(limit=1000)} == {RunStatus.SUCCEEDED}
    sessions = list(reversed(scheduler.runs(job_id="clean-sessions", limit=1000)))
    assert [run.result for run in sessions[:2]] == [{"deleted": 2}, {"deleted": 0}]
    archive = list(reversed(scheduler.runs(job_id="archive-audit-log", limit=1000)))
    assert archive[0].result == {"archived": 1}
    assert scheduler.runs(job_id="check-credentials")[0].result == {"disabled": 1}
    assert {run.scheduled_for.weekday() for run in scheduler.runs(job_id="clean-error-log")} == {6}
    backups = sorted(path.name for path in (tmp_path / "backups").iterdir())
    assert backups == [f"app-202602{day:02}T0200.db" for day in range(22, 29)]  # the last seven


def test_flask_routes_and_the_dashboard_answer_side_by_side(tmp_path: Path, scheduler: Scheduler) -> None:
    client = example.create_app(tmp_path, scheduler).test_client()
    assert client.get("/").json == {"service": "ok"}
    assert client.get("/maintenance").json == dict.fromkeys(example.JOB_IDS)  # nothing has run yet

    # Each response is read to its end: a2wsgi finishes the dashboard's request only then.
    assert client.get("/cron/healthz").json == {"status": "ok"}
    dashboard = client.get("/cron/")
    dashboard.get_data()
    assert dashboard.status_code == 303
    assert dashboard.headers["location"] == "/cron/login?next=/"
    login = client.get("/cron/login")
    assert login.status_code == 200
    assert 'action="/cron/login"' in login.text

    scheduler.trigger("backup-database", triggered_by="alice")
    scheduler.run_pending()
    status = client.get("/maintenance").json
    assert status is not None
    backup = status["backup-database"]
    assert backup["status"] == "succeeded"
    assert backup["result"]["file"] == "app-20260201T0000.db"
