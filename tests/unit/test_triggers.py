"""Triggers (cron with a window, anchored interval, one date) and the duration syntax they are written in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronkeeper.cron import CronExpression
from cronkeeper.durations import format_duration, parse_duration
from cronkeeper.exceptions import ValidationError
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


# CronTrigger


def daily_at_nine_in_paris(start: str | None = None, end: str | None = None) -> CronTrigger:
    return CronTrigger(
        CronExpression("0 9 * * *"),
        ZoneInfo("Europe/Paris"),
        None if start is None else at(start),
        None if end is None else at(end),
    )


def test_cron_trigger_evaluates_in_its_zone() -> None:
    trigger = daily_at_nine_in_paris()
    # 09:00 in Paris is 08:00Z in winter and 07:00Z in summer.
    assert iso(trigger.next_after(at("2026-01-10T12:00:00+00:00"))) == "2026-01-11T08:00:00+00:00"
    assert iso(trigger.next_after(at("2026-07-10T12:00:00+00:00"))) == "2026-07-11T07:00:00+00:00"


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-01T00:00:00+00:00", "2026-01-12T08:00:00+00:00"),  # long before the start
        ("2026-01-11T08:00:00+00:00", "2026-01-12T08:00:00+00:00"),  # a fire before the start does not count
        ("2026-01-12T07:59:59+00:00", "2026-01-12T08:00:00+00:00"),
        ("2026-01-12T08:00:00+00:00", "2026-01-13T08:00:00+00:00"),  # the start's own fire is past
    ],
)
def test_cron_trigger_fires_from_its_start_inclusive(after: str, expected: str) -> None:
    trigger = daily_at_nine_in_paris(start="2026-01-12T08:00:00+00:00")
    assert iso(trigger.next_after(at(after))) == expected


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-13T12:00:00+00:00", "2026-01-14T08:00:00+00:00"),  # a fire exactly at the end counts
        ("2026-01-14T08:00:00+00:00", None),
        ("2026-02-01T00:00:00+00:00", None),
    ],
)
def test_cron_trigger_stops_at_its_end_inclusive(after: str, expected: str | None) -> None:
    trigger = daily_at_nine_in_paris(end="2026-01-14T08:00:00+00:00")
    assert iso(trigger.next_after(at(after))) == expected


def test_cron_trigger_describes_its_schedule_and_zone() -> None:
    trigger = daily_at_nine_in_paris()
    assert trigger.kind == "cron"
    assert trigger.describe() == "At 09:00 every day (Europe/Paris)"


# IntervalTrigger


def every_quarter_hour(end: str | None = None) -> IntervalTrigger:
    return IntervalTrigger(
        timedelta(minutes=15), at("2026-01-01T10:00:00+00:00"), None if end is None else at(end)
    )


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2025-12-31T23:00:00+00:00", "2026-01-01T10:00:00+00:00"),  # before the anchor: the anchor itself
        ("2026-01-01T09:59:59.999999+00:00", "2026-01-01T10:00:00+00:00"),
        ("2026-01-01T10:00:00+00:00", "2026-01-01T10:15:00+00:00"),  # strictly after
        ("2026-01-01T10:07:00+00:00", "2026-01-01T10:15:00+00:00"),  # back on the grid, no drift
        ("2026-01-01T10:14:59.999999+00:00", "2026-01-01T10:15:00+00:00"),
        ("2026-01-01T10:15:00+00:00", "2026-01-01T10:30:00+00:00"),
        ("2026-01-03T17:52:13+00:00", "2026-01-03T18:00:00+00:00"),  # long after: still the same grid
        ("2026-01-01T11:07:00+01:00", "2026-01-01T10:15:00+00:00"),  # any offset in, the same instant
    ],
)
def test_interval_trigger_fires_on_the_grid_of_its_anchor(after: str, expected: str) -> None:
    assert iso(every_quarter_hour().next_after(at(after))) == expected


def test_interval_trigger_counts_elapsed_time_across_dst() -> None:
    # Hourly from 04:00Z on the New York fall-back day: every real hour, whatever the wall clock says.
    trigger = IntervalTrigger(timedelta(hours=1), at("2026-11-01T04:00:00+00:00"))
    fire = at("2026-11-01T04:00:00+00:00")
    fires: list[str] = []
    for _ in range(3):
        following = trigger.next_after(fire)
        assert following is not None
        fires.append(following.isoformat())
        fire = following
    assert fires == ["2026-11-01T05:00:00+00:00", "2026-11-01T06:00:00+00:00", "2026-11-01T07:00:00+00:00"]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-01T10:20:00+00:00", "2026-01-01T10:30:00+00:00"),  # a fire exactly at the end counts
        ("2026-01-01T10:30:00+00:00", None),
        ("2025-12-31T00:00:00+00:00", "2026-01-01T10:00:00+00:00"),
    ],
)
def test_interval_trigger_stops_at_its_end_inclusive(after: str, expected: str | None) -> None:
    trigger = every_quarter_hour(end="2026-01-01T10:30:00+00:00")
    assert iso(trigger.next_after(at(after))) == expected


def test_interval_trigger_with_end_before_anchor_never_fires() -> None:
    trigger = every_quarter_hour(end="2026-01-01T09:00:00+00:00")
    assert trigger.next_after(at("2026-01-01T08:00:00+00:00")) is None


def test_interval_trigger_describes_its_period() -> None:
    trigger = IntervalTrigger(timedelta(hours=1, minutes=30), at("2026-01-01T00:00:00+00:00"))
    assert trigger.kind == "interval"
    assert trigger.describe() == "Every 1h30m"


# DateTrigger


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-05-01T09:59:59+00:00", "2026-05-01T10:00:00+00:00"),
        ("2026-05-01T10:00:00+00:00", None),
        ("2026-05-02T00:00:00+00:00", None),
    ],
)
def test_date_trigger_fires_once(after: str, expected: str | None) -> None:
    trigger = DateTrigger(at("2026-05-01T10:00:00+00:00"))
    assert iso(trigger.next_after(at(after))) == expected


def test_date_trigger_describes_its_instant() -> None:
    trigger = DateTrigger(at("2026-05-01T10:00:00+00:00"))
    assert trigger.kind == "date"
    assert trigger.describe() == "Once at 2026-05-01T10:00:00+00:00"


# durations


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1.5h", timedelta(minutes=90)),
        ("1500ms", timedelta(seconds=1.5)),
        ("0.25", timedelta(seconds=0.25)),
        (" 5M ", timedelta(minutes=5)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        (90, timedelta(seconds=90)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_parses_durations_as_people_write_them(value: str | float | timedelta, expected: timedelta) -> None:
    assert parse_duration(value, "timeout") == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "soon",
        "5x",
        "m5",
        "5mm",
        "1h 30m",
        "1h-30m",
        "-5",
        "-5m",
        -1,
        -0.5,
        timedelta(seconds=-1),
        True,
        "nan",
        "inf",
        "1e400",
        "99999999999999d",
        [5],
        None,
    ],
)
def test_rejects_bad_duration_naming_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_duration(value, "timeout")  # type: ignore[arg-type]
    assert excinfo.value.field == "timeout"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=1), "1d"),
        (timedelta(weeks=1), "7d"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        (timedelta(seconds=0.5), "0.5s"),
        (timedelta(seconds=1.5), "1.5s"),
    ],
)
def test_formats_durations_in_the_shortest_form(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize(
    "delta",
    [
        timedelta(0),
        timedelta(seconds=1),
        timedelta(seconds=59),
        timedelta(minutes=61),
        timedelta(hours=25),
        timedelta(days=400, seconds=7),
        timedelta(seconds=0.5),
        timedelta(seconds=12.25),
    ],
)
def test_formatted_duration_parses_back_to_itself(delta: timedelta) -> None:
    assert parse_duration(format_duration(delta), "every") == delta


def test_schedules_end_at_the_last_representable_date_instead_of_failing() -> None:
    late = datetime(9999, 12, 31, 12, tzinfo=UTC)
    interval = IntervalTrigger(timedelta(days=1), datetime(2026, 1, 1, tzinfo=UTC))
    assert interval.next_after(late) is None
    cron = CronTrigger(CronExpression("0 0 * * *"), ZoneInfo("Pacific/Kiritimati"))
    assert cron.next_after(late) is None
