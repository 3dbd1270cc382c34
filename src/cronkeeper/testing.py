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

from sqlalchemy import Engine

from cronkeeper.clock import FakeClock
from cronkeeper.scheduler import Scheduler, SchedulerBase
from cronkeeper.store.sql import SqlJobStore

__all__ = ["FakeClock", "advance", "run_until", "sql_engine"]


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


def sql_engine(scheduler: SchedulerBase) -> Engine:
    """The SQLAlchemy engine behind a scheduler's job store, for tests and benchmarks that write or count rows
    directly (as no part of cronkeeper outside its store may)."""
    store = scheduler.store
    assert isinstance(store, SqlJobStore), "the scheduler's store is not cronkeeper's SQL store"
    return store.engine
