"""Figures over a large history: how long does ``Scheduler.stats()`` take for every job, and for one?

    python -m bench.stats                   # 1,000,000 runs over 100 jobs
    python -m bench.stats --small           # 50,000 runs: a quick check
    python -m bench.stats --db FILE         # keep the filled database (filled once, reused after)

The database is filled as for ``bench.history`` (each job runs hourly, so a million runs over 100 jobs span
about 14 months), then each question is asked three times in the library, with no web layer in between, and
the median is printed.  Windows end at the last run: "7 days" is the last week of the history.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bench.compare import machine
from bench.history import arguments, filled
from cronkeeper import Scheduler
from cronkeeper.store.schema import runs
from cronkeeper.testing import sql_engine

REPEATS = 3


def timed(call: Callable[[], object]) -> float:
    """Median wall time of ``call`` in milliseconds over REPEATS calls."""
    samples = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def report(scheduler: Scheduler, total: int, jobs: int) -> None:
    with sql_engine(scheduler).connect() as conn:
        last: datetime = conn.execute(select(func.max(runs.c.scheduled_for))).scalar_one()
    end = last + timedelta(seconds=1)
    week, month = end - timedelta(days=7), end - timedelta(days=30)
    one = "job-0007"
    questions: dict[str, Callable[[], object]] = {
        "every job, last 7 days": lambda: scheduler.stats(since=week, until=end),
        "every job, last 30 days": lambda: scheduler.stats(since=month, until=end),
        "every job, whole history": lambda: scheduler.stats(),
        "one job, last 7 days": lambda: scheduler.stats(one, since=week, until=end),
        "one job, last 30 days": lambda: scheduler.stats(one, since=month, until=end),
        "one job, whole history": lambda: scheduler.stats(one),
    }
    print(f"\n== stats() over {total:,} runs of {jobs} jobs; {machine()}")
    print(f"{'question':30} {'runs read':>10} {'median ms':>10}")
    for name, call in questions.items():
        found = call()
        assert isinstance(found, dict)
        read = sum(stats.total for stats in found.values())
        print(f"{name:30} {read:10,} {timed(call):10.1f}")


def main() -> None:
    args = arguments(__doc__.splitlines()[0], jobs=100)
    with filled(args) as (scheduler, total):
        report(scheduler, total, args.jobs)


if __name__ == "__main__":
    main()
