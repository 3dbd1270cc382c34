"""APScheduler 3's cron fields, read the way APScheduler reads them and written as a standard cron expression.

APScheduler's ``CronTrigger(hour=3, day_of_week="mon-fri")`` is not a crontab: its weekdays count from
Monday = 0, fields left out are filled in (those smaller than the smallest one given with their minimum,
the larger ones with ``*``), and day and day of week must both match.  Standard cron (cronsim, hence
cronkeeper) counts weekdays from Sunday = 0 and fires when *either* day field matches if both are
restricted.  This module parses each field into terms, renders them as APScheduler prints them (for
``str(trigger)``), and writes the cron expression with the same fire times, or raises a
:class:`~cronkeeper.exceptions.InvalidScheduleError` naming the field that cron cannot express.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from cronkeeper.exceptions import InvalidScheduleError

FIELD_NAMES = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "year": "*",
        "month": "1",
        "day": "1",
        "week": "*",
        "day_of_week": "*",
        "hour": "0",
        "minute": "0",
        "second": "0",
    }
)
LIMITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "year": (1970, 9999),
        "month": (1, 12),
        "day": (1, 31),
        "week": (1, 53),
        "day_of_week": (0, 6),
        "hour": (0, 23),
        "minute": (0, 59),
        "second": (0, 59),
    }
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
POSITIONS = ("1st", "2nd", "3rd", "4th", "5th", "last")

_SEPARATOR = re.compile(r" *, *")
_ALL = re.compile(r"\*(?:/(?P<step>\d+))?$")
_RANGE = re.compile(r"(?P<first>\d+)(?:-(?P<last>\d+))?(?:/(?P<step>\d+))?$")
_NAMES = re.compile(r"(?P<first>[a-z]+)(?:-(?P<last>[a-z]+))?$", re.IGNORECASE)
_POSITION = re.compile(rf"(?P<position>{'|'.join(POSITIONS)}) +(?P<weekday>\w+)$", re.IGNORECASE)
_LAST_DAY = re.compile(r"last$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Every:
    """``*`` or ``*/step``."""

    step: int | None = None

    def __str__(self) -> str:
        return f"*/{self.step}" if self.step else "*"


@dataclass(frozen=True, slots=True)
class Span:
    """``first``, ``first-last``, ``first-last/step`` or ``first/step`` (to the field's maximum); ``names``
    holds the month or weekday names it was written with, which is how APScheduler prints it back."""

    first: int
    last: int | None = None
    step: int | None = None
    names: tuple[str, ...] | None = None

    def __str__(self) -> str:
        last = self.first if self.last is None and self.step is None else self.last
        if self.names is not None:
            return "-".join(self.names)
        text = f"{self.first}-{last}" if last is not None and last != self.first else str(self.first)
        return f"{text}/{self.step}" if self.step else text


@dataclass(frozen=True, slots=True)
class LastDay:
    """``last``: the last day of the month."""

    def __str__(self) -> str:
        return "last"


@dataclass(frozen=True, slots=True)
class Nth:
    """``1st mon`` … ``5th mon``, ``last mon``: a weekday's position in the month (``position`` 5 = last)."""

    position: int
    weekday: int

    def __str__(self) -> str:
        return f"{POSITIONS[self.position]} {WEEKDAYS[self.weekday]}"


Term = Every | Span | LastDay | Nth


@dataclass(frozen=True, slots=True)
class CronField:
    """One field of an APScheduler cron trigger; ``is_default`` when it was filled in, not given."""

    name: str
    terms: tuple[Term, ...]
    is_default: bool = False

    def __str__(self) -> str:
        return ",".join(str(term) for term in self.terms)

    @property
    def unrestricted(self) -> bool:
        return any(term == Every() for term in self.terms)


def build_fields(values: Mapping[str, object]) -> tuple[CronField, ...]:
    """All eight fields from the ones given, with APScheduler's filling of the others."""
    given = {name: value for name, value in values.items() if value is not None}
    fields: list[CronField] = []
    remaining = len(given)
    for name in FIELD_NAMES:
        if name in given:
            fields.append(parse_field(name, given[name]))
            remaining -= 1
        elif given and remaining == 0:
            fields.append(parse_field(name, DEFAULTS[name], is_default=True))
        else:
            fields.append(parse_field(name, "*", is_default=True))
    return tuple(fields)


def parse_field(name: str, value: object, *, is_default: bool = False) -> CronField:
    text = str(value).strip()
    terms = tuple(_parse_term(name, part) for part in _SEPARATOR.split(text))
    return CronField(name, terms, is_default)


def _parse_term(field: str, text: str) -> Term:
    match = _ALL.match(text)
    if match:
        return _checked(field, Every(_step(field, match["step"])))
    match = _RANGE.match(text)
    if match:
        last = None if match["last"] is None else int(match["last"])
        return _checked(field, Span(int(match["first"]), last, _step(field, match["step"])))
    term = _parse_named(field, text)
    if term is None:
        raise InvalidScheduleError(field, f"unrecognised expression {text!r}")
    return term


def _parse_named(field: str, text: str) -> Term | None:
    if field == "day":
        if _LAST_DAY.match(text):
            return LastDay()
        match = _POSITION.match(text)
        if match:
            return Nth(POSITIONS.index(match["position"].lower()), _name(field, match["weekday"], WEEKDAYS))
        return None
    names = {"month": MONTHS, "day_of_week": WEEKDAYS}.get(field)
    match = _NAMES.match(text)
    if names is None or match is None:
        return None
    offset = 1 if field == "month" else 0
    first = _name(field, match["first"], names)
    last = None if match["last"] is None else _name(field, match["last"], names)
    written = tuple(part.lower() for part in (match["first"], match["last"]) if part)
    if last is not None and last == first:
        written = written[:1]
    return _checked(field, Span(first + offset, None if last is None else last + offset, names=written))


def _name(field: str, text: str, names: tuple[str, ...]) -> int:
    try:
        return names.index(text.lower())
    except ValueError:
        raise InvalidScheduleError(field, f"unknown name {text!r} (use {', '.join(names)})") from None


def _step(field: str, text: str | None) -> int | None:
    if text is None:
        return None
    step = int(text)
    if step == 0:
        raise InvalidScheduleError(field, "the step must be higher than 0")
    return step


def _checked(field: str, term: Every | Span) -> Every | Span:
    """APScheduler's range checks (plus the first value against the maximum, which it forgets)."""
    low, high = LIMITS[field]
    if isinstance(term, Span):
        last = term.last if term.last is not None else (term.first if term.step is None else high)
        if term.first < low or term.first > high or last > high:
            raise InvalidScheduleError(field, f"{term} is out of range ({low}-{high})")
        if term.first > last:
            raise InvalidScheduleError(field, f"{term}: the first value of a range must not exceed the last")
        span = last - term.first
    else:
        span = high - low
    if term.step and term.step > span:
        raise InvalidScheduleError(field, f"{term}: the step {term.step} is larger than the range ({span})")
    return term


# ---- translation to standard cron ----------------------------------------------------------------------


def to_cron(fields: Iterable[CronField]) -> tuple[str, bool]:
    """The cron expression with the fire times of APScheduler's fields and whether it has a seconds field
    (only when the seconds are not just ``0``, so a plain schedule keeps cron's daylight-saving rules)."""
    by_name = {field.name: field for field in fields}
    for name in ("year", "week"):
        if not by_name[name].unrestricted:
            raise InvalidScheduleError(
                name, f"{by_name[name]!s}: cron has no {name} field; only '*' can be translated"
            )
    day, weekday = _day_fields(by_name["day"], by_name["day_of_week"])
    parts = [_numeric(by_name[name]) for name in ("minute", "hour")]
    parts += [day, _numeric(by_name["month"]), weekday]
    second = _numeric(by_name["second"])
    if second == "0":
        return " ".join(parts), False
    return " ".join([second, *parts]), True


def _numeric(field: CronField) -> str:
    return ",".join(_term_text(term, LIMITS[field.name][1]) for term in field.terms)


def _term_text(term: Term, high: int) -> str:
    if isinstance(term, Every):
        return str(term)
    if isinstance(term, LastDay):
        return "L"
    assert isinstance(term, Span)
    if term.step is not None:
        return f"{term.first}-{high if term.last is None else term.last}/{term.step}"
    if term.last is None or term.last == term.first:
        return str(term.first)
    return f"{term.first}-{term.last}"


def _day_fields(day: CronField, weekday: CronField) -> tuple[str, str]:
    """Cron's day-of-month and day-of-week fields for APScheduler's day and day_of_week (which must both
    match).  Cron ANDs its two day fields only when one starts with ``*``; otherwise it ORs them."""
    plain = [term for term in day.terms if not isinstance(term, Nth)]
    nths = [term for term in day.terms if isinstance(term, Nth)]
    weekdays = _weekday_text(weekday)
    if nths:
        if weekdays is not None:
            raise InvalidScheduleError(
                "day_of_week", f"cannot be combined with a weekday position in day ({day!s}) in cron"
            )
        positions = ",".join(_nth_text(term) for term in nths)
        if not plain:
            return "*", positions
        if _all_days(plain):
            return "*", "*"
        # Both restricted: cron fires on either, which is the union APScheduler means within one field.
        return ",".join(_day_term_text(term) for term in plain), positions
    steps_first = sorted(plain, key=lambda term: not isinstance(term, Every))
    day_text = ",".join(_term_text(term, 31) for term in steps_first)
    if weekdays is None:
        return day_text, "*"
    if _all_days(plain):
        return "*", weekdays
    if day_text.startswith("*"):
        return day_text, weekdays  # a leading '*' makes cron require both, as APScheduler does
    raise InvalidScheduleError(
        "day_of_week",
        f"cron cannot require both day={day!s} and day_of_week={weekday!s} "
        "(it fires when either matches); use one of them, or day='*/n'",
    )


def _all_days(terms: Sequence[Term]) -> bool:
    """Whether day terms match every day of every month (``*``, ``1-31``…): no restriction at all."""
    days: set[int] = set()
    for term in terms:
        if isinstance(term, Every):
            days.update(range(1, 32, term.step or 1))
        elif isinstance(term, Span):
            last = term.last if term.last is not None else (31 if term.step else term.first)
            days.update(range(term.first, last + 1, term.step or 1))
    return len(days) == 31


def _day_term_text(term: Term) -> str:
    """A day term that must not start with ``*`` (which would switch cron to AND)."""
    if isinstance(term, Every):
        return f"1-31/{term.step}"
    return _term_text(term, 31)


def _nth_text(term: Nth) -> str:
    cron_day = term.weekday + 1  # cron: Monday = 1 … Sunday = 7
    return f"{cron_day}L" if term.position == 5 else f"{cron_day}#{term.position + 1}"


def _weekday_text(field: CronField) -> str | None:
    """Cron's day-of-week field for APScheduler's (Monday = 0 … Sunday = 6 becomes 1 … 7, 7 being Sunday in
    cron too), or None when every day matches."""
    if len(weekday_numbers(field)) == 7:
        return None
    parts = []
    for term in field.terms:
        assert isinstance(term, Every | Span)
        if isinstance(term, Every):
            parts.append(f"1-7/{term.step}")
        elif term.step is not None:
            last = 6 if term.last is None else term.last
            parts.append(f"{term.first + 1}-{last + 1}/{term.step}")
        elif term.last is None or term.last == term.first:
            parts.append(str(term.first + 1))
        else:
            parts.append(f"{term.first + 1}-{term.last + 1}")
    return ",".join(parts)


def weekday_numbers(field: CronField) -> set[int]:
    """The weekdays (Monday = 0) an APScheduler day_of_week field matches."""
    days: set[int] = set()
    for term in field.terms:
        assert isinstance(term, Every | Span)
        if isinstance(term, Every):
            days.update(range(0, 7, term.step or 1))
        else:
            last = term.last if term.last is not None else (6 if term.step else term.first)
            days.update(range(term.first, last + 1, term.step or 1))
    return days
