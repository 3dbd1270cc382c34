"""Reading a REAL APScheduler 3 SQLAlchemy job store (written by APScheduler itself) into cronkeeper jobs.

The table is filled by APScheduler's own ``BackgroundScheduler`` and ``SQLAlchemyJobStore``; what cronkeeper
makes of each row is checked against APScheduler's own trigger objects from that row: the next fire times
must agree, and a cron ``day_of_week=0`` (APScheduler's Monday) must fire on Mondays.
"""

from __future__ import annotations

import pickle
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from cronkeeper import Scheduler
from cronkeeper.compat.apscheduler.config import NO_LIMIT
from cronkeeper.importers.apscheduler import (
    ForeignJob,
    JobStoreError,
    cronkeeper_id,
    read_apscheduler_jobs,
    to_definitions,
)
from cronkeeper.models import Catchup
from cronkeeper.specs import JOB_ID, build_spec
from cronkeeper.triggers import Trigger
from tests.compat.aps_jobs_module import Counter, poll, report, write_job_store

pytest.importorskip("apscheduler.jobstores.sqlalchemy")
aps_combining = pytest.importorskip("apscheduler.triggers.combining")
aps_cron = pytest.importorskip("apscheduler.triggers.cron")

PARIS = ZoneInfo("Europe/Paris")
ONCE_AT = datetime(2031, 6, 2, 12, 0, tzinfo=UTC)
# Far from the DST changes of Europe/Paris, where cron and APScheduler deliberately differ.
FROM = datetime(2031, 1, 14, 10, 17, 42, tzinfo=UTC)
ODD_ID = "nightly backup/ä"
UNPICKLABLE = b"cno_such_module_here\nThing\n."  # a pickle of an object from a module that is not there


def add_jobs(scheduler: Any) -> None:
    """The jobs an application might have in its store: importable ones, then ones that are not."""
    scheduler.add_job(
        report, "cron", day_of_week=0, hour=9, minute=30, timezone="Europe/Paris", id="monday-report"
    )
    scheduler.add_job(report, "cron", day_of_week="0-4", hour=8, id="weekdays", args=[1, "two"])
    scheduler.add_job(
        poll,
        "interval",
        minutes=15,
        id="poll",
        kwargs={"source": "feed", "limit": 10},
        coalesce=False,
        max_instances=3,
        misfire_grace_time=None,
    )
    scheduler.add_job(report, "date", run_date=ONCE_AT, id="once", name="the one-off")
    scheduler.add_job(report, "cron", hour=3, id="paused-job", next_run_time=None)
    scheduler.add_job(report, "cron", minute=0, id=ODD_ID)
    scheduler.add_job(report, "interval", hours=1, id="dated", args=[datetime(2026, 1, 1, tzinfo=UTC)])
    either = aps_combining.OrTrigger([aps_cron.CronTrigger(hour=1), aps_cron.CronTrigger(hour=2)])
    scheduler.add_job(report, either, id="either")
    scheduler.add_job(report, "cron", year=2030, id="yearly")
    scheduler.add_job(Counter().bump, "interval", minutes=5, id="method")


@pytest.fixture
def aps_url(tmp_path: Path) -> str:
    """APScheduler's table with the jobs above, plus two rows no APScheduler could read back."""
    path = tmp_path / "aps.sqlite"
    write_job_store(f"sqlite:///{path}", add_jobs)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO apscheduler_jobs VALUES ('garbage', NULL, ?)", (b"not a pickle",))
        conn.execute("INSERT INTO apscheduler_jobs VALUES ('lost-class', NULL, ?)", (UNPICKLABLE,))
    conn.close()
    return f"sqlite:///{path}"


@pytest.fixture
def jobs(aps_url: str) -> dict[str, ForeignJob]:
    return {job.id: job for job in read_apscheduler_jobs(aps_url)}


def fires_of_aps(trigger: Any, now: datetime, count: int = 6) -> list[datetime]:
    """The next fires as APScheduler's scheduler asks its trigger for them."""
    out: list[datetime] = []
    fire = trigger.get_next_fire_time(None, now)
    while fire is not None and len(out) < count:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return out


def fires_of(trigger: Trigger, now: datetime, count: int = 6) -> list[datetime]:
    """The next fires of a cronkeeper trigger from ``now`` (a fire at ``now`` itself included)."""
    out: list[datetime] = []
    fire = trigger.next_after(now - timedelta(microseconds=1))
    while fire is not None and len(out) < count:
        out.append(fire)
        fire = trigger.next_after(fire)
    return out


