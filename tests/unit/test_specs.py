"""The one validation layer: user mappings to JobSpec and back, and every refusal naming its field."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronkeeper.cron import CronExpression
from cronkeeper.exceptions import InvalidScheduleError, ValidationError
from cronkeeper.models import CallableTarget, Catchup, CommandTarget, JobSpec, Overlap, RetryPolicy
from cronkeeper.specs import build_spec, spec_from_stored, spec_to_dict
from cronkeeper.specs.batch import SpecBatch
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger

NOW = datetime.fromisoformat("2026-03-02T08:00:00+00:00")
LATER = datetime.fromisoformat("2030-01-01T00:00:00+00:00")


def job(**fields: Any) -> dict[str, Any]:
    """A valid hourly command job, with ``fields`` added or replaced (a value of None removes the key)."""
    data: dict[str, Any] = {"id": "backup", "command": ["pg_dump", "app"], "cron": "0 * * * *"}
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def build(data: dict[str, Any], default_timezone: str = "UTC") -> JobSpec:
    return build_spec(data, default_timezone=default_timezone, now=NOW)


@pytest.fixture
def host_in_auckland(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the host's local zone far from UTC, to show it is never used."""
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# building


def test_minimal_job_gets_the_documented_defaults() -> None:
    spec = build(job())
    assert spec == JobSpec(
        id="backup",
        target=CommandTarget(("pg_dump", "app")),
        trigger=CronTrigger(CronExpression("0 * * * *"), ZoneInfo("UTC")),
    )
    assert spec.overlap is Overlap.ALLOW
    assert spec.max_instances == 1
    assert spec.misfire_grace == timedelta(seconds=60)
    assert spec.catchup is Catchup.ONCE
    assert spec.jitter == timedelta(0)
    assert spec.timeout is None
    assert spec.retry == RetryPolicy(0, timedelta(seconds=1), 2.0, timedelta(seconds=30), 0.1)
    assert spec.output_limit == 64 * 1024


def test_builds_every_option_a_command_job_can_have() -> None:
    spec = build(
        job(
            name="Nightly backup",
            description="Dump the app database",
            tags="db, nightly",
            command="pg_dump --file '/backups/app dump.sql' app",
            env={"PGHOST": "db"},
            cwd="/srv",
            timezone="Europe/Paris",
            timeout="10m",
            max_retries=3,
            retry_base="2s",
            retry_factor=3,
            retry_cap="1m",
            retry_jitter=0,
            overlap="forbid",
            max_instances=2,
            misfire_grace="5m",
            catchup="skip",
            jitter="30s",
            output_limit=1000,
        )
    )
    assert spec.display_name == "Nightly backup"
    assert spec.tags == ("db", "nightly")
    assert spec.target == CommandTarget(
        ("pg_dump", "--file", "/backups/app dump.sql", "app"), False, {"PGHOST": "db"}, "/srv"
    )
    assert spec.trigger == CronTrigger(CronExpression("0 * * * *"), ZoneInfo("Europe/Paris"))
    assert spec.timeout == timedelta(minutes=10)
    assert spec.retry == RetryPolicy(3, timedelta(seconds=2), 3.0, timedelta(minutes=1), 0.0)
    assert spec.overlap is Overlap.FORBID
    assert spec.max_instances == 2
    assert spec.misfire_grace == timedelta(minutes=5)
    assert spec.catchup is Catchup.SKIP
    assert spec.jitter == timedelta(seconds=30)
    assert spec.output_limit == 1000


def test_shell_command_is_kept_as_one_string() -> None:
    spec = build(job(command="tar czf - /data | gzip > /tmp/x", shell=True))
    assert spec.target == CommandTarget(("tar czf - /data | gzip > /tmp/x",), shell=True)


def test_builds_a_callable_job() -> None:
    spec = build(
        job(command=None, call="app.tasks:refresh", args=[1, "a"], kwargs={"full": True}, isolate=True)
    )
    assert spec.target == CallableTarget("app.tasks:refresh", (1, "a"), {"full": True}, isolate=True)


