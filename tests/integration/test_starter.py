"""A started scheduler starts runs claimed ahead from a thread of their own: a run that comes due while the
loop's thread waits on the database (here, for a write lock another connection holds) still starts on time."""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler
from tests.conftest import SchedulerFactory
from tests.sinks import wait_until

STARTED = threading.Event()


def mark() -> None:
    STARTED.set()


def _waiting_in(thread_name: str, function: str) -> bool:
    """Whether the thread named ``thread_name`` is inside a call of ``function`` now."""
    threads = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        if threads.get(ident) != thread_name:
            continue
        walker: FrameType | None = frame
        while walker is not None:
            if walker.f_code.co_name == function:
                return True
            walker = walker.f_back
    return False


@pytest.fixture
def write_lock(db_url: str) -> Iterator[sqlite3.Connection]:
    """A connection that takes the database's write lock when told to, and always lets it go."""
    path = Path(db_url.removeprefix("sqlite:///"))
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


def test_a_run_due_while_the_loop_waits_on_the_database_starts_on_time(
    make_scheduler: SchedulerFactory, clock: FakeClock, write_lock: sqlite3.Connection
) -> None:
    STARTED.clear()
    scheduler: Scheduler = make_scheduler()
    due = clock.now() + timedelta(minutes=1)
    scheduler.add_job("tests.integration.test_starter:mark", id="held", at=due)
    # Due 0.3 s later: its claim comes after the first one's, while the first run is held.
    scheduler.add_job("tests.jobs:metrics", id="later", at=due + timedelta(seconds=0.3))
    scheduler.start()
    loop = scheduler.loop
    assert loop is not None
    clock.set(due - timedelta(seconds=0.3))
    wait_until(lambda: loop.next_pending_at() == due)  # claimed ahead, held
    write_lock.execute("BEGIN IMMEDIATE")
    clock.set(due - timedelta(seconds=0.15))  # the second fire's claim is due: it waits for the lock
    wait_until(lambda: _waiting_in("cronkeeper-loop", "claim_due"))
    clock.set(due)
    assert STARTED.wait(10), "the held run did not start while the loop waited on the database"
    write_lock.execute("ROLLBACK")
    scheduler.stop()
    runs = {run.job_id: run for run in scheduler.runs()}
    assert runs["held"].status is RunStatus.SUCCEEDED and runs["held"].started_at == due
