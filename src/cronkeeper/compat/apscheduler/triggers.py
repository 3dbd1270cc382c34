"""APScheduler 3's trigger classes, as descriptions of a cronkeeper schedule.

A trigger here does not compute fire times itself: :meth:`BaseTrigger.schedule` turns it into the schedule
options cronkeeper validates and stores (``cron=``, ``every=`` or ``at=`` with ``timezone``, ``start``,
``end``, ``jitter``), so the scheduler's semantics (daylight saving time, misfires) are cronkeeper's.  A
trigger made without a time zone takes the scheduler's when the job is added (:meth:`BaseTrigger.bind`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

from cronkeeper.clock import SystemClock
from cronkeeper.compat.apscheduler.cronfields import CronField, build_fields, to_cron
from cronkeeper.compat.apscheduler.time import (
    datetime_repr,
    in_zone,
    optional_datetime,
    optional_zone_name,
    to_datetime,
    zone_of,
)
from cronkeeper.cron import CronExpression
from cronkeeper.exceptions import InvalidScheduleError, ValidationError
from cronkeeper.specs import build_trigger
from cronkeeper.triggers import CronTrigger as CoreCronTrigger
from cronkeeper.triggers import DateTrigger as CoreDateTrigger
from cronkeeper.triggers import IntervalTrigger as CoreIntervalTrigger
from cronkeeper.triggers import Trigger

CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
WINDOW_ARGS = ("start_date", "end_date", "timezone", "jitter")
TRIGGER_ARGS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "cron": frozenset({*CRON_FIELDS, *WINDOW_ARGS}),
        "interval": frozenset({"weeks", "days", "hours", "minutes", "seconds", *WINDOW_ARGS}),
        "date": frozenset({"run_date", "timezone"}),
    }
)


class BaseTrigger:
    """What every facade trigger shares: its zone (None until bound, if not given) and its window."""

    alias: ClassVar[str]

    def __init__(self, timezone: object, start_date: object, end_date: object, jitter: object) -> None:
        self._zone = optional_zone_name(timezone) or zone_of(start_date) or zone_of(end_date)
        self._start = start_date
        self._end = end_date
        if jitter is not None and (
            isinstance(jitter, bool) or not isinstance(jitter, int | float) or jitter < 0
        ):
            raise ValidationError("jitter", "must be a number of seconds (0 or more) or None")
        self.jitter = jitter
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValidationError("end_date", "must not be before start_date")

    @property
    def timezone(self) -> ZoneInfo | None:
        return None if self._zone is None else ZoneInfo(self._zone)

    @property
    def start_date(self) -> datetime | None:
        return optional_datetime(self._start, self._zone or "UTC", "start_date")

    @property
    def end_date(self) -> datetime | None:
        return optional_datetime(self._end, self._zone or "UTC", "end_date")

    def bind(self, zone: str, now: datetime) -> Self:
        """This trigger with ``zone`` filled in where none was given (the scheduler's, at add time)."""
        if self._zone is not None:
            return self
        bound = copy.copy(self)
        bound._zone = zone
        return bound

    def schedule(self) -> dict[str, Any]:
        """cronkeeper's schedule options for this trigger."""
        raise NotImplementedError

    def _window(self) -> dict[str, Any]:
        # No "start" key without a start: a job declared again then keeps its interval's first anchor.
        window = {"timezone": self._zone or "UTC", "start": self.start_date, "end": self.end_date}
        return {
            **{key: value for key, value in window.items() if value is not None},
            "jitter": self.jitter or 0,
        }

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """APScheduler's method: the first fire after ``previous_fire_time``, or at or after ``now`` when
        there is none, in the trigger's zone (jitter left out)."""
        data = {**self.schedule(), "jitter": 0}
        zone = data["timezone"]
        core = build_trigger(data, default_timezone=zone, now=now)
        after = previous_fire_time if previous_fire_time is not None else now - timedelta(microseconds=1)
        return in_zone(core.next_after(after), zone)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} ({self}, timezone={self._zone!r})>"