def test_interval_without_start_is_anchored_at_now() -> None:
    spec = build(job(cron=None, every="15m"))
    assert spec.trigger == IntervalTrigger(timedelta(minutes=15), NOW)


def test_interval_with_start_is_anchored_at_the_start() -> None:
    spec = build(job(cron=None, every=90, start="2026-03-02T08:00:30+00:00"))
    assert spec.trigger == IntervalTrigger(
        timedelta(seconds=90), datetime.fromisoformat("2026-03-02T08:00:30+00:00")
    )


def test_cron_with_seconds_must_be_asked_for() -> None:
    spec = build(job(cron="*/10 * * * * *", seconds=True))
    assert isinstance(spec.trigger, CronTrigger)
    assert spec.trigger.cron == CronExpression("*/10 * * * * *", seconds=True)


def test_cron_uses_the_default_zone_unless_the_job_names_one() -> None:
    assert build(job(), default_timezone="Asia/Tokyo").trigger == CronTrigger(
        CronExpression("0 * * * *"), ZoneInfo("Asia/Tokyo")
    )
    assert build(job(timezone="Europe/Paris"), default_timezone="Asia/Tokyo").trigger == CronTrigger(
        CronExpression("0 * * * *"), ZoneInfo("Europe/Paris")
    )


# naive instants are read in the job's zone


@pytest.mark.parametrize(
    ("fields", "default_timezone", "expected"),
    [
        ({"timezone": "America/New_York"}, "UTC", "2026-07-01T13:00:00+00:00"),
        ({"timezone": "Europe/Paris"}, "UTC", "2026-07-01T07:00:00+00:00"),
        ({}, "Asia/Tokyo", "2026-07-01T00:00:00+00:00"),
        ({}, "UTC", "2026-07-01T09:00:00+00:00"),
    ],
)
def test_naive_at_is_read_in_the_jobs_zone_not_the_hosts(
    host_in_auckland: None, fields: dict[str, Any], default_timezone: str, expected: str
) -> None:
    spec = build(job(cron=None, at="2026-07-01T09:00:00", **fields), default_timezone)
    assert isinstance(spec.trigger, DateTrigger)
    assert spec.trigger.at.isoformat() == expected


def test_naive_start_and_end_are_read_in_the_jobs_zone_not_the_hosts(host_in_auckland: None) -> None:
    spec = build(job(timezone="America/New_York", start="2026-01-05T09:00:00", end="2026-01-09T18:00:00"))
    assert isinstance(spec.trigger, CronTrigger)
    assert spec.trigger.start_at == datetime.fromisoformat("2026-01-05T14:00:00+00:00")
    assert spec.trigger.end_at == datetime.fromisoformat("2026-01-09T23:00:00+00:00")


def test_naive_datetime_object_is_read_in_the_jobs_zone(host_in_auckland: None) -> None:
    # TOML hands over local date-times as naive datetime objects.
    naive = datetime.fromisoformat("2026-07-01T09:00:00")
    spec = build(job(cron=None, at=naive, timezone="Europe/Paris"))
    assert isinstance(spec.trigger, DateTrigger)
    assert spec.trigger.at == datetime.fromisoformat("2026-07-01T07:00:00+00:00")


def test_instant_with_an_offset_keeps_its_offset_and_is_stored_as_utc() -> None:
    spec = build(job(cron=None, at="2026-07-01T09:00:00+02:00", timezone="America/New_York"))
    assert isinstance(spec.trigger, DateTrigger)
    assert spec.trigger.at.isoformat() == "2026-07-01T07:00:00+00:00"
    assert spec.trigger.at.tzinfo is UTC


def test_naive_interval_start_is_read_in_the_jobs_zone(host_in_auckland: None) -> None:
    spec = build(job(cron=None, every="1h", start="2026-01-05T09:00:00", timezone="Europe/Paris"))
    assert spec.trigger == IntervalTrigger(
        timedelta(hours=1), datetime.fromisoformat("2026-01-05T08:00:00+00:00")
    )


# round trip


