"""``cronkeeper import-apscheduler``, run for real on a job store written by real APScheduler 3: dry run,
import, import again (nothing changes), and the jobs that cannot be imported, each with its reason."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from cronkeeper import Scheduler
from tests.compat.aps_jobs_module import poll, report, write_job_store
from tests.e2e.test_cli import Cli, make_cli

pytest.importorskip("apscheduler.jobstores.sqlalchemy")

ODD_ID = "weekly report #1"


def add_jobs(scheduler: Any) -> None:
    scheduler.add_job(report, "cron", day_of_week="0-4", hour=9, timezone="Europe/Paris", id="weekdays")
    scheduler.add_job(poll, "interval", minutes=10, kwargs={"source": "feed", "limit": 5}, id="poll")
    scheduler.add_job(report, "cron", hour=2, id="held", next_run_time=None)
    scheduler.add_job(report, "cron", day_of_week=6, hour=7, id=ODD_ID)
    scheduler.add_job(report, "interval", hours=1, id="dated", args=[datetime(2026, 1, 1, tzinfo=UTC)])
    scheduler.add_job(report, "date", run_date=datetime.now(UTC) + timedelta(days=2), id="missed-once")


def let_date_pass(url: str, job_id: str) -> None:
    """Make the date job's row what APScheduler leaves when its application was down on that date: the
    date (and next run time) two days past.  (APScheduler itself would run a due job at shutdown, racing the
    test, so the row is aged afterwards with APScheduler's own trigger class.)"""
    from apscheduler.triggers.date import DateTrigger

    past = datetime.now(UTC) - timedelta(days=2)
    engine = create_engine(url)
    with engine.begin() as conn:
        blob = conn.execute(text("SELECT job_state FROM apscheduler_jobs WHERE id = :id"), {"id": job_id})
        state = pickle.loads(blob.scalar_one())
        state.update(trigger=DateTrigger(past), next_run_time=past)
        conn.execute(
            text("UPDATE apscheduler_jobs SET job_state = :state, next_run_time = :at WHERE id = :id"),
            {"state": pickle.dumps(state), "at": past.timestamp(), "id": job_id},
        )
    engine.dispose()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


@pytest.fixture
def aps_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'aps.sqlite'}"
    write_job_store(url, add_jobs)
    let_date_pass(url, "missed-once")
    return url


def test_dry_run_writes_nothing_and_says_what_would_change(cli: Cli, aps_url: str) -> None:
    result = cli("import-apscheduler", "--dry-run", "--json", aps_url)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True
    actions = {job["apscheduler_id"]: (job["action"], job["paused"]) for job in plan["jobs"]}
    assert actions == {
        "weekdays": ("add", False),
        "poll": ("add", False),
        "held": ("add", True),
        ODD_ID: ("add", False),
    }
    renamed = next(job for job in plan["jobs"] if job["apscheduler_id"] == ODD_ID)
    assert renamed["id"].startswith("weekly-report-1-")
    assert renamed["notes"] == [f"imported as {renamed['id']}: {ODD_ID!r} is not a valid cronkeeper id"]
    reasons = {item["apscheduler_id"]: item["reason"] for item in plan["skipped"]}
    assert set(reasons) == {"dated", "missed-once"}
    assert reasons["dated"].startswith("args: must be JSON-serialisable")
    assert reasons["missed-once"].startswith("run_date:")
    assert reasons["missed-once"].endswith("is in the past")
    with Scheduler(cli.db_url) as scheduler:
        assert scheduler.jobs() == []


def test_a_dry_run_on_a_database_that_does_not_exist_creates_nothing(
    cli: Cli, aps_url: str, tmp_path: Path
) -> None:
    result = cli("import-apscheduler", "--dry-run", "--json", aps_url)
    assert result.returncode == 0, result.stderr
    assert {job["action"] for job in json.loads(result.stdout)["jobs"]} == {"add"}
    assert not (tmp_path / "x.db").exists()


def test_import_then_again_changes_nothing(cli: Cli, aps_url: str) -> None:
    first = cli("import-apscheduler", aps_url)
    assert first.returncode == 0, first.stderr
    assert "added 4, updated 0, unchanged 0, not imported 2" in first.stderr
    assert "job dated: not imported: args: must be JSON-serialisable" in first.stderr
    assert f"job {ODD_ID}: imported as weekly-report-1-" in first.stderr
    assert "0 9 * * 1-5 (Europe/Paris)" in first.stdout
    with Scheduler(cli.db_url) as scheduler:
        jobs = {job.id: job for job in scheduler.jobs()}
        weekdays = jobs["weekdays"]
        assert weekdays.origin == "apscheduler"
        assert weekdays.spec.trigger.describe().endswith("(Europe/Paris)")
        assert weekdays.spec.target.ref == "tests.compat.aps_jobs_module:report"  # type: ignore[union-attr]
        assert jobs["poll"].spec.target.kwargs == {"source": "feed", "limit": 5}  # type: ignore[union-attr]
        assert jobs["held"].paused
        assert not weekdays.paused
        versions = {job.id: job.version for job in jobs.values()}
    again = cli("import-apscheduler", "--json", aps_url)
    assert again.returncode == 0, again.stderr
    assert {job["action"] for job in json.loads(again.stdout)["jobs"]} == {"unchanged"}
    with Scheduler(cli.db_url) as scheduler:
        assert {job.id: job.version for job in scheduler.jobs()} == versions


def test_paused_import_adds_every_job_paused(cli: Cli, aps_url: str) -> None:
    assert cli("import-apscheduler", "--paused", aps_url).returncode == 0
    with Scheduler(cli.db_url) as scheduler:
        jobs = scheduler.jobs()
        assert len(jobs) == 4
        assert all(job.paused for job in jobs)


def test_a_wrong_table_is_an_error_and_help_names_the_risks(cli: Cli, aps_url: str) -> None:
    stderr = cli.fails(1, "import-apscheduler", "--table", "jobs", aps_url)
    assert stderr.startswith("error: no table 'jobs' in sqlite:///")
    help_text = cli.ok("import-apscheduler", "--help")
    assert "UNPICKLES" in help_text
    assert "sys.path" in help_text


def test_a_job_changed_in_apscheduler_is_updated_in_place(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'changing.sqlite'}"

    def weekdays_at(hour: int) -> Callable[[Any], None]:
        return lambda scheduler: scheduler.add_job(
            report, "cron", day_of_week="0-4", hour=hour, id="weekdays", replace_existing=True
        )

    write_job_store(url, weekdays_at(9))
    assert cli("import-apscheduler", url).returncode == 0
    write_job_store(url, weekdays_at(10))  # the application changed the job's schedule
    result = cli("import-apscheduler", "--json", url)
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout)["jobs"]
    assert [(job["id"], job["action"]) for job in planned] == [("weekdays", "update")]
    with Scheduler(cli.db_url) as scheduler:
        assert scheduler.get_job("weekdays").spec.trigger.describe().startswith("At 10:00")
