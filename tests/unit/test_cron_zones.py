"""Cron across every kind of clock change: whole and half hours, 45 minutes, at midnight, negative DST.

Each table row is literal: after this instant, this expression fires next at that one.  The property test
compares the implementation with an independent minute-by-minute model of the README's rules
(``tests/cron_model.py``) near every clock change of a few years in zones chosen for their odd changes.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronkeeper import scheduler as _scheduler  # noqa: F401  (the package imports as users import it)
from cronkeeper.cron import CronExpression
from cronkeeper.exceptions import CronComputationError
from tests.cron_model import Model

ODD_ZONES = [
    "Pacific/Chatham",  # +12:45 / +13:45
    "Australia/Lord_Howe",  # a 30-minute change
    "America/Santiago",  # midnight skipped in spring, repeated in autumn
    "America/Havana",
    "Asia/Beirut",
    "Africa/Cairo",
    "Atlantic/Azores",  # changes at midnight (00:00 -> 01:00)
    "Asia/Tehran",
    "Europe/Dublin",  # negative DST in the tz database (winter is the "summer" offset)
    "Pacific/Apia",
    "America/St_Johns",  # -03:30 / -02:30, changes at 02:00
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "Antarctica/Troll",  # a two-hour change
]


def next_fire(expression: str, zone: str, after: str) -> str:
    tz = ZoneInfo(zone)
    fire = CronExpression(expression).next_after(datetime.fromisoformat(after), tz)
    assert fire is not None
    return fire.astimezone(tz).isoformat()


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        # Chatham falls back 03:45 -> 02:45: 03:00-03:44 happens twice; a job that follows the clock runs on
        # the second pass too (this computation used to never return).
        ("* 3 * * *", "Pacific/Chatham", "2026-04-04T13:59:00+00:00", "2026-04-05T03:00:00+12:45"),
        ("* 3 * * *", "Pacific/Chatham", "2026-04-04T14:15:00+00:00", "2026-04-05T03:01:00+12:45"),
        # ...and springs forward 02:45 -> 03:45: 03:45 is the first 03:xx of the day.
        ("* 3 * * *", "Pacific/Chatham", "2026-09-26T12:00:00+00:00", "2026-09-27T03:45:00+13:45"),
        # A fixed time in Chatham's skipped stretch runs once, when the clock jumps.
        ("0 3 * * *", "Pacific/Chatham", "2026-09-26T12:00:00+00:00", "2026-09-27T03:45:00+13:45"),
        # Santiago skips midnight on 2026-09-06 (00:00 -> 01:00): 00:xx does not exist that Sunday.
        ("*/30 0 * * 0", "America/Santiago", "2026-09-05T12:00:00-04:00", "2026-09-13T00:00:00-03:00"),
        ("*/15 1 * * 0", "America/Santiago", "2026-09-05T12:00:00-04:00", "2026-09-06T01:00:00-03:00"),
        ("0 0 * * *", "America/Santiago", "2026-09-05T12:00:00-04:00", "2026-09-06T01:00:00-03:00"),
        # Lord Howe: +10:30 -> +11:00 at 02:00 (02:00-02:29 skipped); back at 02:00 in April.
        ("* 3 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00+00:00", "2026-10-04T03:00:00+11:00"),
        ("* 8 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00+00:00", "2026-04-05T08:00:00+10:30"),
        ("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00+00:00", "2026-10-04T02:30:00+11:00"),
        ("* 1 * * *", "Australia/Lord_Howe", "2026-04-04T14:59:00+00:00", "2026-04-05T01:30:00+10:30"),
        # Havana and the Azores change at midnight; Cairo and Beirut in the small hours.
        ("0 0 * * *", "America/Havana", "2026-03-07T12:00:00-05:00", "2026-03-08T01:00:00-04:00"),
        ("*/20 0 * * *", "Atlantic/Azores", "2026-03-28T12:00:00-01:00", "2026-03-30T00:00:00+00:00"),
        # Dublin's negative DST is an ordinary change of the wall clock.
        ("30 1 * * *", "Europe/Dublin", "2026-03-28T12:00:00+00:00", "2026-03-29T02:00:00+01:00"),
        ("*/30 1 * * *", "Europe/Dublin", "2026-10-25T00:45:00+01:00", "2026-10-25T01:00:00+01:00"),
        ("*/30 1 * * *", "Europe/Dublin", "2026-10-25T01:30:00+01:00", "2026-10-25T01:00:00+00:00"),
        # St John's: -03:30 / -02:30 at 02:00.
        ("30 2 * * *", "America/St_Johns", "2026-03-07T12:00:00-03:30", "2026-03-08T03:00:00-02:30"),
        # Troll jumps two hours (+00 -> +02 at 01:00 UTC).
        ("0 2 * * *", "Antarctica/Troll", "2026-03-28T12:00:00+00:00", "2026-03-29T03:00:00+02:00"),
    ],
)
def test_next_fire_across_odd_clock_changes(expression: str, zone: str, after: str, expected: str) -> None:
    assert next_fire(expression, zone, after) == expected


@functools.cache
def clock_changes(zone: str) -> tuple[datetime, ...]:
    """The instants the zone's offset changes from 2026 to 2030, to the minute."""
    tz = ZoneInfo(zone)
    found = []
    hour = datetime(2026, 1, 1, tzinfo=UTC)
    previous = hour.astimezone(tz).utcoffset()
    while hour.year < 2031:
        following = hour + timedelta(hours=1)
        offset = following.astimezone(tz).utcoffset()
        if offset != previous:
            minute = hour
            while minute.astimezone(tz).utcoffset() == previous:
                minute += timedelta(minutes=1)
            found.append(minute)
            previous = offset
        hour = following
    return tuple(found)


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        st.integers(2, 30).map(lambda step: f"*/{step}"),
        number.map(str),
        st.tuples(number, number).map(lambda pair: f"{min(pair)}-{max(pair)}"),
        st.lists(number, min_size=2, max_size=4, unique=True).map(
            lambda values: ",".join(map(str, sorted(values)))
        ),
        st.tuples(number, number, st.integers(2, 10)).map(lambda t: f"{min(t[:2])}-{max(t[:2])}/{t[2]}"),
    )