ROUND_TRIPS: list[dict[str, Any]] = [
    job(),
    job(
        name="Nightly",
        description="Backup",
        tags=["db", "nightly"],
        cron="30 2 * * 1-5",
        timezone="Europe/Paris",
        start="2026-04-01T00:00:00",
        end="2026-12-31T23:59:00+01:00",
        command="pg_dump --file '/backups/a b.sql' app",
        env={"PGHOST": "db"},
        cwd="/srv",
        timeout="1h30m",
        max_retries=2,
        retry_base="500ms",
        retry_factor=1.5,
        retry_cap="10m",
        retry_jitter=0.5,
        overlap="replace",
        max_instances=3,
        misfire_grace="2h",
        catchup="all",
        jitter="45s",
        output_limit=0,
    ),
    job(command="echo $HOME | tee /tmp/x", shell=True, cron="@daily"),
    job(cron="*/5 * * * * *", seconds=True),
    job(command=None, call="app.jobs:refresh", args=[1, "two", None], kwargs={"n": {"a": [1]}}, isolate=True),
    job(cron=None, every="15m"),
    job(cron=None, every="1d", start="2026-03-01T04:00:00", end="2026-06-01T04:00:00", timezone="Asia/Tokyo"),
    job(cron=None, at="2026-05-01T12:00:00.250000", timezone="America/New_York", misfire_grace=0.5),
]


@pytest.mark.parametrize("data", ROUND_TRIPS)
def test_stored_form_reads_back_to_an_equal_spec(data: dict[str, Any]) -> None:
    spec = build(data)
    stored = spec_to_dict(spec)
    # The stored form must not depend on the defaults of whoever reads it back.
    again = build_spec(stored, default_timezone="Pacific/Auckland", now=LATER)
    assert again == spec
    assert spec_to_dict(again) == stored
    # The store reads it back without validating it again, and gets the same job.
    read = spec_from_stored(json.loads(json.dumps(stored)))
    assert read == spec
    assert spec_to_dict(read) == stored


def test_stored_form_is_the_user_level_shape() -> None:
    stored = spec_to_dict(build(job(timezone="Europe/Paris", timeout="90s", tags="a,b")))
    assert stored == {
        "id": "backup",
        "name": "",
        "description": "",
        "tags": ["a", "b"],
        "cron": "0 * * * *",
        "seconds": False,
        "timezone": "Europe/Paris",
        "start": None,
        "end": None,
        "command": ["pg_dump", "app"],
        "shell": False,
        "env": {},
        "cwd": None,
        "timeout": 90.0,
        "max_retries": 0,
        "retry_base": 1.0,
        "retry_factor": 2.0,
        "retry_cap": 30.0,
        "retry_jitter": 0.1,
        "overlap": "allow",
        "max_instances": 1,
        "misfire_grace": 60.0,
        "catchup": "once",
        "jitter": 0.0,
        "output_limit": 65536,
    }


