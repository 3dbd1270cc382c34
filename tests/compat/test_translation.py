"""The facade's triggers against real APScheduler 3: where the semantics agree, the fire times agree.

Each row is a trigger as APScheduler users write it; both libraries list the next fires from one instant,
APScheduler with its own ``get_next_fire_time`` and the facade through the cron expression (or interval,
or date) it gives cronkeeper.  The deliberate differences are tested as such at the end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronkeeper.compat.apscheduler import CronTrigger, DateTrigger, IntervalTrigger
from cronkeeper.exceptions import InvalidScheduleError, ValidationError

aps_cron = pytest.importorskip("apscheduler.triggers.cron")
aps_interval = pytest.importorskip("apscheduler.triggers.interval")
aps_date = pytest.importorskip("apscheduler.triggers.date")

NOW = datetime.fromisoformat("2026-01-14T10:17:42.500000+00:00")  # a Wednesday, far from any DST change
ZONES = ["UTC", "Europe/Paris", "America/New_York"]


def fires(trigger: Any, now: datetime, count: int = 10) -> list[datetime]:
    """The next ``count`` fires, as APScheduler's scheduler asks a trigger for them."""
    out: list[datetime] = []
    fire = trigger.get_next_fire_time(None, now)
    while fire is not None and len(out) < count:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return out


CRON_ROWS: list[dict[str, Any]] = [
    {},  # every second
    {"hour": 3},
    {"hour": "3", "minute": "30"},
    {"minute": "*/15"},
    {"minute": "5/20"},
    {"hour": "*/6"},
    {"hour": "22-23,0-2"},
    {"hour": "0-23/5", "minute": 7},
    {"second": "*/30"},
    {"second": 15, "minute": "*/2"},
    {"minute": 0, "second": 0},
    {"day_of_week": "mon-fri", "hour": 9},
    {"day_of_week": "MON-Fri", "hour": "09", "minute": "00"},
    {"day_of_week": 0, "hour": 9},  # APScheduler: Monday
    {"day_of_week": "6"},  # Sunday
    {"day_of_week": "sun"},
    {"day_of_week": "sat,sun", "hour": "10", "minute": 15},
    {"day_of_week": "fri-sun"},
    {"day_of_week": "*/2", "hour": 0},  # Monday, Wednesday, Friday, Sunday
    {"day_of_week": "1-5/2"},  # Tuesday, Thursday, Saturday
    {"day_of_week": "4/1", "hour": 12},
    {"day_of_week": "mon,wed-fri", "hour": "8-18/2", "minute": 5},
    {"day_of_week": "mon-sun", "day": 13},  # every weekday is no restriction at all
    {"day": 1, "hour": 4},
    {"day": "1,15", "hour": 12},
    {"day": "last"},
    {"day": "last", "hour": 23, "minute": 59},
    {"day": "last fri"},
    {"day": "1st mon", "hour": 9},
    {"day": "3rd wed"},
    {"day": "5th sun"},
    {"day": "1st mon,15"},
    {"day": "*/2", "day_of_week": "mon"},
    {"day": "*/10,last", "day_of_week": "sat,sun", "hour": 6},
    {"month": 6},
    {"month": "jan-mar", "day": 1},
    {"month": "*/3"},
    {"month": "feb", "day": "last"},
    {"month": "jun-aug", "day_of_week": "fri", "hour": 17, "minute": 30},
    {"year": "*", "hour": 1},
    {"week": "*", "hour": 2},
    {"hour": 3, "start_date": "2026-02-01", "end_date": "2026-02-05 12:00:00"},
    {"minute": "*/30", "start_date": "2026-01-20 08:00:00"},
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("fields", CRON_ROWS, ids=str)
def test_cron_fields_fire_when_apscheduler_fires(fields: dict[str, Any], zone: str) -> None:
    expected = fires(aps_cron.CronTrigger(**fields, timezone=zone), NOW)
    assert expected, "a row that never fires tests nothing"
    assert fires(CronTrigger(**fields, timezone=zone), NOW) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"hour": 3},
        {"hour": "03", "minute": "0"},
        {"day_of_week": "MON-Fri", "hour": "9-17/2"},
        {"day": "Last FRI", "month": "jan,Jul"},
        {"minute": "*/5", "second": "0-0"},
        {"day": "last"},
        {"year": "*", "hour": 1},
    ],
    ids=str,
)
def test_cron_trigger_prints_like_apscheduler(fields: dict[str, Any]) -> None:
    assert str(CronTrigger(**fields, timezone="UTC")) == str(aps_cron.CronTrigger(**fields, timezone="UTC"))


