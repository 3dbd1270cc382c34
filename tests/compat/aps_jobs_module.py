"""Module-level job functions for the APScheduler job store tests, and a real APScheduler 3 job store.

APScheduler pickles a job's function as a ``module:qualname`` reference, so the functions must live at
module level in an importable module (not in a test function).  :func:`write_job_store` fills a real
``SQLAlchemyJobStore`` the way an application does: add the jobs, start the scheduler paused (APScheduler
keeps jobs added before ``start`` pending and writes them to the store only then), shut it down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def report(*args: Any, **kwargs: Any) -> None:
    """A job; never run by these tests."""


def poll(*, source: str, limit: int) -> None:
    """A job with keyword arguments."""


class Counter:
    """An object whose bound method APScheduler pickles (with the object as the first argument)."""

    def __init__(self) -> None:
        self.count = 0

    def bump(self) -> None:
        self.count += 1


def write_job_store(url: str, add_jobs: Callable[[Any], None], **store_options: Any) -> None:
    """Let real APScheduler 3 write the jobs ``add_jobs(scheduler)`` adds into its SQLAlchemy job store at
    ``url`` (``store_options``: ``tablename``, ``tableschema``, ``engine``...).  No job may be due: at
    ``shutdown`` APScheduler's thread can still submit due jobs to its stopped executor."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    if "engine" not in store_options:
        store_options["url"] = url
    store = SQLAlchemyJobStore(**store_options)
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone="UTC")
    add_jobs(scheduler)
    scheduler.start(paused=True)
    scheduler.shutdown()