# refusals


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron": None, "at": "2026-12-01T09:00:00+00:00", "start": "2026-11-01T00:00:00+00:00"}, "start"),
        ({"cron": None, "every": "5m", "seconds": True}, "seconds"),
        ({"colour": "red"}, "colour"),
        ({"id": None}, "id"),
        ({"id": ""}, "id"),
        ({"id": "-backup"}, "id"),
        ({"id": "night backup"}, "id"),
        ({"id": "a/b"}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"id": 7}, "id"),
        ({"every": "5m"}, "schedule"),
        ({"at": "2026-07-01T09:00:00+00:00"}, "schedule"),
        ({"cron": None}, "schedule"),
        ({"cron": ""}, "cron"),
        ({"command": None}, "target"),
        ({"command": ""}, "target"),
        ({"command": []}, "target"),
        ({"call": "app.jobs:refresh"}, "target"),
        ({"command": None, "call": "app.jobs"}, "call"),
        ({"command": None, "call": "refresh()"}, "call"),
        ({"command": None, "call": "app.jobs:refresh", "shell": True}, "shell"),
        ({"command": None, "call": "app.jobs:refresh", "env": {"A": "1"}}, "env"),
        ({"command": None, "call": "app.jobs:refresh", "args": "1, 2"}, "args"),
        ({"command": None, "call": "app.jobs:refresh", "kwargs": [1]}, "kwargs"),
        ({"command": None, "call": "app.jobs:refresh", "isolate": "yes"}, "isolate"),
        ({"command": "echo 'unclosed"}, "command"),
        ({"command": [""]}, "command"),
        ({"command": ["echo", 1]}, "command"),
        ({"command": 5}, "command"),
        ({"command": ["echo", "hi"], "shell": True}, "command"),
        ({"shell": "yes"}, "shell"),
        ({"args": [1]}, "args"),
        ({"kwargs": {"a": 1}}, "kwargs"),
        ({"isolate": True}, "isolate"),
        ({"env": {"A": 1}}, "env"),
        ({"env": ["A=1"]}, "env"),
        ({"cwd": 5}, "cwd"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"timezone": 2}, "timezone"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),
        ({"cron": "* * * * *", "seconds": True}, "cron"),
        ({"seconds": "false"}, "seconds"),
        ({"cron": None, "every": "0s"}, "every"),
        ({"cron": None, "every": "soon"}, "every"),
        ({"cron": None, "every": -5}, "every"),
        ({"cron": None, "every": [5]}, "every"),
        ({"cron": None, "at": "next tuesday"}, "at"),
        ({"cron": None, "at": 1767225600}, "at"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-01-01T00:00:00+00:00", "start": "2026-02-01T00:00:00+00:00"}, "end"),
        ({"end": "2026-01-01T00:00:00+00:00", "start": "2026-01-01T00:00:00+00:00"}, "end"),
        ({"timeout": "-5s"}, "timeout"),
        ({"timeout": -5}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "forever"}, "timeout"),
        ({"timeout": {"minutes": 5}}, "timeout"),
        ({"misfire_grace": "-1s"}, "misfire_grace"),
        ({"misfire_grace": 0}, "misfire_grace"),
        ({"jitter": "-1s"}, "jitter"),
        ({"overlap": "sometimes"}, "overlap"),
        ({"overlap": "ALLOW"}, "overlap"),
        ({"catchup": "never"}, "catchup"),
        ({"max_instances": 0}, "max_instances"),
        ({"max_instances": "2"}, "max_instances"),
        ({"max_instances": 1.5}, "max_instances"),
        ({"max_instances": True}, "max_instances"),
        ({"max_retries": -1}, "max_retries"),
        ({"retry_base": 0}, "retry_base"),
        ({"retry_cap": "-1s"}, "retry_cap"),
        ({"retry_factor": 0.5}, "retry_factor"),
        ({"retry_factor": "2"}, "retry_factor"),
        ({"retry_jitter": 1.5}, "retry_jitter"),
        ({"retry_jitter": True}, "retry_jitter"),
        ({"output_limit": -1}, "output_limit"),
        ({"name": 5}, "name"),
        ({"description": ["a"]}, "description"),
        ({"tags": 5}, "tags"),
        ({"tags": ["ok", 5]}, "tags"),
        ({"tags": ["a,b"]}, "tags"),  # a form or the CLI would read it back as two tags
        ({"tags": [" padded"]}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"env": {"": "x"}}, "env"),  # names the operating system refuses when the job runs
        ({"env": {"A=B": "x"}}, "env"),
        ({"env": {"KEY": "x" * (128 * 1024)}}, "env"),  # past what Linux lets a program start with
        ({"tags": ["a\nb"]}, "tags"),  # a browser drops the line break from a text field
    ],
)
def test_bad_input_raises_validation_error_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        build(job(**fields))
    assert excinfo.value.field == field
    assert excinfo.value.reason
    assert str(excinfo.value) == f"{field}: {excinfo.value.reason}"


def test_two_schedules_are_a_schedule_error() -> None:
    with pytest.raises(InvalidScheduleError, match="exactly one of cron, every or at"):
        build(job(every="5m"))


