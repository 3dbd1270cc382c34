"""examples/fastapi_app: the management endpoints, and five weeks of its cron jobs on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from examples.fastapi_app import app as example
from fastapi.testclient import TestClient

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.testing import run_until

START = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday, midnight
SUNDAY = 6


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def scheduler(tmp_path: Path, clock: FakeClock) -> Iterator[Scheduler]:
    sched = Scheduler(f"sqlite:///{tmp_path / 'fastapi_app.db'}", clock=clock)
    yield sched
    sched.close()


def test_endpoints_list_pause_resume_and_remove_jobs(scheduler: Scheduler) -> None:
    with TestClient(example.create_app(scheduler)) as client:
        assert scheduler.running  # started by the app's lifespan
        jobs = {job["id"]: job for job in client.get("/jobs").json()}
        assert set(jobs) == {"daily-digest", "weekly-reindex", "monthly-invoices"}
        assert jobs["daily-digest"]["next_due_at"] == "2026-03-09T06:00:00Z"
        assert jobs["weekly-reindex"]["next_due_at"] == "2026-03-15T03:00:00Z"
        assert jobs["monthly-invoices"]["next_due_at"] == "2026-04-01T04:00:00Z"
        assert jobs["weekly-reindex"]["schedule"] == "At 03:00 on Sunday (UTC)"

        paused = client.post("/jobs/weekly-reindex/pause").json()
        assert paused["paused"] is True
        assert paused["next_due_at"] is None
        resumed = client.post("/jobs/weekly-reindex/resume").json()
        assert resumed["paused"] is False
        assert resumed["next_due_at"] == "2026-03-15T03:00:00Z"

        assert client.delete("/jobs/monthly-invoices").status_code == 204
        assert [job["id"] for job in client.get("/jobs").json()] == ["daily-digest", "weekly-reindex"]
        missing = client.post("/jobs/monthly-invoices/pause")
        assert missing.status_code == 404
        assert "monthly-invoices" in missing.json()["detail"]
        assert client.get("/jobs/no-such-job/runs").status_code == 404
    assert not scheduler.running  # stopped with the app


def test_five_weeks_run_each_job_on_its_days_with_its_metrics(scheduler: Scheduler, clock: FakeClock) -> None:
    app = example.create_app(scheduler)
    run_until(scheduler, clock, START + timedelta(weeks=5))

    daily = scheduler.runs(job_id="daily-digest", limit=100)
    assert len(daily) == 35
    assert {run.scheduled_for.time().isoformat() for run in daily} == {"06:00:00"}
    weekly = scheduler.runs(job_id="weekly-reindex", limit=100)
    assert sorted(run.scheduled_for.date().isoformat() for run in weekly) == [
        "2026-03-15",
        "2026-03-22",
        "2026-03-29",
        "2026-04-05",
        "2026-04-12",
    ]
    assert {run.scheduled_for.weekday() for run in weekly} == {SUNDAY}
    monthly = scheduler.runs(job_id="monthly-invoices", limit=100)
    assert sorted(run.scheduled_for.date().isoformat() for run in monthly) == [
        "2026-04-01",
        "2026-04-02",
        "2026-04-03",
    ]

    assert {run.status for run in daily + weekly + monthly} == {RunStatus.SUCCEEDED}
    assert daily[0].result == {"items_processed": 4, "items_succeeded": 3, "items_failed": 1}
    assert weekly[0].result == {"items_processed": 10, "items_succeeded": 10, "items_failed": 0}
    assert monthly[0].result == {"items_processed": 5, "items_succeeded": 4, "items_failed": 1}

    # The same history through the app's own endpoint.
    runs = TestClient(app).get("/jobs/monthly-invoices/runs").json()
    assert [run["scheduled_for"] for run in runs] == [
        "2026-04-03T04:00:00Z",
        "2026-04-02T04:00:00Z",
        "2026-04-01T04:00:00Z",
    ]
    assert runs[0]["result"]["items_failed"] == 1