def test_every_row_is_read_with_apschedulers_options(jobs: dict[str, ForeignJob]) -> None:
    assert set(jobs) == {
        "monday-report",
        "weekdays",
        "poll",
        "once",
        "paused-job",
        ODD_ID,
        "dated",
        "either",
        "yearly",
        "method",
        "garbage",
        "lost-class",
    }
    polled = jobs["poll"]
    assert polled.func == "tests.compat.aps_jobs_module:poll"
    assert polled.kwargs == {"source": "feed", "limit": 10}
    assert (polled.coalesce, polled.max_instances, polled.misfire_grace_time) == (False, 3, None)
    assert not polled.paused
    assert type(polled.trigger).__module__ == "apscheduler.triggers.interval"
    assert jobs["paused-job"].paused
    assert jobs["weekdays"].args == (1, "two")
    assert jobs["once"].name == "the one-off"
    assert jobs["monday-report"].misfire_grace_time == 1  # APScheduler stores its default explicitly
    assert jobs["garbage"].error is not None
    assert jobs["garbage"].error.startswith("cannot unpickle job_state: ")
    assert jobs["lost-class"].error == (
        "cannot unpickle job_state: ModuleNotFoundError: No module named 'no_such_module_here'"
    )


def test_definitions_keep_ids_functions_arguments_and_options(jobs: dict[str, ForeignJob]) -> None:
    conversion = to_definitions(jobs.values(), "UTC")
    made = {definition.source_id: definition for definition in conversion.definitions}
    assert set(made) == {"monday-report", "weekdays", "poll", "once", "paused-job", ODD_ID}

    monday = made["monday-report"].job
    assert monday["id"] == "monday-report"
    assert monday["call"] == "tests.compat.aps_jobs_module:report"
    assert (monday["cron"], monday["timezone"]) == ("30 9 * * 1", "Europe/Paris")
    assert monday["misfire_grace"] == timedelta(seconds=1)
    assert monday["catchup"] == Catchup.SKIP.value  # coalesce with a grace: a fire past it is missed
    assert monday["tags"] == ["apscheduler"]

    assert made["weekdays"].job["cron"] == "0 8 * * 1-5"
    assert made["weekdays"].job["args"] == [1, "two"]

    polled = made["poll"].job
    assert polled["kwargs"] == {"source": "feed", "limit": 10}
    assert polled["every"] == timedelta(minutes=15)
    assert polled["start"] == cast(Any, jobs["poll"].trigger).start_date  # the grid APScheduler had
    assert (polled["catchup"], polled["max_instances"]) == (Catchup.ALL.value, 3)
    assert polled["misfire_grace"] == NO_LIMIT

    once = made["once"].job
    assert once["at"] == ONCE_AT
    assert once["name"] == "the one-off"

    assert made["paused-job"].paused
    assert not made["poll"].paused
    assert all(not definition.notes for key, definition in made.items() if key != ODD_ID)


def test_an_id_cronkeeper_cannot_hold_becomes_a_stable_slug_and_is_noted(jobs: dict[str, ForeignJob]) -> None:
    first = {d.source_id: d for d in to_definitions(jobs.values(), "UTC").definitions}[ODD_ID]
    again = {d.source_id: d for d in to_definitions(jobs.values(), "UTC").definitions}[ODD_ID]
    new_id = first.job["id"]
    assert new_id == again.job["id"]
    assert new_id.startswith("nightly-backup-")
    assert JOB_ID.fullmatch(new_id)
    assert first.job["description"] == f"APScheduler job id: {ODD_ID}"
    assert first.notes == (f"imported as {new_id}: {ODD_ID!r} is not a valid cronkeeper id",)


@pytest.mark.parametrize(
    ("aps_id", "expected"),
    [
        ("3f2a9c0d8e7b4a1f9c2d3e4f5a6b7c8d", "3f2a9c0d8e7b4a1f9c2d3e4f5a6b7c8d"),  # APScheduler's uuid ids
        ("app.tasks:cleanup", None),
        ("_private", None),
        ("x" * 200, None),
        ("///", None),
    ],
)
def test_cronkeeper_ids(aps_id: str, expected: str | None) -> None:
    new_id, renamed = cronkeeper_id(aps_id)
    assert JOB_ID.fullmatch(new_id)
    assert renamed == (expected is None)
    if expected is not None:
        assert new_id == expected
    assert cronkeeper_id(aps_id) == (new_id, renamed)
    assert cronkeeper_id(aps_id + "!")[0] != new_id


