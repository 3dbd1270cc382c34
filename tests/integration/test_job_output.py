"""The output of Python jobs run in this process: the log records their own code emits, kept per run (two
runs at once do not mix), with the same limit and truncation as a command's; and a run a job ends as
failed while still storing its result."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler
from tests.conftest import SchedulerFactory


@pytest.fixture(autouse=True)
def warnings_reach_handlers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)


def test_a_jobs_log_records_are_its_runs_output(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:chatty", id="chatty", every="1m")
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    (run,) = scheduler.runs(job_id="chatty")
    assert run.status is RunStatus.SUCCEEDED and run.result == {"items": 3}
    assert run.output is not None
    assert [line.rsplit(": ", 1)[-1] for line in run.output.splitlines()] == [
        "item 0 done",
        "item 1 done",
        "item 2 done",
    ]
    assert "WARNING tests.jobs.chatty" in run.output


def test_runs_at_once_keep_their_own_records(make_scheduler: SchedulerFactory, clock: FakeClock) -> None:
    scheduler = make_scheduler()
    barrier = threading.Barrier(2)
    log = logging.getLogger("tests.mixed")

    def job(name: str) -> None:
        for step in range(20):
            if step == 10:
                barrier.wait(5)  # both runs are logging at the same time
            log.warning("%s %d", name, step)

    scheduler.register(job)
    for name in ("a", "b"):
        scheduler.add_job(job, id=name, every="1m", kwargs={"name": name})
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    for name in ("a", "b"):
        (run,) = scheduler.runs(job_id=name)
        assert run.output is not None
        lines = run.output.splitlines()
        assert len(lines) == 20 and all(line.endswith(f" {name} {i}") for i, line in enumerate(lines))


def test_output_is_kept_to_the_jobs_limit_with_a_marker(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:chatty", id="long", every="1m", kwargs={"items": 500}, output_limit=1024)
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    (run,) = scheduler.runs(job_id="long")
    assert run.output is not None
    assert run.output.startswith("[... ") and "earlier bytes truncated" in run.output
    assert run.output.endswith("item 499 done\n")


def test_a_coroutine_jobs_records_are_its_output(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:async_chatty", id="co", every="1m")
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    (run,) = scheduler.runs(job_id="co")
    assert run.output is not None and run.output.endswith("from a coroutine\n")


def test_a_job_can_end_its_run_failed_and_keep_its_result(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:partly_failed", id="partly", every="1m")
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    (run,) = scheduler.runs(job_id="partly")
    assert run.status is RunStatus.FAILED
    assert run.error == "RunFailed: 2 of 3 items failed"
    assert run.result == {"succeeded": 1, "failed": 2}
    assert run.output is not None and run.output.endswith("2 of 3 items failed\n")
    assert run.traceback is None  # an outcome the job chose, not a crash


def test_records_outside_any_run_are_not_kept(scheduler: Scheduler) -> None:
    logging.getLogger("tests.outside").warning("not a job's")
    assert scheduler.runs() == []


def test_an_isolated_job_can_end_its_run_failed_and_keep_its_result(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.add_job("tests.jobs:partly_failed", id="isolated", every="1m", isolate=True)
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    (run,) = scheduler.runs(job_id="isolated")
    assert (run.status, run.error, run.result) == (
        RunStatus.FAILED,
        "RunFailed: 2 of 3 items failed",
        {"succeeded": 1, "failed": 2},
    )
    assert run.output is not None and "2 of 3 items failed" in run.output  # the child's stderr
