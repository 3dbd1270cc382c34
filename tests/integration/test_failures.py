"""What must survive: a process killed mid-run, and a database that drops its connections."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.clock import SystemClock
from cronkeeper.settings import SchedulerSettings

FAST = SchedulerSettings(
    workers=4, heartbeat_interval=timedelta(seconds=0.2), lease=timedelta(seconds=1), poll_interval=0.1
)


def wait_until(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_runs_of_a_killed_process_are_marked_lost_by_a_live_one(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "cronkeeper.toml").write_text(
        "[scheduler]\nheartbeat_interval = 0.2\nlease = 1\npoll_interval = 0.2\n", encoding="utf-8"
    )
    with Scheduler(db_url) as setup:
        setup.add_job(id="long", cron="0 0 1 1 *", command=["sleep", "60"])
        run_id = setup.trigger("long", triggered_by="test")
    env = {**os.environ, "CRONKEEPER_DB": db_url}
    command = str(Path(sys.executable).with_name("cronkeeper"))
    victim = subprocess.Popen([command, "serve", "--no-web", "--log-level", "warning"], cwd=tmp_path, env=env)
    try:
        with Scheduler(db_url) as watcher:
            wait_until(lambda: watcher.get_run(run_id).status is RunStatus.RUNNING)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            survivor = Scheduler(db_url, settings=FAST)
            survivor.start()
            try:
                wait_until(lambda: watcher.get_run(run_id).status is RunStatus.LOST)
            finally:
                survivor.close()
            lost = watcher.get_run(run_id)
            assert lost.error is not None and "lost" in lost.error
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


@pytest.mark.postgres
def test_a_dropped_database_connection_loses_no_run(postgres_url: str, postgres_admin_url: str) -> None:
    clock = FakeClock("2026-03-02T08:00:00+00:00")
    scheduler = Scheduler(postgres_url, clock=clock, settings=FAST)
    scheduler.add_job("tests.jobs:metrics", id="tick", every="1m")
    scheduler.start()
    try:
        clock.advance(timedelta(minutes=1))
        wait_until(lambda: any(run.status is RunStatus.SUCCEEDED for run in scheduler.runs(job_id="tick")))
        database = postgres_url.split("?")[0].rsplit("/", 1)[1]
        admin = postgres_admin_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        for _ in range(3):
            clock.advance(timedelta(minutes=1))
            time.sleep(0.2)
        wait_until(
            lambda: (
                len([run for run in scheduler.runs(job_id="tick") if run.status is RunStatus.SUCCEEDED]) == 4
            )
        )
        assert scheduler.running
    finally:
        scheduler.close()


@pytest.mark.postgres
def test_on_postgresql_another_process_trigger_wakes_the_scheduler_at_once(postgres_url: str) -> None:
    slow_poll = SchedulerSettings(
        workers=2, poll_interval=60.0, heartbeat_interval=timedelta(seconds=60), lease=timedelta(seconds=180)
    )
    scheduler = Scheduler(postgres_url, settings=slow_poll)
    other = Scheduler(postgres_url)  # another process, as far as the scheduler can tell
    try:
        scheduler.add_job("tests.jobs:metrics", id="report", cron="0 0 1 1 *")
        scheduler.start()
        time.sleep(0.5)  # let the scheduler settle into its (60 s) sleep
        run_id = other.trigger("report", triggered_by="alice")
        # Without LISTEN/NOTIFY the run would wait for the 60 s poll.
        wait_until(lambda: other.get_run(run_id).status is RunStatus.SUCCEEDED, timeout=4)
    finally:
        other.close()
        scheduler.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_retries_start_when_their_backoff_is_over_not_at_the_next_poll(
    request: pytest.FixtureRequest, db_url: str, database: str
) -> None:
    url = db_url if database == "sqlite" else request.getfixturevalue("postgres_url")
    # Polling every 5 s (the default) and heartbeats every 5 s: only the retry's own due time can wake the
    # loop in time for a backoff of 0.5 s then 1 s.
    with Scheduler(url) as scheduler:
        scheduler.add_job(
            id="flaky",
            cron="0 0 1 1 *",
            command=["sh", "-c", "exit 3"],
            max_retries=2,
            retry_base="500ms",
            retry_factor=2,
            retry_jitter=0,
        )
        scheduler.start()
        scheduler.trigger("flaky")
        wait_until(lambda: len([r for r in scheduler.runs(job_id="flaky") if not r.status.is_active]) == 3)
        attempts = sorted(scheduler.runs(job_id="flaky"), key=lambda run: run.attempt)
    assert [run.status for run in attempts] == [RunStatus.FAILED] * 3
    gaps = []
    for before, after in itertools.pairwise(attempts):
        assert before.finished_at is not None and after.started_at is not None
        gaps.append((after.started_at - before.finished_at).total_seconds())
    assert 0.5 <= gaps[0] < 2.0, gaps
    assert 1.0 <= gaps[1] < 2.5, gaps


class ShiftedClock(SystemClock):
    """The real time, off by ``offset``: a node whose clock is wrong."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return super().now() + self.offset


def test_a_node_whose_clock_runs_ahead_neither_steals_leases_nor_claims(postgres_url: str) -> None:
    """On PostgreSQL leases go by the database's clock: a node 45 s ahead (the lease is 30 s) does not find
    a live node's run lost, and claims nothing while its clock is off."""
    settings = SchedulerSettings(workers=2, heartbeat_interval=timedelta(seconds=0.2))
    honest = Scheduler(postgres_url, settings=settings)
    ahead = Scheduler(postgres_url, settings=settings, clock=ShiftedClock(timedelta(seconds=45)))
    try:
        honest.add_job(command=["sleep", "1.5"], id="long", cron="0 0 1 1 *")
        honest.start()
        run_id = honest.trigger("long")
        wait_until(lambda: honest.get_run(run_id).status is RunStatus.RUNNING)
        ahead.start()
        wait_until(lambda: ahead.health().clock_skew is not None)
        assert ahead.health().clock_too_far
        wait_until(lambda: honest.get_run(run_id).status is not RunStatus.RUNNING, 15)
        assert honest.get_run(run_id).status is RunStatus.SUCCEEDED, "not lost to the node ahead"
        honest.stop()
        waiting = honest.trigger("long")  # due now: only the node ahead is left to take it, and it must not
        time.sleep(1)  # five of its loop passes, for a claim that must not happen
        assert honest.get_run(waiting).status is RunStatus.QUEUED
    finally:
        ahead.close()
        honest.close()
