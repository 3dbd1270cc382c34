"""``catchup="all"``: after downtime every missed fire runs (at most 100), one after another when the job
runs one at a time, and then the fire that was on time; nothing is skipped."""

from __future__ import annotations

import threading
from datetime import timedelta

from cronkeeper import FakeClock, RunStatus, Scheduler, TriggerSource
from cronkeeper.settings import SchedulerSettings
from tests.conftest import SchedulerFactory


def test_catch_up_of_every_fire_runs_them_in_turn_then_the_one_on_time(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.add_job("tests.jobs:metrics", id="job", every="1m", catchup="all")
    clock.advance(timedelta(minutes=5, seconds=30))  # down since the job was added: 5 fires due
    for _ in range(10):
        scheduler.run_pending()
    runs = sorted(scheduler.runs(job_id="job"), key=lambda run: run.scheduled_for)
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 5
    assert [run.trigger_source for run in runs] == [TriggerSource.CATCHUP] * 5
    started = [run.started_at for run in runs if run.started_at is not None]
    assert len(started) == 5 and started == sorted(started)  # one after another, oldest first


def test_a_started_scheduler_runs_the_next_catch_up_as_soon_as_one_ends(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    scheduler = make_scheduler(settings=SchedulerSettings(workers=4, poll_interval=3600))
    scheduler.add_job("tests.jobs:metrics", id="job", every="1m", catchup="all")
    clock.advance(timedelta(minutes=3, seconds=30))
    done = threading.Event()
    ended: list[int] = []

    def count(event: object) -> None:
        ended.append(1)
        if len(ended) == 3:
            done.set()

    scheduler.add_listener(count, ["succeeded", "skipped", "missed"])
    scheduler.start()
    assert done.wait(10), f"only {len(ended)} of 3 catch-up runs ended (each waits for a wake-up)"
    scheduler.stop()
    assert [run.status for run in scheduler.runs(job_id="job")] == [RunStatus.SUCCEEDED] * 3