INTERVAL_ROWS: list[dict[str, Any]] = [
    {"minutes": 5, "start_date": "2026-01-14 10:00:00"},
    {"hours": 1, "minutes": 30, "start_date": "2026-01-15 00:00:00"},
    {"days": 1, "start_date": "2025-12-01 06:30:00"},
    {"weeks": 1, "seconds": 30, "start_date": "2026-01-01 00:00:00"},
    {"seconds": 0, "start_date": "2026-01-14 10:17:00"},  # zero means one second
    {"seconds": 45, "start_date": "2026-01-14 12:00:00", "end_date": "2026-01-14 12:05:00"},
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("options", INTERVAL_ROWS, ids=str)
def test_interval_fires_when_apscheduler_fires(options: dict[str, Any], zone: str) -> None:
    expected = fires(aps_interval.IntervalTrigger(**options, timezone=zone), NOW)
    assert expected
    assert fires(IntervalTrigger(**options, timezone=zone), NOW) == expected


@pytest.mark.parametrize("seconds", [1, 90, 300, 3600, 86400 * 3])
def test_interval_prints_like_apscheduler(seconds: int) -> None:
    ours = IntervalTrigger(seconds=seconds, timezone="UTC")
    assert str(ours) == str(aps_interval.IntervalTrigger(seconds=seconds, timezone="UTC"))


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    "run_date",
    [
        "2026-02-01 09:30:00",
        "2026-01-20",
        datetime(2026, 7, 4, 12, 0),  # noqa: DTZ001 - naive, as users pass it
        "2026-03-01T08:00:00+00:00",
    ],
)
def test_date_fires_once_when_apscheduler_fires(run_date: Any, zone: str) -> None:
    theirs = aps_date.DateTrigger(run_date=run_date, timezone=zone)
    ours = DateTrigger(run_date=run_date, timezone=zone)
    expected = [theirs.get_next_fire_time(None, NOW)]
    assert fires(ours, NOW) == expected
    assert ours.get_next_fire_time(expected[0], expected[0]) is None
    assert str(ours) == str(theirs)


def test_date_trigger_prints_like_apscheduler() -> None:
    assert str(DateTrigger("2026-01-01 09:00:00", timezone="UTC")) == "date[2026-01-01 09:00:00 UTC]"


def test_from_crontab_reads_day_of_week_0_as_sunday_where_apscheduler_3_reads_monday() -> None:
    # The documented difference: cron's 0 is Sunday; APScheduler 3's from_crontab takes it for Monday.
    ours = fires(CronTrigger.from_crontab("0 9 * * 0", timezone="UTC"), NOW, 3)
    theirs = fires(aps_cron.CronTrigger.from_crontab("0 9 * * 0", timezone="UTC"), NOW, 3)
    assert [fire.strftime("%A %Y-%m-%d %H:%M") for fire in ours] == [
        "Sunday 2026-01-18 09:00",
        "Sunday 2026-01-25 09:00",
        "Sunday 2026-02-01 09:00",
    ]
    assert {fire.strftime("%A") for fire in theirs} == {"Monday"}