class CronTrigger(BaseTrigger):
    """APScheduler's cron trigger: keyword fields with its semantics (weekdays count from Monday = 0, the
    omitted smaller fields are their minimum), written as a cron expression for cronkeeper."""

    alias = "cron"

    def __init__(
        self,
        year: object = None,
        month: object = None,
        day: object = None,
        week: object = None,
        day_of_week: object = None,
        hour: object = None,
        minute: object = None,
        second: object = None,
        start_date: object = None,
        end_date: object = None,
        timezone: object = None,
        jitter: object = None,
    ) -> None:
        values = {
            "year": year,
            "month": month,
            "day": day,
            "week": week,
            "day_of_week": day_of_week,
            "hour": hour,
            "minute": minute,
            "second": second,
        }
        self.fields: tuple[CronField, ...] = build_fields(values)
        self.expression, self.seconds = to_cron(self.fields)
        self._labels = tuple((field.name, str(field)) for field in self.fields if not field.is_default)
        _check_expression(self.expression, self.seconds)
        super().__init__(timezone, start_date, end_date, jitter)

    @classmethod
    def from_crontab(cls, expr: str, timezone: object = None) -> CronTrigger:
        """A trigger from a standard five-field crontab line, read as cron reads it: day of week 0 (and 7)
        is Sunday.  (APScheduler 3 reads 0 as Monday here, a known mistake of its own; cronkeeper does not
        repeat it.)"""
        values = expr.split()
        if len(values) != 5:
            raise InvalidScheduleError("expr", f"Wrong number of fields; got {len(values)}, expected 5")
        return cls._from_expression(" ".join(values), False, timezone=timezone)

    @classmethod
    def _from_expression(
        cls,
        expression: str,
        seconds: bool,
        *,
        timezone: object = None,
        start_date: object = None,
        end_date: object = None,
        jitter: object = None,
    ) -> CronTrigger:
        """A trigger for a cron expression as cronkeeper stores it (also how stored jobs are shown)."""
        _check_expression(expression, seconds)
        trigger = cls.__new__(cls)
        parts = expression.split()
        names = ["minute", "hour", "day", "month", "day_of_week"]
        if seconds:
            names.insert(0, "second")
        labelled = dict(zip(names, parts, strict=True)) if len(parts) == len(names) else {"cron": expression}
        order = ("month", "day", "day_of_week", "hour", "minute", "second", "cron")
        trigger.fields = ()
        trigger.expression, trigger.seconds = expression, seconds
        trigger._labels = tuple((name, labelled[name]) for name in order if name in labelled)
        BaseTrigger.__init__(trigger, timezone, start_date, end_date, jitter)
        return trigger

    def schedule(self) -> dict[str, Any]:
        return {"cron": self.expression, "seconds": self.seconds, **self._window()}

    def __str__(self) -> str:
        return "cron[{}]".format(", ".join(f"{name}='{text}'" for name, text in self._labels))


def _check_expression(expression: str, seconds: bool) -> None:
    """Refuse at construction, as APScheduler does, what cronkeeper would refuse when the job is added."""
    CronExpression(expression, seconds=seconds, field="cron")


class IntervalTrigger(BaseTrigger):
    """Every so long.  Without a ``start_date`` the first fire is one interval after the job is added; a job
    declared again at the next start keeps the grid it got the first time (cronkeeper's declarations)."""

    alias = "interval"

    def __init__(
        self,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start_date: object = None,
        end_date: object = None,
        timezone: object = None,
        jitter: object = None,
    ) -> None:
        try:
            interval = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        except TypeError:
            raise ValidationError(
                "interval", "weeks, days, hours, minutes and seconds must be numbers"
            ) from None
        if interval < timedelta(0):
            raise ValidationError("interval", "must not be negative")
        # As APScheduler: an interval of zero means one second.
        self.interval = interval or timedelta(seconds=1)
        self.interval_length = self.interval.total_seconds()
        super().__init__(timezone, start_date, end_date, jitter)

    def schedule(self) -> dict[str, Any]:
        return {"every": self.interval, **self._window()}

    def __str__(self) -> str:
        return f"interval[{self.interval!s}]"


