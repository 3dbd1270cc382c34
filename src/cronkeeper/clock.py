"""Clocks: the only place where cronkeeper reads the time.

The engine never calls ``datetime.now()`` itself; it asks a :class:`Clock`.  Production uses
:class:`SystemClock`; tests use :class:`FakeClock` and move time forward by hand, so a month of schedules
runs in a second without sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the engine needs from time: the current instant, and a wait that a wake-up can cut short."""

    def now(self) -> datetime:
        """The current instant as an aware UTC datetime."""
        ...

    def wait_until(self, event: threading.Event, deadline: datetime) -> bool:
        """Block until ``event`` is set or this clock reaches ``deadline``; True if the event was set.

        The deadline is absolute so that time moving between computing it and waiting is never lost."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait_until(self, event: threading.Event, deadline: datetime) -> bool:
        return event.wait(max((deadline - self.now()).total_seconds(), 0.0))


class FakeClock:
    """A clock that moves only when told to; waits end when it is advanced past their deadline."""

    def __init__(self, start: datetime | str = "2026-01-01T00:00:00+00:00") -> None:
        instant = datetime.fromisoformat(start) if isinstance(start, str) else start
        if instant.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = instant.astimezone(UTC)
        self._changed = threading.Condition()

    def now(self) -> datetime:
        with self._changed:
            return self._now

    def set(self, instant: datetime) -> None:
        """Jump to ``instant`` (never backwards) and wake every waiter."""
        with self._changed:
            instant = instant.astimezone(UTC)
            if instant < self._now:
                raise ValueError("FakeClock cannot go backwards")
            self._now = instant
            self._changed.notify_all()

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (a timedelta or seconds) and return the new instant."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self.set(self.now() + step)
        return self.now()

    def wait_until(self, event: threading.Event, deadline: datetime) -> bool:
        with self._changed:
            # Real-time slices keep an event set from another thread noticed promptly; fake time only moves
            # through set()/advance(), which notify.
            while not event.is_set() and self._now < deadline:
                self._changed.wait(0.01)
            return event.is_set()
