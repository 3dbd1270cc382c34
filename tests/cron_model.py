"""An independent model of the README's cron rules, for testing the real implementation against.

It shares no code with cronkeeper or cronsim: it parses a small cron dialect itself (numbers, names, ``*``,
ranges, steps and lists) and walks real time one minute at a time, asking the zone what the wall clock shows.
Slow and obvious on purpose.  It assumes zones whose offsets are whole minutes (every zone since 1972).

- A wall-clock time matches when minute, hour and month match and the day matches (day-of-month OR
  day-of-week when both are restricted, AND when either starts with ``*``).
- A job whose minute or hour field starts with ``*`` follows the clock: it fires at every real minute whose
  wall-clock time matches, on both passes of a repeated hour, never for wall times the clock skips.
- Any other job has a fixed time: it fires at a matching wall-clock time on its first pass only, and once at
  the instant the clock jumps forward if any wall time the jump skips matches.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MINUTE = timedelta(minutes=1)


def _value(text: str, names: list[str], offset: int) -> int:
    upper = text.upper()
    return names.index(upper) + offset if upper in names else int(text)


def parse_field(text: str, low: int, high: int, names: list[str] | None = None, offset: int = 0) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-")
            first, last = _value(a, names or [], offset), _value(b, names or [], offset)
            if names is DAYS and b.upper() == "SUN" and first != 0:
                last = 7  # MON-SUN: a range of days may end on Sunday
        else:
            first = _value(body, names or [], offset)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return values


class Model:
    def __init__(self, expression: str) -> None:
        minute, hour, dom, month, dow = expression.split()
        self.minutes = parse_field(minute, 0, 59)
        self.hours = parse_field(hour, 0, 23)
        self.doms = parse_field(dom, 1, 31)
        self.months = parse_field(month, 1, 12, MONTHS, 1)
        self.dows = {day % 7 for day in parse_field(dow, 0, 7, DAYS, 0)}
        self.either_day = not dom.startswith("*") and not dow.startswith("*")
        self.follows_clock = minute.startswith("*") or hour.startswith("*")

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.doms, (day.isoweekday() % 7) in self.dows
        return (in_month or in_week) if self.either_day else (in_month and in_week)

    def matches(self, wall: datetime) -> bool:
        return wall.minute in self.minutes and wall.hour in self.hours and self.day_matches(wall.date())

    def fires_at(self, local: datetime, wall: datetime, before: datetime) -> bool:
        """Whether the job fires at the real minute the zone shows as ``local`` (``wall`` without its zone);
        ``before`` is the wall time the zone showed a minute earlier."""
        if self.follows_clock:
            return self.matches(wall)
        if local.fold == 0 and self.matches(wall):
            return True
        skipped = before + MINUTE
        while skipped < wall:  # the clock jumped over these wall times just now
            if self.matches(skipped):
                return True
            skipped += MINUTE
        return False

    def next_after(
        self, instant: datetime, tz: ZoneInfo, *, limit: timedelta = timedelta(days=400)
    ) -> datetime:
        real = instant.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
        end = real + limit
        before = (real - MINUTE).astimezone(tz).replace(tzinfo=None, fold=0)
        while real < end:
            local = real.astimezone(tz)
            wall = local.replace(tzinfo=None, fold=0)
            if self.fires_at(local, wall, before):
                return real
            before = wall
            real += MINUTE
        raise AssertionError(f"no fire within {limit}")
