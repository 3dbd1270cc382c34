"""Triggers: when a job fires.  Each is a pure function of an instant: ``next_after(t)`` is the first fire
strictly after ``t``, or None when there is none; ``fires_after(t)`` lists them all from there, as cheaply as
the schedule allows.  All instants in and out are aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from cronkeeper.cron import CronExpression
from cronkeeper.durations import format_duration


class Trigger(Protocol):
    """The plug point for schedules."""

    @property
    def kind(self) -> str:
        """ "cron", "interval" or "date"."""
        ...

    def next_after(self, instant: datetime) -> datetime | None:
        """The first fire strictly after ``instant``, or None when the schedule is over."""
        ...

    def fires_after(self, instant: datetime) -> Iterator[datetime]:
        """Every fire strictly after ``instant``, in order (endless for most schedules: slice it)."""
        ...

    def describe(self) -> str:
        """A sentence a person can read."""
        ...


def _window_start(instant: datetime, start_at: datetime | None) -> datetime:
    # One microsecond before the start lets a fire exactly at start_at count as "after".
    if start_at is not None and instant < start_at:
        return start_at - timedelta(microseconds=1)
    return instant


def _bounded(fire: datetime | None, end_at: datetime | None) -> datetime | None:
    if fire is None or (end_at is not None and fire > end_at):
        return None
    return fire


def _one_by_one(trigger: Trigger, instant: datetime) -> Iterator[datetime]:
    """Fires by ``next_after`` from one to the next: for schedules where that is already cheap arithmetic."""
    fire = trigger.next_after(instant)
    while fire is not None:
        yield fire
        fire = trigger.next_after(fire)


@dataclass(frozen=True, slots=True)
class CronTrigger:
    """Fires on a cron expression evaluated in ``timezone``."""

    cron: CronExpression
    timezone: ZoneInfo
    start_at: datetime | None = None
    end_at: datetime | None = None
    kind: ClassVar[str] = "cron"

    def next_after(self, instant: datetime) -> datetime | None:
        fire = self.cron.next_after(_window_start(instant, self.start_at), self.timezone)
        return _bounded(fire, self.end_at)

    def fires_after(self, instant: datetime) -> Iterator[datetime]:
        for fire in self.cron.fires_after(_window_start(instant, self.start_at), self.timezone):
            if self.end_at is not None and fire > self.end_at:
                return
            yield fire

    def describe(self) -> str:
        return f"{self.cron.describe()} ({self.timezone.key})"


@dataclass(frozen=True, slots=True)
class IntervalTrigger:
    """Fires every ``every``, on the grid ``anchor + k * every``, so restarts never drift the schedule."""

    every: timedelta
    anchor: datetime
    end_at: datetime | None = None
    kind: ClassVar[str] = "interval"

    def next_after(self, instant: datetime) -> datetime | None:
        if instant < self.anchor:
            return _bounded(self.anchor, self.end_at)
        steps = (instant - self.anchor) // self.every + 1
        try:
            fire = self.anchor + steps * self.every
        except OverflowError:  # the next step lies past the last representable date: the schedule is over
            return None
        return _bounded(fire, self.end_at)

    def fires_after(self, instant: datetime) -> Iterator[datetime]:
        return _one_by_one(self, instant)

    def describe(self) -> str:
        return f"Every {format_duration(self.every)}"


@dataclass(frozen=True, slots=True)
class DateTrigger:
    """Fires once, at ``at``."""

    at: datetime
    kind: ClassVar[str] = "date"

    def next_after(self, instant: datetime) -> datetime | None:
        return self.at if self.at > instant else None

    def fires_after(self, instant: datetime) -> Iterator[datetime]:
        return _one_by_one(self, instant)

    def describe(self) -> str:
        return f"Once at {self.at.isoformat()}"
