"""Cron expressions: the only code that parses, validates, iterates and describes them.

cronsim parses with Vixie cron / cronie semantics and walks the wall clock (naive local times, no zone).
This module turns those wall-clock times into real instants, whatever the size or hour of the zone's clock
changes: a fixed-time job whose time the clock skips runs once, when it jumps; one in a repeated stretch runs
once, on the first pass; jobs whose minute or hour field starts with ``*`` (and six-field expressions) follow
the clock, on both passes, never for skipped times.  It also enforces what a scheduler must check before it
saves anything: exactly five fields unless seconds are asked for, the ``@`` aliases, messages that name the
bad field, the refusal of expressions that can never fire, and a bound on every search.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from cronkeeper.exceptions import CronComputationError, InvalidScheduleError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

FIELD_RANGES = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L or LW",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT (0 and 7 are Sunday)",
}

# A fixed reference makes the "can it ever fire" check deterministic; cronsim looks 50 years ahead of it.
_PROBE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
# How far ahead a fire is looked for; a schedule with none in that time (one whose only times the zone's
# clock always skips, say) never fires.
HORIZON = timedelta(days=50 * 366)
# Wall-clock times looked at for one fire before giving up.  The most a real search needs is a day's worth of
# seconds (a seconds expression across a whole skipped day, as in Pacific/Apia in 2011), or fifty years of a
# schedule whose every time falls in a skipped stretch; this only stops a defect from hanging the scheduler.
MAX_CANDIDATES = 500_000


class CronExpression:
    """A validated cron expression; immutable, cheap to keep, evaluated in a given time zone."""

    __slots__ = ("_fields", "_fixed", "expression", "seconds")

    def __init__(self, expression: str, *, seconds: bool = False, field: str = "cron") -> None:
        text = " ".join(expression.split())
        if not text:
            raise InvalidScheduleError(field, "the cron expression is empty")
        if text.startswith("@"):
            if text.lower() not in ALIASES:
                raise InvalidScheduleError(
                    field, f"unknown alias {text!r}; use one of {', '.join(sorted(ALIASES))}"
                )
            cron_fields = ALIASES[text.lower()]
            seconds = False
        else:
            cron_fields = text
            expected = 6 if seconds else 5
            count = len(text.split())
            if count != expected:
                hint = "seconds first" if seconds else "a seconds field must be asked for explicitly"
                raise InvalidScheduleError(
                    field, f"expected {expected} fields, got {count} in {text!r} ({hint})"
                )
        self.expression = text
        self.seconds = seconds
        self._fields = _sunday_ends_ranges(cron_fields)
        # A fixed-time job runs once a day at its time, even when the clock skips or repeats it; any other
        # follows the clock.  Six-field expressions always follow the clock: Vixie cron has no seconds.
        minute, hour = cron_fields.split()[:2]
        self._fixed = not seconds and not minute.startswith("*") and not hour.startswith("*")
        self._check(field, cron_fields)

    def _check(self, field: str, written: str) -> None:
        try:
            probe = CronSim(self._fields, _PROBE_FROM)
        except CronSimError as exc:
            raise InvalidScheduleError(field, self._explain_error(str(exc), written)) from None
        try:
            next(probe)
        except StopIteration:
            raise InvalidScheduleError(field, f"{self.expression!r} can never fire") from None

    def _walk_from(self, wall: datetime) -> CronSim:
        """cronsim's walk of the wall clock from ``wall`` (naive), without parsing the expression again.

        Parsing was half the cost of a ``next_after``, which the scheduler pays for every fire.  A CronSim
        keeps the parsed fields beside its position, and iterating moves only the position (``dt``, and
        ``skip_initial_tick`` for reverse walks); so a copy of one parsed before, moved to ``wall``, walks
        as a new one would.  ``test_cron`` checks this against fresh CronSims."""
        walk: CronSim = object.__new__(CronSim)
        walk.__dict__.update(_parsed(self._fields).__dict__)
        walk.dt = wall.replace(microsecond=0) if wall.microsecond else wall
        walk.skip_initial_tick = False
        return walk

    def _explain_error(self, message: str, written: str) -> str:
        """The field cronsim refused, quoted as the user wrote it."""
        names = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"]
        values = written.split()
        if len(values) == 5:
            values.insert(0, "0")
        for name, value in zip(names, values, strict=True):
            if message == f"Bad {name}":
                if name == "day-of-month" and self._fields_parse_individually():
                    return (
                        f"{self.expression!r} can never fire (day {value} never occurs in the chosen months)"
                    )
                return f"{name} field {value!r} is invalid (allowed: {FIELD_RANGES[name]})"
        return f"{self.expression!r}: {message}"

    def _fields_parse_individually(self) -> bool:
        """True when every field is valid alone, so a day-of-month error means an impossible date."""
        values = self._fields.split()
        if len(values) == 5:
            values.insert(0, "0")
        day = values[3]
        try:
            CronSim(" ".join([*values[:3], day, "*", "*"]), _PROBE_FROM)
        except CronSimError:
            return False
        return True

    def next_after(self, instant: datetime, tz: ZoneInfo) -> datetime | None:
        """The first fire strictly after ``instant`` (aware), evaluated in ``tz``, as aware UTC; None when
        there is none within ``HORIZON`` (as cronsim, which gives up after 50 years without a match).

        Raises ``CronComputationError`` rather than search without end (it never should: see
        ``MAX_CANDIDATES``)."""
        floor = instant if instant.tzinfo is UTC else instant.astimezone(UTC)
        try:
            local = floor.astimezone(tz)
        except OverflowError:  # the zone's wall clock is past the last representable date already
            return None
        wall = datetime.combine(local.date(), local.time())  # naive, fold kept; cheaper than replace()
        best = self._first_from(wall, floor, tz)
        if not self._fixed and _on_first_pass(wall, tz):
            # On the first pass of a repeated stretch, the second pass of its earlier wall times is still
            # ahead too: the first of them that matches may come before ``best``.
            again = self._first_from(_second_pass_start(local, tz) - _ONE_MICROSECOND, floor, tz)
            if again is not None and (best is None or again < best):
                best = again
        return best

    def fires_after(self, instant: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """Every fire after ``instant``, in order: what calling :meth:`next_after` on each fire gives.

        Between two wall-clock times that each happen once, real time follows the wall clock, so the walk
        that found a fire goes on to the next one without starting over; only around a skipped or repeated
        time does each fire come from :meth:`next_after`.  Listing fires (previews, catch-up, the timeline)
        costs a third of what a ``next_after`` per fire does."""
        fire = self.next_after(instant, tz)
        while fire is not None:
            yield fire
            last = fire
            for last in self._fires_on_one_walk(fire, tz):
                yield last
            fire = self.next_after(last, tz)

    def _fires_on_one_walk(self, fire: datetime, tz: ZoneInfo) -> Iterator[datetime]:
        """The fires after ``fire`` for as long as the walk's wall times (``fire``'s own included) each
        happen once; it stops at the first that does not, and at the end of the walk, for ``next_after``.

        No fire can hide between two such times: a match between them would come first on the walk, and a
        second pass of an earlier time would need the clock to go back over ``fire``'s wall time, which then
        would happen twice."""
        local = fire.astimezone(tz)
        wall = datetime.combine(local.date(), local.time())
        if _only_instant(wall, tz) is None:
            return
        walk = self._walk_from(wall)
        try:
            while True:
                candidate = next(walk)
                # No further than next_after would look from the fire before (it would answer None).
                if candidate > _horizon(wall) or (following := _only_instant(candidate, tz)) is None:
                    return
                yield following
                wall = candidate
        except (StopIteration, OverflowError):
            return

    def _first_from(self, wall: datetime, floor: datetime, tz: ZoneInfo) -> datetime | None:
        """The earliest instant after ``floor`` of the first matching wall-clock time after ``wall`` that has
        one.  Later wall times cannot do better: from the wall time of ``floor`` on, real time follows the
        wall clock except across a repeated stretch, whose first pass comes before its second (the caller
        looks at the second pass of earlier wall times)."""
        # Wall-clock times are naive on purpose: the zone is applied to each by _real_instants.
        horizon = _horizon(wall)
        try:
            candidates = self._walk_from(wall)
            for _ in range(MAX_CANDIDATES):
                candidate = next(candidates)
                if candidate > horizon:
                    return None
                for real in _real_instants(candidate, tz, fixed=self._fixed):
                    if real > floor:
                        return real
        except (StopIteration, OverflowError):  # no fire before the last representable date
            return None
        raise CronComputationError(self.expression, tz.key, MAX_CANDIDATES)

    def describe(self) -> str:
        """A sentence a person can read, e.g. "At 03:00 on Monday through Friday"."""
        text: str = CronSim(self._fields, _PROBE_FROM).explain()
        day, _, weekday = self._fields.split()[-3:]
        if not day.startswith("*") and not weekday.startswith("*") and " and on " in text:
            # Both restricted: cron fires on either (the 13th, or a Friday), not on both at once.
            head, _, tail = text.rpartition(" and on ")
            text = f"{head} or on {tail}"
        return text

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CronExpression)
            and other.expression == self.expression
            and other.seconds == self.seconds
        )

    def __hash__(self) -> int:
        return hash((self.expression, self.seconds))

    def __repr__(self) -> str:
        return f"CronExpression({self.expression!r}, seconds={self.seconds})"


def _sunday_ends_ranges(cron_fields: str) -> str:
    """``MON-SUN`` means every day and ``SAT-SUN`` the weekend: a day-of-week range that ends on the name
    ``SUN`` ends on 7 (also Sunday), where taken literally (1-0) it would be a reversed range.  Numeric ranges
    stay as written, so ``5-1`` is still refused."""
    *others, days = cron_fields.split()
    parts = []
    for part in days.split(","):
        body, slash, step = part.partition("/")
        start, dash, end = body.partition("-")
        if dash and end.upper() == "SUN" and start.upper() not in ("SUN", "0"):
            body = f"{start}-7"
        parts.append(body + slash + step)
    return " ".join([*others, ",".join(parts)])


def _on_first_pass(wall: datetime, tz: ZoneInfo) -> bool:
    """Whether ``wall`` (naive, in ``tz``, its fold telling the pass) is on the first pass of a repeated
    stretch, so that the second pass of every wall time of that stretch, earlier ones included, is still to
    come."""
    if wall.fold:  # on the second pass already
        return False
    first, second = tz.utcoffset(wall), tz.utcoffset(_second_fold(wall))
    assert first is not None and second is not None
    return first > second


def _second_fold(wall: datetime) -> datetime:
    """``wall`` with fold 1: the second pass of a repeated time, the offset after the change of a skipped
    one.  Built rather than ``replace``d: this runs for every fire, and ``replace`` costs three times more."""
    return datetime(  # noqa: DTZ001 - a wall-clock time, naive on purpose
        wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second, wall.microsecond, fold=1
    )


def _second_pass_start(local: datetime, tz: ZoneInfo) -> datetime:
    """The wall-clock time at which the second pass of the repeated stretch ``local`` is in begins (``local``
    being on its first pass)."""
    second_pass = local.replace(fold=1).astimezone(UTC)
    change = _clock_change(local.astimezone(UTC), second_pass, tz)
    return change.astimezone(tz).replace(tzinfo=None)


def _real_instants(wall: datetime, tz: ZoneInfo, *, fixed: bool) -> list[datetime]:
    """When a job whose schedule matched the wall-clock time ``wall`` runs, in real (UTC) instants, in order.

    The zone answers both questions through PEP 495's ``fold``: fold 0 is the first pass of a repeated time
    and, for a skipped one, the offset before the change; fold 1 the second pass, or the offset after."""
    once = _only_instant(wall, tz)
    if once is not None:  # nearly always
        return [once]
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first < second:  # it happens twice (the clock went back): a fixed-time job runs on the first pass
        return [first] if fixed else [first, second]
    if not fixed:  # it never happens (the clock jumped over it): jobs that follow the clock skip it
        return []
    return [_clock_change(second, first, tz)]  # a fixed-time job runs once, when the clock jumps


def _horizon(wall: datetime) -> datetime:
    """How far from ``wall`` a fire is looked for: ``HORIZON``, or to the last wall time a datetime holds."""
    return wall + HORIZON if wall.year < _LAST_YEAR - 60 else _LAST_WALL_TIME


@functools.lru_cache(maxsize=1024)
def _parsed(fields: str) -> CronSim:
    """A CronSim of ``fields``, parsed once for every expression that has them, to be copied (never walked
    itself): about 6 KB each, so a thousand distinct expressions at most are kept parsed."""
    return CronSim(fields, _PROBE_FROM)


def _only_instant(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The instant of ``wall`` (naive) in ``tz`` if the zone's clock shows it exactly once, else None (it
    skips or repeats it).  Both offsets are read from the naive time: cheaper than two aware conversions."""
    offset = tz.utcoffset(wall)
    if offset is None or offset != tz.utcoffset(_second_fold(wall)):
        return None
    return datetime.combine(wall.date(), wall.time(), UTC) - offset


def _clock_change(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The instant the zone's clock changes, found between an instant ``before`` the change and one ``after``
    it (at most a day apart) by bisection to the second."""
    low, high = before, after
    offset_after = after.astimezone(tz).utcoffset()
    while high - low > _ONE_SECOND:
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0) if middle.microsecond else middle
        if middle <= low:
            middle = low + _ONE_SECOND
        if middle.astimezone(tz).utcoffset() == offset_after:
            high = middle
        else:
            low = middle
    return high


_ONE_SECOND = timedelta(seconds=1)
_LAST_YEAR = 9999
_LAST_WALL_TIME = datetime(_LAST_YEAR, 12, 31, 23, 59, 59, 999999)  # noqa: DTZ001 - a wall-clock time
_ONE_MICROSECOND = timedelta(microseconds=1)