expressions = st.tuples(
    _field(0, 59),
    _field(0, 23),
    st.sampled_from(["*", "*", "*", "1-15", "*/2"]),
    st.just("*"),
    st.sampled_from(["*", "*", "*", "0", "1-5", "6,0", "SUN", "MON-FRI", "SAT-SUN", "MON-SUN"]),
).map(" ".join)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expression=expressions,
    zone=st.sampled_from(ODD_ZONES),
    change=st.integers(0, 1000),
    offset_minutes=st.integers(-180, 180),
)
def test_agrees_with_an_independent_model_near_every_clock_change(
    expression: str, zone: str, change: int, offset_minutes: int
) -> None:
    changes = clock_changes(zone) or (
        datetime(2026, 3, 21, 20, 30, tzinfo=UTC),
    )  # Tehran: no changes since 2022
    tz = ZoneInfo(zone)
    after = changes[change % len(changes)] + timedelta(minutes=offset_minutes, seconds=change % 7 * 10)
    cron, model = CronExpression(expression), Model(expression)
    listed = cron.fires_after(after, tz)
    for _ in range(3):  # a few fires in a row: the second pass of a repeated hour follows the first
        expected = model.next_after(after, tz)
        assert cron.next_after(after, tz) == expected, (expression, zone, after.isoformat())
        # Listing walks on from fire to fire, handing over to next_after only around a clock change.
        assert next(listed, None) == expected, (expression, zone, after.isoformat())
        after = expected


def test_a_search_that_finds_nothing_stops_and_names_the_expression_and_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("cronkeeper.cron.MAX_CANDIDATES", 3)
    # On Chatham's spring-forward day 02:45-03:44 never happens: four wall times match in it.
    with pytest.raises(CronComputationError, match=r"'\*/15 2,3 \* \* \*' in Pacific/Chatham"):
        CronExpression("*/15 2,3 * * *").next_after(
            datetime.fromisoformat("2026-09-27T02:44:00+12:45"), ZoneInfo("Pacific/Chatham")
        )


def test_a_seconds_schedule_on_the_first_pass_goes_on_to_the_second() -> None:
    cron, berlin = CronExpression("* * * * * *", seconds=True), ZoneInfo("Europe/Berlin")
    fired = [datetime.fromisoformat("2026-10-25T02:59:58+02:00")]
    for _ in range(3):
        fire = cron.next_after(fired[-1], berlin)
        assert fire is not None
        fired.append(fire)
    assert [fire.astimezone(berlin).isoformat() for fire in fired[1:]] == [
        "2026-10-25T02:59:59+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:00:01+01:00",
    ]


def test_the_second_pass_is_found_on_the_last_fall_back_a_datetime_can_hold() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first_pass = datetime(9999, 10, 31, 2, 59, 30, tzinfo=berlin)
    fire = CronExpression("* 2 31 10 *").next_after(first_pass, berlin)
    assert fire is not None
    assert fire.astimezone(berlin).isoformat() == "9999-10-31T02:00:00+01:00"


@pytest.mark.parametrize(
    ("expression", "zone"),
    [
        ("* 2 * 3 0L", "Europe/Berlin"),  # 02:xx on the last Sunday of March: the hour clocks jump over
        ("*/30 0 * 3 0#2", "America/Havana"),  # midnight of the second Sunday of March, likewise
    ],
)
def test_a_schedule_whose_every_time_the_clock_skips_has_no_next_fire(expression: str, zone: str) -> None:
    assert CronExpression(expression).next_after(datetime(2026, 1, 1, tzinfo=UTC), ZoneInfo(zone)) is None
