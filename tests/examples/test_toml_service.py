"""examples/toml_service: good, raising, disabled and invalid entries through a fake hour."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from examples.toml_service import app as example
from examples.toml_service.app import Problem

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.testing import advance

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Scheduler, list[Problem]]]:
    config = tmp_path / "service.toml"
    config.write_text(
        f"""
[jobs.cleanup]
every = "10m"
kwargs = {{ directory = "{tmp_path / "scratch"}" }}

[jobs.import_feed]
enabled = true
every = "15m"
kwargs = {{ path = "{tmp_path / "no-such-feed.csv"}" }}

[jobs.heartbeat]
enabled = false
every = "1m"

[jobs.send_report]
every = "10 minutes"
"""
    )
    scheduler, problems = example.build(config, db_url(tmp_path), clock=clock)
    yield scheduler, problems
    scheduler.close()


def wait_until_finished(scheduler: Scheduler, run_id: int) -> None:
    for _ in range(500):
        if not scheduler.get_run(run_id).status.is_active:
            return
        time.sleep(0.01)
    raise AssertionError(f"run {run_id} did not finish")


def test_good_jobs_run_failures_are_recorded_and_bad_entries_are_reported(
    service: tuple[Scheduler, list[Problem]], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler, problems = service
    assert [problem.field for problem in problems] == ["jobs.send_report.every"]
    assert "'10 minutes' is not a duration" in problems[0].reason
    assert [job.id for job in scheduler.jobs()] == ["cleanup", "import_feed"]

    with caplog.at_level(logging.WARNING, logger="cronkeeper"):
        advance(scheduler, clock, timedelta(hours=1))

    cleanup = scheduler.runs(job_id="cleanup")
    assert len(cleanup) == 6
    assert {run.status for run in cleanup} == {RunStatus.SUCCEEDED}
    assert cleanup[0].result == {"removed": 0}
    failures = scheduler.runs(job_id="import_feed")
    assert len(failures) == 4
    assert {run.status for run in failures} == {RunStatus.FAILED}
    assert failures[0].error is not None and failures[0].error.startswith("FileNotFoundError: ")
    assert failures[0].traceback is not None and "read_text" in failures[0].traceback
    assert "job import_feed: run" in caplog.text and "FileNotFoundError" in caplog.text
    assert scheduler.runs(job_id="heartbeat") == []

    # Still usable, and once started it keeps going through another failure.
    scheduler.start()
    try:
        failed, succeeded = scheduler.trigger("import_feed"), scheduler.trigger("cleanup")
        wait_until_finished(scheduler, failed)
        wait_until_finished(scheduler, succeeded)
        assert scheduler.running
    finally:
        scheduler.stop()
    assert scheduler.get_run(failed).status is RunStatus.FAILED
    assert scheduler.get_run(succeeded).status is RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ('[jobs.cleanup]\nevery = "soon"', "jobs.cleanup.every"),
        ('[jobs.cleanup]\ncron = "61 * * * *"', "jobs.cleanup.cron"),
        ('[jobs.cleanup]\nschedule = "hourly"', "jobs.cleanup.schedule"),
        ('[jobs.cleanup]\nenabled = "yes"\nevery = "1h"', "jobs.cleanup.enabled"),
        ('[jobs.backup]\nevery = "1h"', "jobs.backup"),
        ('[jobs.cleanup]\nat = "2020-01-01T08:00:00+00:00"', "jobs.cleanup.at"),
    ],
)
def test_an_invalid_entry_is_reported_with_its_field_and_skipped(
    tmp_path: Path, entry: str, field: str
) -> None:
    config = tmp_path / "service.toml"
    config.write_text(f'{entry}\n\n[jobs.heartbeat]\nevery = "1m"\n')
    scheduler, problems = example.build(config, db_url(tmp_path), clock=FakeClock(START))
    try:
        assert [problem.field for problem in problems] == [field]
        assert [job.id for job in scheduler.jobs()] == ["heartbeat"]
    finally:
        scheduler.close()


def test_a_job_switched_off_later_is_disabled_with_its_history_kept(tmp_path: Path) -> None:
    config, clock = tmp_path / "service.toml", FakeClock(START)
    config.write_text('[jobs.heartbeat]\nevery = "1m"\n')
    scheduler, _ = example.build(config, db_url(tmp_path), clock=clock)
    advance(scheduler, clock, timedelta(minutes=3))
    scheduler.close()

    config.write_text('[jobs.heartbeat]\nenabled = false\nevery = "1m"\n')
    scheduler, _ = example.build(config, db_url(tmp_path), clock=clock)
    try:
        advance(scheduler, clock, timedelta(minutes=3))
        assert not scheduler.get_job("heartbeat").enabled
        assert len(scheduler.runs(job_id="heartbeat")) == 3
    finally:
        scheduler.close()