class DateTrigger(BaseTrigger):
    """Once, at ``run_date`` (now when it is None: the moment the job is added)."""

    alias = "date"

    def __init__(self, run_date: object = None, timezone: object = None) -> None:
        super().__init__(timezone if timezone is not None else zone_of(run_date), None, None, None)
        self._run_date = run_date
        if run_date is not None:
            to_datetime(run_date, self._zone or "UTC", "run_date")

    @property
    def run_date(self) -> datetime:
        zone = self._zone or "UTC"
        if self._run_date is None:
            return SystemClock().now().astimezone(ZoneInfo(zone))
        return to_datetime(self._run_date, zone, "run_date")

    def bind(self, zone: str, now: datetime) -> Self:
        bound = super().bind(zone, now)
        if bound._run_date is None:
            bound = copy.copy(bound)
            bound._run_date = now
        return bound

    def schedule(self) -> dict[str, Any]:
        return {"at": self.run_date, "timezone": self._zone or "UTC", "jitter": 0}

    def __str__(self) -> str:
        return f"date[{datetime_repr(self.run_date)}]"


TRIGGER_CLASSES: Mapping[str, type[BaseTrigger]] = MappingProxyType(
    {"cron": CronTrigger, "interval": IntervalTrigger, "date": DateTrigger}
)


def create_trigger(trigger: object, trigger_args: Mapping[str, Any]) -> BaseTrigger:
    """The trigger ``add_job`` and ``reschedule_job`` were given: an alias with its options (no trigger at
    all: run once, now), a facade trigger, or an APScheduler 3 trigger object, converted."""
    if trigger is not None and not isinstance(trigger, str):
        if trigger_args:
            raise ValidationError(sorted(trigger_args)[0], "cannot be combined with a trigger object")
        return trigger if isinstance(trigger, BaseTrigger) else convert_foreign(trigger)
    alias = trigger or "date"
    if alias not in TRIGGER_CLASSES:
        raise ValidationError("trigger", f"{alias!r} is not one of 'cron', 'interval' or 'date'")
    unknown = sorted(set(trigger_args) - TRIGGER_ARGS[alias])
    if unknown:
        raise ValidationError(unknown[0], f"unknown option for a {alias} trigger")
    return TRIGGER_CLASSES[alias](**trigger_args)


def convert_foreign(trigger: object) -> BaseTrigger:
    """A trigger object of APScheduler 3 itself (code that kept ``from apscheduler.triggers.cron import
    CronTrigger``), rebuilt as a facade trigger with the same meaning."""
    kind = type(trigger).__name__
    module = type(trigger).__module__ or ""
    if not module.startswith("apscheduler.triggers") or kind not in (
        "CronTrigger",
        "IntervalTrigger",
        "DateTrigger",
    ):
        raise ValidationError(
            "trigger", f"{kind} objects are not supported; use a cron, interval or date trigger"
        )
    source: Any = trigger
    if kind == "DateTrigger":
        return DateTrigger(source.run_date)
    window = {
        "start_date": source.start_date,
        "end_date": source.end_date,
        "timezone": source.timezone,
        "jitter": source.jitter,
    }
    if kind == "IntervalTrigger":
        return IntervalTrigger(seconds=source.interval.total_seconds(), **window)
    fields = {field.name: str(field) for field in source.fields if not field.is_default}
    return CronTrigger(**fields, **window)


def stored_trigger(trigger: Trigger, zone: str, jitter: timedelta) -> BaseTrigger:
    """A facade trigger showing a stored job's schedule (a job this process did not add, or one changed
    since by another face); a cron job shows its cron fields, day of week counting from Sunday = 0."""
    seconds = jitter.total_seconds() or None
    if isinstance(trigger, CoreCronTrigger):
        return CronTrigger._from_expression(
            trigger.cron.expression,
            trigger.cron.seconds,
            timezone=trigger.timezone.key,
            start_date=trigger.start_at,
            end_date=trigger.end_at,
            jitter=seconds,
        )
    if isinstance(trigger, CoreIntervalTrigger):
        return IntervalTrigger(
            seconds=trigger.every.total_seconds(),
            start_date=trigger.anchor,
            end_date=trigger.end_at,
            timezone=zone,
            jitter=seconds,
        )
    assert isinstance(trigger, CoreDateTrigger)
    return DateTrigger(trigger.at, timezone=zone)


def same_schedule(facade: BaseTrigger, trigger: Trigger, now: datetime) -> bool:
    """Whether a stored trigger is still the one ``facade`` describes (an interval declared without a
    start_date matches whatever anchor it was given)."""
    data = facade.schedule()
    if isinstance(trigger, CoreIntervalTrigger) and "start" not in data:
        data["start"] = trigger.anchor
    try:
        return build_trigger(data, default_timezone=data["timezone"], now=now) == trigger
    except ValidationError:
        return False
