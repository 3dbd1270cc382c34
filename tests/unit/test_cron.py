"""Cron expressions: parsing, validation and Vixie cron / cronie time semantics (DESIGN.md section 4).

Every expectation is a literal UTC instant, so a table row reads as "after X, this expression fires at Y".
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from cronkeeper.cron import CronExpression
from cronkeeper.exceptions import InvalidScheduleError, ValidationError


def fires(expression: str, zone: str, after: str, count: int, *, seconds: bool = False) -> list[str]:
    """The next ``count`` fires of ``expression`` in ``zone`` strictly after ``after``, as UTC ISO strings."""
    cron = CronExpression(expression, seconds=seconds)
    tz = ZoneInfo(zone)
    instant = datetime.fromisoformat(after)
    out: list[str] = []
    for _ in range(count):
        fire = cron.next_after(instant, tz)
        assert fire is not None
        out.append(fire.isoformat())
        instant = fire
    return out


# day of week and day of month


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN", "Sun"])
def test_day_of_week_0_7_and_the_name_all_mean_sunday(sunday: str) -> None:
    # 2026-01-01 is a Thursday; the next Sundays are the 4th and the 11th.
    assert fires(f"0 9 * * {sunday}", "UTC", "2026-01-01T00:00:00+00:00", 2) == [
        "2026-01-04T09:00:00+00:00",
        "2026-01-11T09:00:00+00:00",
    ]


@pytest.mark.parametrize("weekdays", ["1-5", "MON-FRI", "mon-fri", "1,2,3,4,5", "mon,tue,wed,thu,fri"])
def test_one_to_five_is_monday_to_friday(weekdays: str) -> None:
    # From Friday 2026-01-02 09:00: the weekend is skipped, Monday 5th to Friday 9th follow, then Monday 12th.
    assert fires(f"0 9 * * {weekdays}", "UTC", "2026-01-02T09:00:00+00:00", 6) == [
        "2026-01-05T09:00:00+00:00",
        "2026-01-06T09:00:00+00:00",
        "2026-01-07T09:00:00+00:00",
        "2026-01-08T09:00:00+00:00",
        "2026-01-09T09:00:00+00:00",
        "2026-01-12T09:00:00+00:00",
    ]


def test_month_names_work() -> None:
    assert fires("0 0 1 jan,JUL *", "UTC", "2026-01-01T00:00:00+00:00", 2) == [
        "2026-07-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # The 13th OR any Friday (Vixie cron: both fields restricted means either matches).
        (
            "0 0 13 * 5",
            "2026-01-01T00:00:00+00:00",
            [
                "2026-01-02T00:00:00+00:00",  # Friday
                "2026-01-09T00:00:00+00:00",  # Friday
                "2026-01-13T00:00:00+00:00",  # Tuesday the 13th
                "2026-01-16T00:00:00+00:00",  # Friday
            ],
        ),
        # Day 30 never occurs in February, but Mondays do: the expression is valid and fires on them.
        (
            "0 0 30 2 1",
            "2026-01-01T00:00:00+00:00",
            ["2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00", "2026-02-16T00:00:00+00:00"],
        ),
    ],
)
def test_fires_when_either_day_of_month_or_day_of_week_matches(
    expression: str, after: str, expected: list[str]
) -> None:
    assert fires(expression, "UTC", after, len(expected)) == expected


def test_day_of_month_starting_with_a_star_means_both_must_match() -> None:
    # "*/10" starts with "*", so as in cronie the days 1, 11, 21, 31 must ALSO be Fridays.
    assert fires("0 0 */10 * 5", "UTC", "2026-01-01T00:00:00+00:00", 3) == [
        "2026-05-01T00:00:00+00:00",
        "2026-07-31T00:00:00+00:00",
        "2026-08-21T00:00:00+00:00",
    ]


def test_leap_day_is_valid_and_fires_in_leap_years() -> None:
    assert fires("0 0 29 2 *", "UTC", "2026-01-01T00:00:00+00:00", 2) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
    ]


# spring forward: the clock jumps from 02:00 to 03:00


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected"),
    [
        # New York, 2026-03-08: 02:00 EST (07:00Z) becomes 03:00 EDT. 02:30 runs once at 03:00 EDT.
        (
            "America/New_York",
            "30 2 * * *",
            "2026-03-07T12:00:00+00:00",
            ["2026-03-08T07:00:00+00:00", "2026-03-09T06:30:00+00:00"],
        ),
        # Paris, 2026-03-29: 02:00 CET (01:00Z) becomes 03:00 CEST. 02:30 runs once at 03:00 CEST.
        (
            "Europe/Paris",
            "30 2 * * *",
            "2026-03-28T12:00:00+00:00",
            ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"],
        ),
        # Two fixed times inside the skipped hour still make one run, not two.
        (
            "America/New_York",
            "0,30 2 * * *",
            "2026-03-07T12:00:00+00:00",
            ["2026-03-08T07:00:00+00:00", "2026-03-09T06:00:00+00:00", "2026-03-09T06:30:00+00:00"],
        ),
        # From the instant of the catch-up run, the next fire is the next day's, not a second catch-up.
        (
            "Europe/Paris",
            "30 2 * * *",
            "2026-03-29T01:00:00+00:00",
            ["2026-03-30T00:30:00+00:00"],
        ),
    ],
)
def test_fixed_time_job_in_skipped_spring_hour_runs_once_right_after_the_jump(
    zone: str, expression: str, after: str, expected: list[str]
) -> None:
    assert fires(expression, zone, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected"),
    [
        # 01:45 EST, then 03:00 EDT: the quarter hours of the missing hour are not made up.
        (
            "America/New_York",
            "*/15 * * * *",
            "2026-03-08T06:30:00+00:00",
            ["2026-03-08T06:45:00+00:00", "2026-03-08T07:00:00+00:00", "2026-03-08T07:15:00+00:00"],
        ),
        (
            "Europe/Paris",
            "*/15 * * * *",
            "2026-03-29T00:30:00+00:00",
            ["2026-03-29T00:45:00+00:00", "2026-03-29T01:00:00+00:00", "2026-03-29T01:15:00+00:00"],
        ),
        # A wildcard hour with a fixed minute: 01:30 EST then 03:30 EDT; there is no 02:30.
        (
            "America/New_York",
            "30 * * * *",
            "2026-03-08T06:00:00+00:00",
            ["2026-03-08T06:30:00+00:00", "2026-03-08T07:30:00+00:00"],
        ),
        # The minute field starts with "*": a wildcard job, so it does not run at all on the day of the jump.
        (
            "America/New_York",
            "*/15 2 * * *",
            "2026-03-08T06:30:00+00:00",
            ["2026-03-09T06:00:00+00:00", "2026-03-09T06:15:00+00:00"],
        ),
    ],
)
def test_wildcard_job_just_follows_the_clock_across_spring_forward(
    zone: str, expression: str, after: str, expected: list[str]
) -> None:
    assert fires(expression, zone, after, len(expected)) == expected


# fall back: an hour of wall-clock time happens twice


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected"),
    [
        # New York, 2026-11-01: 01:00-02:00 happens in EDT (05:00Z-06:00Z), then again in EST (06:00Z-07:00Z).
        (
            "America/New_York",
            "30 1 * * *",
            "2026-10-31T12:00:00+00:00",
            ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"],
        ),
        # Paris, 2026-10-25: 02:00-03:00 happens in CEST (00:00Z-01:00Z), then again in CET (01:00Z-02:00Z).
        (
            "Europe/Paris",
            "30 2 * * *",
            "2026-10-24T12:00:00+00:00",
            ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"],
        ),
        # Paris 01:30 is before the repeated hour: an ordinary day, once.
        (
            "Europe/Paris",
            "30 1 * * *",
            "2026-10-24T12:00:00+00:00",
            ["2026-10-24T23:30:00+00:00", "2026-10-26T00:30:00+00:00"],
        ),
    ],
)
def test_fixed_time_job_in_repeated_autumn_hour_runs_once(
    zone: str, expression: str, after: str, expected: list[str]
) -> None:
    assert fires(expression, zone, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected"),
    [
        # Asked during the first pass, after the fire (01:45 EDT): the second pass does not fire again.
        ("America/New_York", "30 1 * * *", "2026-11-01T05:45:00+00:00", "2026-11-02T06:30:00+00:00"),
        # Asked during the second pass (01:00 EST), before its 01:30: still no second run that day.
        ("America/New_York", "30 1 * * *", "2026-11-01T06:00:00+00:00", "2026-11-02T06:30:00+00:00"),
        ("America/New_York", "30 1 * * *", "2026-11-01T06:10:00+00:00", "2026-11-02T06:30:00+00:00"),
        ("America/New_York", "0,45 1 * * *", "2026-11-01T06:10:00+00:00", "2026-11-02T06:00:00+00:00"),
        ("Europe/Paris", "30 2 * * *", "2026-10-25T01:00:00+00:00", "2026-10-26T01:30:00+00:00"),
        ("Europe/Paris", "30 2 * * *", "2026-10-25T01:15:00+00:00", "2026-10-26T01:30:00+00:00"),
    ],
)
def test_fixed_time_job_asked_inside_repeated_hour_never_answers_a_past_instant(
    zone: str, expression: str, after: str, expected: str
) -> None:
    assert fires(expression, zone, after, 1) == [expected]


@pytest.mark.parametrize(
    ("zone", "expression", "after", "expected"),
    [
        (
            "America/New_York",
            "*/30 * * * *",
            "2026-11-01T04:45:00+00:00",
            [
                "2026-11-01T05:00:00+00:00",  # 01:00 EDT
                "2026-11-01T05:30:00+00:00",  # 01:30 EDT
                "2026-11-01T06:00:00+00:00",  # 01:00 EST
                "2026-11-01T06:30:00+00:00",  # 01:30 EST
                "2026-11-01T07:00:00+00:00",  # 02:00 EST
            ],
        ),
        (
            "America/New_York",
            "30 * * * *",
            "2026-11-01T04:45:00+00:00",
            ["2026-11-01T05:30:00+00:00", "2026-11-01T06:30:00+00:00", "2026-11-01T07:30:00+00:00"],
        ),
        (
            "Europe/Paris",
            "*/30 * * * *",
            "2026-10-24T23:45:00+00:00",
            [
                "2026-10-25T00:00:00+00:00",  # 02:00 CEST
                "2026-10-25T00:30:00+00:00",  # 02:30 CEST
                "2026-10-25T01:00:00+00:00",  # 02:00 CET
                "2026-10-25T01:30:00+00:00",  # 02:30 CET
                "2026-10-25T02:00:00+00:00",  # 03:00 CET
            ],
        ),
        (
            "Europe/Paris",
            "30 * * * *",
            "2026-10-24T23:45:00+00:00",
            ["2026-10-25T00:30:00+00:00", "2026-10-25T01:30:00+00:00", "2026-10-25T02:30:00+00:00"],
        ),
        # Minute field starting with "*" is a wildcard job even with a fixed hour: both passes.
        (
            "America/New_York",
            "*/30 1 * * *",
            "2026-11-01T04:45:00+00:00",
            [
                "2026-11-01T05:00:00+00:00",
                "2026-11-01T05:30:00+00:00",
                "2026-11-01T06:00:00+00:00",
                "2026-11-01T06:30:00+00:00",
                "2026-11-02T06:00:00+00:00",
            ],
        ),
    ],
)
def test_wildcard_job_runs_on_both_passes_of_repeated_autumn_hour(
    zone: str, expression: str, after: str, expected: list[str]
) -> None:
    assert fires(expression, zone, after, len(expected)) == expected


# next_after


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", "2026-01-01T09:00:00+00:00"),
        ("America/New_York", "2026-01-01T14:00:00+00:00"),
        ("Asia/Kolkata", "2026-01-01T03:30:00+00:00"),
        ("Europe/Paris", "2026-01-01T08:00:00+00:00"),
    ],
)
def test_next_after_evaluates_in_the_zone_and_answers_aware_utc(zone: str, expected: str) -> None:
    instant = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    fire = CronExpression("0 9 * * *").next_after(instant, ZoneInfo(zone))
    assert fire is not None
    assert fire.tzinfo is UTC
    assert fire.isoformat() == expected


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # A fire exactly at the instant is not after it.
        ("2026-01-01T09:00:00+00:00", "2026-01-02T09:00:00+00:00"),
        ("2026-01-01T08:59:59.999999+00:00", "2026-01-01T09:00:00+00:00"),
        ("2026-01-01T09:00:00.000001+00:00", "2026-01-02T09:00:00+00:00"),
        ("2026-01-01T10:00:00+01:00", "2026-01-02T09:00:00+00:00"),  # any offset in, the same instant
    ],
)
def test_next_after_is_strictly_after_the_instant(after: str, expected: str) -> None:
    fire = CronExpression("0 9 * * *").next_after(datetime.fromisoformat(after), ZoneInfo("UTC"))
    assert fire is not None
    assert fire.isoformat() == expected


def test_seconds_field_is_used_when_asked_for() -> None:
    assert fires("*/20 * * * * *", "UTC", "2026-01-01T00:00:00+00:00", 3, seconds=True) == [
        "2026-01-01T00:00:20+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:00+00:00",
    ]


@pytest.mark.parametrize(
    ("alias", "after", "expected"),
    [
        ("@yearly", "2026-06-01T00:10:00+00:00", "2027-01-01T00:00:00+00:00"),
        ("@annually", "2026-06-01T00:10:00+00:00", "2027-01-01T00:00:00+00:00"),
        ("@monthly", "2026-06-01T00:10:00+00:00", "2026-07-01T00:00:00+00:00"),
        ("@weekly", "2026-06-01T00:10:00+00:00", "2026-06-07T00:00:00+00:00"),  # Sunday
        ("@daily", "2026-06-01T00:10:00+00:00", "2026-06-02T00:00:00+00:00"),
        ("@midnight", "2026-06-01T00:10:00+00:00", "2026-06-02T00:00:00+00:00"),
        ("@hourly", "2026-06-01T00:10:00+00:00", "2026-06-01T01:00:00+00:00"),
        ("@DAILY", "2026-06-01T00:10:00+00:00", "2026-06-02T00:00:00+00:00"),
    ],
)
def test_aliases_fire_like_the_expressions_they_stand_for(alias: str, after: str, expected: str) -> None:
    assert fires(alias, "UTC", after, 1) == [expected]


def test_alias_ignores_the_seconds_opt_in() -> None:
    cron = CronExpression("@hourly", seconds=True)
    assert not cron.seconds
    assert fires("@hourly", "UTC", "2026-06-01T00:10:00+00:00", 1, seconds=True) == [
        "2026-06-01T01:00:00+00:00"
    ]


# rejected expressions


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 0 30 2 *", "can never fire"),
        ("0 0 31 4,6,9,11 *", "can never fire"),
        ("61 * * * *", "minute field '61'"),
        ("*/0 * * * *", "minute field '*/0'"),
        ("5-1 * * * *", "minute field '5-1'"),
        ("0 24 * * *", "hour field '24'"),
        ("0 0 0 * *", "day-of-month field '0'"),
        ("0 0 32 * *", "day-of-month field '32'"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 0 * foo *", "month field 'foo'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("0 0 * * 5-1", "day-of-week field '5-1'"),
        ("* * * *", "expected 5 fields, got 4"),
        ("0 * * * * *", "expected 5 fields, got 6"),
        ("* * * * * * *", "expected 5 fields, got 7"),
        ("@reboot", "unknown alias '@reboot'"),
        ("@every 5m", "unknown alias"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_rejects_bad_expression_naming_the_field(expression: str, reason: str) -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        CronExpression(expression)
    assert excinfo.value.field == "cron"
    assert reason in excinfo.value.reason


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * * *", "second field '61'"),
        ("0 61 * * * *", "minute field '61'"),
        ("* * * * *", "expected 6 fields, got 5"),
        ("0 0 0 30 2 *", "can never fire"),
    ],
)
def test_rejects_bad_expression_with_seconds(expression: str, reason: str) -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        CronExpression(expression, seconds=True)
    assert reason in excinfo.value.reason


def test_error_names_the_field_the_caller_gives() -> None:
    with pytest.raises(ValidationError) as excinfo:
        CronExpression("61 * * * *", field="schedule")
    assert excinfo.value.field == "schedule"
    assert str(excinfo.value).startswith("schedule: ")


def test_schedule_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="can never fire"):
        CronExpression("0 0 30 2 *")


# identity and description


def test_whitespace_is_normalised_so_equal_expressions_compare_equal() -> None:
    a = CronExpression("  0   3 * *\t1-5 ")
    b = CronExpression("0 3 * * 1-5")
    assert a == b
    assert hash(a) == hash(b)
    assert a.expression == "0 3 * * 1-5"
    assert a != CronExpression("0 4 * * 1-5")


def test_seconds_flag_is_part_of_identity() -> None:
    assert CronExpression("0 * * * * *", seconds=True) != CronExpression("0 * * * *")
    assert repr(CronExpression("0 * * * *")) == "CronExpression('0 * * * *', seconds=False)"


@pytest.mark.parametrize(
    ("expression", "description"),
    [
        ("0 3 * * 1-5", "At 03:00 on Monday through Friday"),
        ("@hourly", "At the start of every hour"),
        ("@weekly", "At 00:00 on Sunday"),
        ("*/15 * * * *", "Every 15th minute of every hour"),
        ("0 0 13 * 5", "At 00:00 on the 13th day of month or on Friday"),
        ("0 0 1,15 * MON", "At 00:00 on the first and the 15th day of month or on Monday"),
        ("0 0 */2 * 1-5", "At 00:00 on every second day of month if it's on Monday through Friday"),
    ],
)
def test_describes_the_expression_in_words(expression: str, description: str) -> None:
    assert CronExpression(expression).describe() == description


# decisions where cron implementations differ


@pytest.mark.parametrize(
    ("days", "first_fires"),
    [
        # A range may end on the name SUN: Sunday counts as 7 there (taken literally, 1-0 would be reversed).
        ("MON-SUN", ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]),
        ("sat-sun", ["2026-01-03", "2026-01-04", "2026-01-10", "2026-01-11"]),
        ("FRI-SUN,TUE", ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-06"]),
        ("SUN-SUN", ["2026-01-04", "2026-01-11", "2026-01-18", "2026-01-25"]),
        ("7-SUN", ["2026-01-04", "2026-01-11", "2026-01-18", "2026-01-25"]),
    ],
)
def test_a_day_of_week_range_may_end_on_sunday(days: str, first_fires: list[str]) -> None:
    # 2026-01-01 is a Thursday.
    fired = fires(f"0 9 * * {days}", "UTC", "2026-01-01T00:00:00+00:00", 4)
    assert fired == [f"{day}T09:00:00+00:00" for day in first_fires]


def test_a_start_with_a_step_runs_to_the_end_of_the_field_as_cronie_reads_it() -> None:
    assert fires("5/20 * * * *", "UTC", "2026-01-01T00:00:00+00:00", 4) == [
        "2026-01-01T00:05:00+00:00",
        "2026-01-01T00:25:00+00:00",
        "2026-01-01T00:45:00+00:00",
        "2026-01-01T01:05:00+00:00",
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 9 * * 5-1", "day-of-week field '5-1' is invalid"),
        ("0 9 15W * *", "day-of-month field '15W' is invalid"),
        ("0 9 * * MON-SUN/0", "day-of-week field 'MON-SUN/0' is invalid"),
    ],
)
def test_reversed_numeric_ranges_and_nearest_weekdays_are_refused(expression: str, message: str) -> None:
    with pytest.raises(InvalidScheduleError, match=message):
        CronExpression(expression)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("*/7 * * * *", False),
        ("0 3 * * 1-5", False),
        ("30 2 29 2 *", False),
        ("0 0 L * *", False),
        ("0 9 13 * FRI", False),
        ("*/10 * 8-17 * * MON-FRI", True),
    ],
)
def test_a_walk_from_the_parsed_expression_matches_a_fresh_cronsim(expression: str, seconds: bool) -> None:
    """next_after reuses the CronSim parsed at construction, moved to each start: it must walk as a new one
    (this is what breaks first if cronsim ever keeps more state than its position)."""
    cron = CronExpression(expression, seconds=seconds)
    fields = " ".join(expression.split()) if seconds else expression
    for start in (
        datetime(2026, 1, 31, 23, 59, 59, 500000),  # noqa: DTZ001 - wall-clock times, as cronsim walks them
        datetime(2027, 10, 31, 2, 30),  # noqa: DTZ001 - wall-clock times, as cronsim walks them
        datetime(2028, 2, 28),  # noqa: DTZ001 - wall-clock times, as cronsim walks them
    ):
        reused, fresh = cron._walk_from(start), CronSim(fields, start)
        assert [next(reused) for _ in range(50)] == [next(fresh) for _ in range(50)]


@pytest.mark.parametrize(
    ("zone", "after"), [("UTC", "9999-12-30T11:00:00+00:00"), ("Etc/GMT+12", "9999-12-31T10:00:00+00:00")]
)
def test_the_last_fires_a_datetime_can_hold_are_listed_as_next_after_finds_them(
    zone: str, after: str
) -> None:
    cron, tz = CronExpression("0 0,12 * * *"), ZoneInfo(zone)
    expected: list[datetime] = []
    fire = cron.next_after(datetime.fromisoformat(after), tz)
    while fire is not None:
        expected.append(fire)
        fire = cron.next_after(fire, tz)
    assert list(cron.fires_after(datetime.fromisoformat(after), tz)) == expected
    assert expected[-1] == datetime(
        9999, 12, 31, 12, tzinfo=UTC
    )  # the last noon, later in the day than the start
