"""Cron expressions: the only code that parses, validates, iterates and describes them.

cronsim does the arithmetic with Vixie cron / cronie semantics, DST included: a fixed-time job whose
time falls
in the skipped spring hour runs once right after the jump, one in the repeated autumn hour runs once, and jobs
whose minute or hour field starts with ``*`` follow the clock.  This module adds what a scheduler must enforce
before it saves anything: exactly five fields unless seconds are asked for, the ``@`` aliases, messages that
name the bad field, and the refusal of expressions that can never fire.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from cronkeeper.exceptions import InvalidScheduleError

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


class CronExpression:
    """A validated cron expression; immutable, cheap to keep, evaluated in a given time zone."""

    __slots__ = ("_fields", "expression", "seconds")

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
        self._fields = cron_fields
        self._check(field)

    def _check(self, field: str) -> None:
        try:
            probe = CronSim(self._fields, _PROBE_FROM)
        except CronSimError as exc:
            raise InvalidScheduleError(field, self._explain_error(str(exc))) from None
        try:
            next(probe)
        except StopIteration:
            raise InvalidScheduleError(field, f"{self.expression!r} can never fire") from None

    def _explain_error(self, message: str) -> str:
        names = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"]
        values = self._fields.split()
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
        """The first fire strictly after ``instant`` (aware), evaluated in ``tz``, as aware UTC."""
        floor = instant.astimezone(UTC)
        try:
            sim = CronSim(self._fields, instant.astimezone(tz))
            fire: datetime = next(sim).astimezone(UTC)
            # cronsim works on the wall clock for fixed-time jobs and answers the first pass of a repeated
            # autumn hour, so from inside the second pass it can answer an instant already past.  Such a job
            # does not run again in the repeated hour (Vixie cron), so step on to its next real fire.
            while fire <= floor:
                fire = next(sim).astimezone(UTC)
        except (StopIteration, OverflowError):  # no fire before the last representable date
            return None
        return fire

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
