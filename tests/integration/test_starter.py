"""A started scheduler starts runs claimed ahead from a thread of their own: a run that comes due while the
loop's thread waits on the database (here, for a write lock another connection holds) still starts on time.
That thread makes runs ready just before they are due and starts them on the dot; an edit, or a stop, in
between still counts."""

from __future__ import annotations

import gc
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler, SchedulerSettings
from cronkeeper.engine.collector import MAX_HOLD
from cronkeeper.engine.dispatch import BURST
from cronkeeper.engine.starter import PREPARE_AHEAD
from tests.conftest import SchedulerFactory
from tests.sinks import wait_until

STARTED = threading.Event()


def mark() -> None:
    STARTED.set()


def _stack(thread: threading.Thread) -> list[str]:
    """The functions ``thread`` is in now, innermost last."""
    frame: FrameType | None = sys._current_frames().get(thread.ident or -1)
    names: list[str] = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names[::-1]


def _wait_until_in(thread: threading.Thread, function: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while function not in _stack(thread):
        if time.monotonic() > deadline:
            raise AssertionError(f"{thread.name} is not in {function}: {' > '.join(_stack(thread))}")
        time.sleep(0.01)


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
    wait_until(lambda: loop.next_pending_at() == due, timeout=30)  # claimed ahead, held
    write_lock.execute("BEGIN IMMEDIATE")
    clock.set(due - timedelta(seconds=0.15))  # the second fire's claim is due: it waits for the lock
    assert loop._thread is not None
    _wait_until_in(loop._thread, "claim_due")
    clock.set(due)
    assert STARTED.wait(10), "the held run did not start while the loop waited on the database"
    write_lock.execute("ROLLBACK")
    scheduler.stop()
    runs = {run.job_id: run for run in scheduler.runs()}
    assert runs["held"].status is RunStatus.SUCCEEDED and runs["held"].started_at == due


def _held_burst(
    make_scheduler: SchedulerFactory, clock: FakeClock, jobs: int, alone_before: timedelta | None = None
) -> tuple[Scheduler, datetime]:
    """A started scheduler with a burst of ``jobs`` runs claimed ahead, all due on one instant a minute on
    (and one more run due ``alone_before`` it, if given)."""
    scheduler: Scheduler = make_scheduler()
    due = clock.now() + timedelta(minutes=1)
    scheduler.add_jobs(
        {"id": f"job-{index}", "call": "tests.jobs:metrics", "at": due} for index in range(jobs)
    )
    if alone_before is not None:
        scheduler.add_job("tests.jobs:metrics", id="alone", at=due - alone_before)
    scheduler.start()
    loop = scheduler.loop
    assert loop is not None
    clock.set(due - timedelta(seconds=0.3))
    wait_until(lambda: loop.dispatcher.next_burst_at() == due, timeout=30)
    return scheduler, due


def _made_ready(scheduler: Scheduler, clock: FakeClock, due: datetime) -> None:
    """Move to just before ``due``: the starter takes the held runs and makes them ready."""
    loop = scheduler.loop
    assert loop is not None and loop._starter is not None
    starter = loop._starter
    clock.set(due - PREPARE_AHEAD / 2)
    wait_until(lambda: loop.dispatcher.next_held_at() is None and bool(starter._ready), timeout=30)


def test_a_burst_is_made_ready_ahead_and_started_on_the_dot(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    scheduler, due = _held_burst(make_scheduler, clock, BURST * 2)
    _made_ready(scheduler, clock, due)
    assert {run.status for run in scheduler.runs()} == {RunStatus.QUEUED}  # ready, not started
    clock.set(due)
    wait_until(
        lambda: {run.status for run in scheduler.runs(limit=1000)} == {RunStatus.SUCCEEDED}, timeout=30
    )
    scheduler.stop()
    runs = scheduler.runs(limit=1000)
    assert len(runs) == BURST * 2
    assert {(run.status, run.started_at) for run in runs} == {(RunStatus.SUCCEEDED, due)}
    assert gc.isenabled()  # the collector's hold ended with the burst's start


def test_a_pause_made_after_a_run_was_made_ready_still_counts(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    scheduler, due = _held_burst(make_scheduler, clock, BURST)
    _made_ready(scheduler, clock, due)
    scheduler.pause("job-0")  # through this scheduler: it vets the runs again when due
    clock.set(due)
    wait_until(lambda: RunStatus.QUEUED not in {run.status for run in scheduler.runs(limit=100)}, timeout=30)
    scheduler.stop()
    (run,) = scheduler.runs(job_id="job-0")
    assert run.started_at is None and run.error == "not started: the job was paused before the run was due"
    assert {run.status for run in scheduler.runs(limit=100) if run.job_id != "job-0"} == {RunStatus.SUCCEEDED}


def test_runs_made_ready_when_the_scheduler_stops_are_handed_back(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    scheduler, due = _held_burst(make_scheduler, clock, BURST)
    _made_ready(scheduler, clock, due)
    scheduler.stop()
    runs = scheduler.runs(limit=1000)
    assert len(runs) == BURST
    assert {(run.status, run.owner, run.started_at) for run in runs} == {(RunStatus.QUEUED, None, None)}
    assert gc.isenabled()
    clock.set(due)
    successor = make_scheduler()
    assert successor.run_pending() == BURST  # the next node starts them


def test_runs_made_ready_count_as_claimed_ahead_not_as_running(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    scheduler, due = _held_burst(make_scheduler, clock, BURST)
    _made_ready(scheduler, clock, due)
    assert scheduler.next_due_at() == due
    assert scheduler.loop is not None and scheduler.loop.drain(0)  # nothing runs yet


def test_the_collector_is_let_run_in_time_while_the_starter_waits_on_the_database(
    make_scheduler: SchedulerFactory, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read that vets a burst hangs (a lock, a lost connection): the hold ends by its timer."""
    scheduler, due = _held_burst(make_scheduler, clock, BURST)
    reading, release = threading.Event(), threading.Event()
    read = scheduler.store.job_versions

    def slow_read(job_ids: list[str]) -> dict[str, int]:
        reading.set()
        release.wait(30)
        return read(job_ids)

    monkeypatch.setattr(scheduler.store, "job_versions", slow_read)
    try:
        clock.set(due - PREPARE_AHEAD / 2)
        assert reading.wait(30)
        wait_until(gc.isenabled, timeout=MAX_HOLD * 20)
    finally:
        release.set()
    clock.set(due)
    wait_until(lambda: {run.status for run in scheduler.runs(limit=100)} == {RunStatus.SUCCEEDED}, timeout=30)


class SteppingClock(FakeClock):
    """A clock that can be set back, as a system clock is by a time correction."""

    def step_back(self, delta: timedelta) -> None:
        with self._changed:
            self._now -= delta
            self._changed.notify_all()


def test_a_clock_stepped_back_after_runs_were_made_ready_has_them_vetted_again(db_url: str) -> None:
    """A burst made ready at 08:00:59.995 and due at 08:01; the clock is set back an hour; another process
    pauses one of its jobs at 07:31 (on the clock): half an hour before the fire, so the pause counts."""
    clock = SteppingClock("2026-03-02T08:00:00+00:00")
    scheduler = Scheduler(db_url, clock=clock, settings=SchedulerSettings(workers=2))
    other = Scheduler(db_url, clock=clock)
    try:
        due = clock.now() + timedelta(minutes=1)
        scheduler.add_jobs(
            {"id": f"job-{index}", "call": "tests.jobs:metrics", "at": due} for index in range(BURST)
        )
        scheduler.start()
        clock.set(due - timedelta(seconds=0.3))
        wait_until(lambda: scheduler.loop is not None and scheduler.loop.next_pending_at() == due, timeout=30)
        _made_ready(scheduler, clock, due)
        clock.step_back(timedelta(hours=1))
        clock.set(due - timedelta(minutes=30))
        other.pause("job-0")  # on SQLite this process hears nothing of it
        clock.set(due)
        wait_until(lambda: scheduler.runs(job_id="job-0")[0].status is not RunStatus.QUEUED, timeout=30)
        (run,) = scheduler.runs(job_id="job-0")
        assert run.status is RunStatus.SKIPPED and run.started_at is None
    finally:
        scheduler.close()
        other.close()


def test_a_run_due_alone_just_before_a_burst_does_not_cut_the_burst_s_lead(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """Jobs spread over the second and a burst on the second: there is always a lone run due in the 10 ms
    before the burst, and the burst must still be made ready 10 ms ahead."""
    scheduler, due = _held_burst(make_scheduler, clock, BURST, alone_before=timedelta(milliseconds=1))
    loop = scheduler.loop
    assert loop is not None
    _made_ready(scheduler, clock, due)
    assert loop._starter is not None
    assert [len(ready.runs.flights) for ready in loop._starter._ready] == [1, BURST]
    clock.set(due)
    wait_until(lambda: {run.status for run in scheduler.runs(limit=100)} == {RunStatus.SUCCEEDED}, timeout=30)
    assert {run.started_at for run in scheduler.runs(limit=100) if run.job_id != "alone"} == {due}
