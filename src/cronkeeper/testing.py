"""Helpers for testing code that uses cronkeeper: step a scheduler through weeks of schedules in moments.

::

    clock = FakeClock("2026-01-01T00:00:00+00:00")
    sched = Scheduler(f"sqlite:///{tmp_path}/t.db", clock=clock)
    sched.add_job(report, cron="0 9 * * 1-5")
    run_until(sched, clock, clock.now() + timedelta(days=30))
    assert len(sched.runs(status="succeeded", limit=100)) == 22
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cronkeeper.clock import FakeClock
from cronkeeper.scheduler import Scheduler

__all__ = ["FakeClock", "advance", "run_until"]


def run_until(scheduler: Scheduler, clock: FakeClock, until: datetime, *, max_steps: int = 100_000) -> int:
    """Jump the clock from due time to due time up to ``until``, firing and finishing every run in the calling
    thread (the scheduler must not be started); returns how many runs were started."""
    started = 0
    for _ in range(max_steps):
        due = scheduler.next_due_at()
        if due is None or due > until:
            break
        if due > clock.now():
            clock.set(due)
        started += scheduler.run_pending()
    else:
        raise RuntimeError(f"more than {max_steps} steps before {until.isoformat()}")
    if until > clock.now():
        clock.set(until)
    return started + scheduler.run_pending()


def advance(scheduler: Scheduler, clock: FakeClock, delta: timedelta) -> int:
    """:func:`run_until` ``delta`` from the clock's now."""
    return run_until(scheduler, clock, clock.now() + delta)
