"""Facade schedulers on a real SQLite file and the fake clock of the root conftest (2026-03-02 08:00 UTC, a
Monday), closed after each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

import pytest

from cronkeeper import FakeClock
from cronkeeper.compat.apscheduler import BackgroundScheduler, BaseScheduler
from cronkeeper.settings import SchedulerSettings

S = TypeVar("S", bound=BaseScheduler)


class Factory(Protocol):
    def __call__(self, cls: type[S], /, **options: Any) -> S: ...


@pytest.fixture
def make(db_url: str, clock: FakeClock) -> Iterator[Factory]:
    """``make(SchedulerClass, **options)``: a facade scheduler on the test's database and clock."""
    made: list[BaseScheduler] = []

    def factory(cls: type[S], /, **options: Any) -> S:
        options.setdefault("db", db_url)
        options.setdefault("clock", clock)
        options.setdefault("settings", SchedulerSettings(workers=4))
        scheduler = cls(**options)
        made.append(scheduler)
        return scheduler

    yield factory
    for scheduler in made:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        elif scheduler.core.loop is not None:  # made by stepping (run_pending): close its threads
            scheduler.core.loop.stop(wait=False)
        runner = getattr(scheduler, "_runner", None)
        if runner is not None:
            runner.join(10)
        scheduler.core.store.close()


@pytest.fixture
def sched(make: Factory) -> BackgroundScheduler:
    return make(BackgroundScheduler)
