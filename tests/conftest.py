"""Shared fixtures: real SQLite files in a temp dir, a fake clock, schedulers built on both."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cronkeeper import FakeClock, Scheduler
from cronkeeper.settings import SchedulerSettings
from tests.postgres import create_database, private_server
from tests.sinks import MailSink, WebhookSink, mail_server, webhook_server

START = "2026-03-02T08:00:00+00:00"  # a Monday


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cronkeeper.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


SchedulerFactory = Callable[..., Scheduler]


@pytest.fixture
def make_scheduler(db_url: str, clock: FakeClock) -> Iterator[SchedulerFactory]:
    made: list[Scheduler] = []

    def make(**kwargs: Any) -> Scheduler:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("settings", SchedulerSettings(workers=4))
        scheduler = Scheduler(kwargs.pop("db", db_url), **kwargs)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


@pytest.fixture
def scheduler(make_scheduler: SchedulerFactory) -> Scheduler:
    return make_scheduler()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    existing = os.environ.get("CRONKEEPER_TEST_PG_URL")
    if existing:
        yield existing
        return
    with private_server() as url:
        yield url


_database_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> str:
    """A new, empty PostgreSQL database for one test."""
    return create_database(postgres_admin_url, f"cronkeeper_test_{os.getpid()}_{next(_database_numbers)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database cronkeeper supports, in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'contract.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def mail() -> Iterator[MailSink]:
    """A real SMTP server on localhost that keeps what it receives."""
    with mail_server() as sink:
        yield sink


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    """A real HTTP server on localhost that keeps the JSON posted to it."""
    with webhook_server() as sink:
        yield sink