def test_jobs_cronkeeper_cannot_take_are_refused_with_the_reason(jobs: dict[str, ForeignJob]) -> None:
    refused = {job.source_id: job.reason for job in to_definitions(jobs.values(), "UTC").refused}
    assert set(refused) == {"dated", "either", "yearly", "method", "garbage", "lost-class"}
    assert refused["dated"].startswith("args: must be JSON-serialisable")
    assert refused["either"].startswith("trigger: OrTrigger is a combining trigger")
    assert refused["yearly"].startswith("year:")
    assert refused["method"].startswith(
        "func: tests.compat.aps_jobs_module:Counter.bump is a method of an object"
    )
    assert refused["lost-class"].startswith("cannot unpickle job_state: ModuleNotFoundError")


@pytest.mark.parametrize("job_id", ["monday-report", "weekdays", "once", "paused-job", ODD_ID])
def test_fire_times_agree_with_apschedulers_own_trigger(jobs: dict[str, ForeignJob], job_id: str) -> None:
    definition = {d.source_id: d for d in to_definitions(jobs.values(), "UTC").definitions}[job_id]
    spec = build_spec(definition.job, now=FROM)
    expected = fires_of_aps(jobs[job_id].trigger, FROM)
    assert expected
    assert fires_of(spec.trigger, FROM) == expected


def test_an_interval_keeps_apschedulers_grid(jobs: dict[str, ForeignJob]) -> None:
    definition = {d.source_id: d for d in to_definitions(jobs.values(), "UTC").definitions}["poll"]
    now = datetime.now(UTC) + timedelta(hours=5, seconds=7)
    spec = build_spec(definition.job, now=now)
    assert fires_of(spec.trigger, now) == fires_of_aps(jobs["poll"].trigger, now)


def test_day_of_week_0_is_monday(jobs: dict[str, ForeignJob]) -> None:
    definition = {d.source_id: d for d in to_definitions(jobs.values(), "UTC").definitions}["monday-report"]
    fires = fires_of(build_spec(definition.job, now=FROM).trigger, FROM, count=8)
    assert {fire.astimezone(PARIS).strftime("%A %H:%M") for fire in fires} == {"Monday 09:30"}


def test_definitions_are_accepted_by_a_scheduler_and_paused_jobs_stay_paused(
    jobs: dict[str, ForeignJob], scheduler: Scheduler
) -> None:
    conversion = to_definitions(jobs.values(), "UTC", now=scheduler.clock.now())
    for definition in conversion.definitions:
        scheduler.service.add_job(definition.job, origin="apscheduler", paused=definition.paused)
    stored = {job.id: job for job in scheduler.jobs()}
    assert len(stored) == 6
    assert stored["paused-job"].paused
    assert not stored["monday-report"].paused
    assert stored["monday-report"].next_due_at is not None
    assert stored["monday-report"].next_due_at.astimezone(PARIS).strftime("%A %H:%M") == "Monday 09:30"


def test_without_apscheduler_the_error_says_what_to_install(
    aps_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "apscheduler", None)  # makes `import apscheduler` fail
    with pytest.raises(JobStoreError, match=r'pip install "apscheduler<4"'):
        read_apscheduler_jobs(aps_url)


def test_a_missing_table_or_file_is_a_clear_error(aps_url: str, tmp_path: Path) -> None:
    with pytest.raises(JobStoreError, match="no table 'jobs'"):
        read_apscheduler_jobs(aps_url, table="jobs")
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(JobStoreError, match="no SQLite database file"):
        read_apscheduler_jobs(f"sqlite:///{missing}")
    assert not missing.exists()  # not created by looking


def test_a_job_state_that_is_not_a_job_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "odd.sqlite"
    write_job_store(f"sqlite:///{path}", lambda scheduler: None)
    newer = {"version": 2, "id": "v2", "func": "m:f", "trigger": None, "args": (), "kwargs": {}}
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO apscheduler_jobs VALUES ('list', NULL, ?)", (pickle.dumps([1, 2]),))
        conn.execute("INSERT INTO apscheduler_jobs VALUES ('v2', NULL, ?)", (pickle.dumps(newer),))
    conn.close()
    errors = {job.id: job.error for job in read_apscheduler_jobs(f"sqlite:///{path}")}
    assert errors == {
        "list": "job_state is not an APScheduler 3 job",
        "v2": "job_state has version 2; only 1 is known",
    }


@pytest.mark.postgres
def test_a_postgresql_store_in_its_own_schema(postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA legacy"))
    write_job_store(
        postgres_url,
        lambda scheduler: scheduler.add_job(report, "cron", day_of_week=0, hour=9, id="monday"),
        engine=engine,
        tablename="jobs",
        tableschema="legacy",
    )
    engine.dispose()
    plain_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")  # psycopg all the same
    jobs = read_apscheduler_jobs(plain_url, table="jobs", schema="legacy")
    conversion = to_definitions(jobs, "UTC")
    assert [(d.source_id, d.job["cron"]) for d in conversion.definitions] == [("monday", "0 9 * * 1")]