def test_from_crontab_1_to_5_is_monday_to_friday() -> None:
    ours = fires(CronTrigger.from_crontab("30 8 * * 1-5", timezone="Europe/Paris"), NOW, 5)
    assert [fire.strftime("%a") for fire in ours] == ["Thu", "Fri", "Mon", "Tue", "Wed"]
    assert {fire.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") for fire in ours} == {"08:30"}


@pytest.mark.parametrize(
    "expression", ["*/5 * * * *", "0 3 1,15 * *", "0 0 * * sun", "15 10 * jan-mar mon-fri", "0 12 L * *"]
)
def test_from_crontab_agrees_with_apscheduler_where_weekday_numbers_are_not_involved(expression: str) -> None:
    ours = CronTrigger.from_crontab(expression, timezone="UTC")
    if (
        "L" in expression
    ):  # cronkeeper's crontab knows L (last day of the month); compare with APScheduler's "last"
        theirs = aps_cron.CronTrigger(day="last", hour=12, minute=0, timezone="UTC")
    else:
        theirs = aps_cron.CronTrigger.from_crontab(expression, timezone="UTC")
    assert fires(ours, NOW) == fires(theirs, NOW)


def test_from_crontab_prints_the_fields_as_apscheduler_does() -> None:
    assert str(CronTrigger.from_crontab("0 3 * * 1-5")) == str(
        aps_cron.CronTrigger.from_crontab("0 3 * * 1-5")
    )


def test_from_crontab_refuses_other_than_five_fields() -> None:
    with pytest.raises(InvalidScheduleError, match="Wrong number of fields; got 6, expected 5"):
        CronTrigger.from_crontab("0 0 3 * * *")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"year": 2027, "hour": 1}, "year"),
        ({"year": "2026-2030"}, "year"),
        ({"week": 10}, "week"),
        ({"week": "*/2", "day_of_week": "mon"}, "week"),
        ({"day": 1, "day_of_week": "mon"}, "day_of_week"),
        ({"day": "1-7", "day_of_week": "fri"}, "day_of_week"),
        ({"day": "last fri", "day_of_week": "mon-fri"}, "day_of_week"),
        ({"day": "last", "day_of_week": "sun"}, "day_of_week"),
    ],
    ids=str,
)
def test_fields_cron_cannot_express_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        CronTrigger(**fields)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"hour": 24}, "hour"),
        ({"minute": "*/0"}, "minute"),
        ({"minute": "*/60"}, "minute"),
        ({"second": "5-70"}, "second"),
        ({"hour": "10-3"}, "hour"),
        ({"day_of_week": "funday"}, "day_of_week"),
        ({"day_of_week": 7}, "day_of_week"),
        ({"month": "smarch"}, "month"),
        ({"day": "6th mon"}, "day"),
        ({"day": "0"}, "day"),
        ({"hour": "three"}, "hour"),
    ],
    ids=str,
)
def test_bad_field_values_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CronTrigger(**fields)
    assert caught.value.field == field
    with pytest.raises(ValueError):  # noqa: PT011 - APScheduler refuses them too, in words of its own
        aps_cron.CronTrigger(**fields)


def test_a_cron_that_can_never_fire_is_refused() -> None:
    with pytest.raises(InvalidScheduleError, match="never fire"):
        CronTrigger(month=2, day=30)


@pytest.mark.parametrize(
    ("fields", "expression"),
    [
        ({"hour": 3}, "0 3 * * *"),
        ({"day_of_week": "mon-fri", "hour": "9-17/2"}, "0 9-17/2 * * 1-5"),
        ({"day_of_week": "sun"}, "0 0 * * 7"),
        ({"day": "last fri"}, "0 0 * * 5L"),
        ({"day": "2nd tue", "hour": 8}, "0 8 * * 2#2"),
        ({"month": 6}, "0 0 1 6 *"),
        ({"minute": "*/15", "second": "*/20"}, "*/20 */15 * * * *"),
        ({"second": 0, "minute": 30}, "30 * * * *"),
        ({"day": "*/2", "day_of_week": "mon"}, "0 0 */2 * 1"),
    ],
    ids=str,
)
def test_translations_read_as_plain_cron(fields: dict[str, Any], expression: str) -> None:
    trigger = CronTrigger(**fields)
    assert trigger.expression == expression
    assert trigger.seconds == (len(expression.split()) == 6)


def test_trigger_objects_of_apscheduler_itself_are_converted() -> None:
    from cronkeeper.compat.apscheduler.triggers import convert_foreign

    cron = convert_foreign(aps_cron.CronTrigger(day_of_week="mon-fri", hour=9, timezone="Europe/Paris"))
    assert fires(cron, NOW) == fires(
        aps_cron.CronTrigger(day_of_week="mon-fri", hour=9, timezone="Europe/Paris"), NOW
    )
    interval = aps_interval.IntervalTrigger(minutes=7, start_date="2026-01-14 10:00:00", timezone="UTC")
    assert fires(convert_foreign(interval), NOW) == fires(interval, NOW)
    date = aps_date.DateTrigger("2026-05-01 10:00:00", timezone="Asia/Tokyo")
    assert fires(convert_foreign(date), NOW) == fires(date, NOW)