def test_unknown_option_is_reported_before_anything_else() -> None:
    with pytest.raises(ValidationError) as excinfo:
        build({"id": "bad id", "shedule": "0 * * * *"})
    assert excinfo.value.field == "shedule"
    assert excinfo.value.reason == "unknown option"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": "bad\x00name"}, "name"),
        ({"description": "\ud800"}, "description"),
        ({"env": {"TOKEN": "a\x00b"}}, "env"),
        ({"command": ["echo", "\udfff"]}, "command"),
        ({"tags": ["ok", "x\x00"]}, "tags"),
        ({"name": "n" * 201}, "name"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"tags": ["t" * 51]}, "tags"),
    ],
)
def test_text_that_no_database_keeps_as_given_is_refused(options: dict[str, object], field: str) -> None:
    data = {"id": "j", "cron": "0 3 * * *", "command": ["true"], **options}
    with pytest.raises(ValidationError) as error:
        build_spec(data, now=NOW)
    assert error.value.field == field


def test_call_arguments_must_be_storable_too() -> None:
    data = {"id": "j", "cron": "0 3 * * *", "call": "tests.jobs:noop", "args": ["\x00"]}
    with pytest.raises(ValidationError) as error:
        build_spec(data, now=NOW)
    assert error.value.field == "args"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retry_factor": float("nan")}, "retry_factor"),
        ({"retry_factor": float("inf")}, "retry_factor"),
        ({"retry_factor": 1e308}, "retry_factor"),
        ({"every": "999999999d", "cron": None}, "every"),
        ({"start": "9999-12-31T23:00:00+00:00"}, "start"),
        ({"end": "9999-12-31T23:00:00"}, "end"),
        ({"at": "9999-12-31T23:59:59-12:00", "cron": None}, "at"),
    ],
)
def test_values_past_what_schedules_can_reach_are_refused(options: dict[str, object], field: str) -> None:
    data: dict[str, object] = {"id": "j", "cron": "0 3 * * *", "command": ["true"], **options}
    data = {key: value for key, value in data.items() if value is not None}
    with pytest.raises(ValidationError) as error:
        build_spec(data, now=NOW)
    assert error.value.field == field


def test_a_steep_backoff_reaches_its_cap_without_overflowing() -> None:
    policy = RetryPolicy(max_retries=5000, factor=1000.0, cap=timedelta(minutes=5), jitter=0.0)
    assert policy.delay(4000) == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_retries", 10_001), ("max_instances", 0), ("max_instances", 10**20), ("output_limit", 2**40)],
)
def test_counts_are_bounded(field: str, value: int) -> None:
    data = {"id": "j", "cron": "0 3 * * *", "command": ["true"], field: value}
    with pytest.raises(ValidationError) as error:
        build_spec(data, now=NOW)
    assert error.value.field == field
    assert "must be from" in error.value.reason


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"id": "a", "call": "tests.jobs:metrics", "every": "1h"}, id="call-only-id"),
        pytest.param({"id": "a", "command": ["true"], "cron": "5 * * * *"}, id="command-only-id"),
        pytest.param(
            {"id": "a", "call": "tests.jobs:metrics", "every": "1h", "name": "N", "tags": ["x"], "args": [1]},
            id="call-own-fields",
        ),
        pytest.param({"id": "a", "command": ["true"], "every": "1m", "description": "d"}, id="command-own"),
        pytest.param({"id": "a", "call": "tests.jobs:metrics", "every": "1h", "name": None}, id="name-none"),
    ],
)
def test_a_bulk_load_stores_each_job_as_adding_it_alone_would(data: dict[str, Any]) -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    batch = SpecBatch(default_timezone="UTC", now=now)
    batch.build({**data, "id": "first"})  # the shape is then known: the job below takes the shared path
    bulk = batch.build(data)
    alone = build_spec(data, default_timezone="UTC", now=now)
    assert json.loads(bulk.stored_json) == spec_to_dict(alone)
    assert (bulk.id, bulk.name) == (alone.id, alone.name)
