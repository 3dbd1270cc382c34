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
# Wall-clock times looked at for one fire before giving up.  A real search needs at most a few thousand (a
# seconds expression across a two-hour clock change); this only stops a defect from hanging the scheduler.
MAX_CANDIDATES = 100_000


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
        """The first fire strictly after ``instant`` (aware), evaluated in ``tz``, as aware UTC.

        Raises ``CronComputationError`` rather than search without end (it never should: see
        :func:`_real_instants` and ``MAX_CANDIDATES``)."""
        floor = instant.astimezone(UTC)
        try:
            local = floor.astimezone(tz)
            walls = CronSim(self._fields, local.replace(tzinfo=None) - _first_pass_overlap(local))
            best: datetime | None = None
            for _ in range(MAX_CANDIDATES):
                candidate = next(walls)
                first, instants = _real_instants(candidate, tz, fixed=self._fixed)
                for real in instants:
                    if real > floor:
                        best = real if best is None or real < best else best
                        break
                # Wall times are met in order, and real time follows them except in a repeated hour: a
                # second-pass fire found first may still be beaten by a first-pass one of a later wall time.
                if best is not None and (first is None or first > floor):
                    return best
            raise CronComputationError(self.expression, tz.key, MAX_CANDIDATES)
        except (StopIteration, OverflowError):  # no fire before the last representable date
            return None

    def describe(self) -> str:
        """A sentence a person can read, e.g. "At 03:00 on Monday through Friday"."""
        text: str = CronSim(self._fields, _PROBE_FROM).explain()
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
        if dash and end.upper() == "SUN" and start.upper() not in ("SUN", "0", "7"):
            body = f"{start}-7"
        parts.append(body + slash + step)
    return " ".join([*others, ",".join(parts)])


def _first_pass_overlap(local: datetime) -> timedelta:
    """How far back wall-clock times can still be ahead in real time: when ``local`` (aware, in the job's
    zone) is on the first pass of a repeated stretch, the second pass of every wall time of that stretch,
    earlier ones included, is still to come.  Zero anywhere else."""
    if local.fold:  # on the second pass already
        return timedelta(0)
    first, second = local.utcoffset(), local.replace(fold=1).utcoffset()
    assert first is not None and second is not None
    return max(first - second, timedelta(0))


def _real_instants(wall: datetime, tz: ZoneInfo, *, fixed: bool) -> tuple[datetime | None, list[datetime]]:
    """When a job whose schedule matched the wall-clock time ``wall`` runs, in real (UTC) instants, in order;
    and the first instant ``wall`` names at all (None for a wall time the clock skips and the job with it).

    The zone answers both questions through PEP 495's ``fold``: fold 0 is the first pass of a repeated time
    and, for a skipped one, the offset before the change; fold 1 the second pass, or the offset after."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:  # the wall time happens once: nearly always
        return first, [first]
    if first < second:  # it happens twice (the clock went back): a fixed-time job runs on the first pass
        return first, [first] if fixed else [first, second]
    if not fixed:  # it never happens (the clock jumped over it): jobs that follow the clock skip it
        return None, []
    jump = _jump(second, first, tz)  # a fixed-time job runs once, when the clock jumps
    return jump, [jump]


def _jump(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The instant the clock jumps forward, found between an instant ``before`` it and one ``after`` it (at
    most a few hours apart) by bisection to the second."""
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
