"""Driving facade schedulers with a fake clock: stepped in the test's thread, or started and waited for."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from cronkeeper import EventKind, FakeClock, RunEvent, Scheduler
from cronkeeper.compat.apscheduler import STATE_RUNNING, BaseScheduler, SchedulerEvent
from cronkeeper.testing import run_until

WAIT = 10.0  # real seconds a started engine gets to catch up before a test fails


def step(scheduler: BaseScheduler, clock: FakeClock, delta: timedelta) -> int:
    """Fire everything due over ``delta`` in the calling thread (the scheduler must not be started)."""
    core = scheduler.core
    assert isinstance(core, Scheduler)
    return run_until(core, clock, clock.now() + delta)


class Events:
    """A listener that keeps every APScheduler event it hears, for assertions."""

    def __init__(self) -> None:
        self.events: list[SchedulerEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: SchedulerEvent) -> None:
        with self._lock:
            self.events.append(event)

    def codes(self, job_id: str | None = None) -> list[int]:
        with self._lock:
            return [
                event.code
                for event in self.events
                if job_id is None or getattr(event, "job_id", None) == job_id
            ]

    def of(self, code: int) -> list[Any]:
        with self._lock:
            return [event for event in self.events if event.code == code]


class Settler:
    """Waits, in real time, until a started scheduler has dealt with everything due at the clock's now:
    claimed, run, recorded, and told every listener.  Its own core listener, added after the facade's,
    counts ended runs; when it has heard of as many as the database holds, the facade's were told too."""

    def __init__(self, scheduler: BaseScheduler, clock: FakeClock) -> None:
        self.scheduler = scheduler
        self.core = scheduler.core
        self.clock = clock
        self._ended = 0
        self._lock = threading.Lock()
        self.core.add_listener(self._count)

    def _count(self, event: RunEvent) -> None:
        if event.kind is not EventKind.STARTED:
            with self._lock:
                self._ended += 1

    def settled(self) -> bool:
        if self.scheduler.state != STATE_RUNNING:  # nothing processes what is due: nothing to wait for
            return True
        # The due time first: once a claim has moved it past now, the runs it inserted are visible below.
        due = self.core.next_due_at()
        if due is not None and due <= self.clock.now():
            return False
        runs = self.core.runs(limit=1000)
        if any(run.status.is_active and run.due_at <= self.clock.now() for run in runs):
            return False
        with self._lock:
            return self._ended >= sum(not run.status.is_active for run in runs)

    def wait(self) -> None:
        pause = threading.Event()
        for _ in range(int(WAIT / 0.005)):
            if self.settled():
                return
            pause.wait(0.005)
        raise AssertionError("the scheduler did not catch up with the clock")

    async def wait_async(self) -> None:
        for _ in range(int(WAIT / 0.005)):
            if self.settled():
                await asyncio.sleep(0)  # listener calls handed to the loop run now
                await asyncio.sleep(0)
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the scheduler did not catch up with the clock")

    def _due_steps(self, until: datetime) -> list[datetime]:
        if self.scheduler.state != STATE_RUNNING:
            return []
        due = self.core.next_due_at()
        return [] if due is None or due > until else [max(due, self.clock.now())]

    def advance(self, delta: timedelta) -> None:
        """Move the clock from due time to due time over ``delta``, waiting at each for the engine."""
        until = self.clock.now() + delta
        self.wait()
        while steps := self._due_steps(until):
            self.clock.set(steps[0])
            self.wait()
        self.clock.set(until)
        self.wait()

    async def advance_async(self, delta: timedelta) -> None:
        until = self.clock.now() + delta
        await self.wait_async()
        while steps := self._due_steps(until):
            self.clock.set(steps[0])
            await self.wait_async()
        self.clock.set(until)
        await self.wait_async()


@contextlib.contextmanager
def guard(scheduler: BaseScheduler, seconds: float = 20) -> Iterator[None]:
    """Shut a blocking scheduler down if the test has not within ``seconds``: a failure, not a hang."""

    def stop() -> None:
        if scheduler.running:
            scheduler.shutdown(wait=False)

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
