"""The output of Python jobs run in this process: the log records their own code emits, kept per run (two
runs at once do not mix), with the same limit and truncation as a command's; and a run a job ends as
failed while still storing its result."""

from __future__ import annotations

import io
import logging
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

import cronkeeper
from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.models import Run
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


def log_line(text: str) -> None:
    logging.getLogger("tests.mixed").warning("%s", text)


def print_line(text: str) -> None:
    print(text)  # noqa: T201


@pytest.mark.parametrize("emit", [log_line, print_line])
def test_runs_at_once_keep_their_own_lines(
    make_scheduler: SchedulerFactory, clock: FakeClock, emit: Callable[[str], None]
) -> None:
    scheduler = make_scheduler()
    barrier = threading.Barrier(2)

    def job(name: str) -> None:
        for step in range(20):
            if step == 10:
                barrier.wait(5)  # both runs are writing at the same time
            emit(f"{name} {step}")

    scheduler.register(job)
    for name in ("a", "b"):
        scheduler.add_job(job, id=name, every="1m", kwargs={"name": name})
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    for name in ("a", "b"):
        (run,) = scheduler.runs(job_id=name)
        assert run.output is not None
        lines = run.output.splitlines()
        assert len(lines) == 20 and all(
            line.endswith(f" {name} {i}") or line == f"{name} {i}" for i, line in enumerate(lines)
        )


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


def run_once(scheduler: Scheduler, clock: FakeClock, target: Any, job_id: str, **options: Any) -> Run:
    """Add a job, let it fire once and return its run."""
    scheduler.add_job(target, id=job_id, every="1m", **options)
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    (run,) = scheduler.runs(job_id=job_id)
    return run


def test_what_a_job_prints_is_its_output_and_still_reaches_the_terminal(
    make_scheduler: SchedulerFactory, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_once(make_scheduler(), clock, "tests.jobs:printing", "printer")
    print("outside any run")  # noqa: T201
    assert run.output == "report written\nto stderr\n"
    terminal = capsys.readouterr()
    assert "report written\n" in terminal.out and "outside any run\n" in terminal.out
    assert "to stderr\n" in terminal.err


def test_what_a_coroutine_job_prints_is_its_output(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    run = run_once(make_scheduler(), clock, "tests.jobs:async_printing", "co")
    assert run.output == "from a coroutine\n"


def test_a_record_a_stderr_handler_writes_is_kept_once(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """A handler made after the scheduler writes to the wrapped stderr: the record is already kept."""
    scheduler = make_scheduler()
    handler = logging.StreamHandler()  # sys.stderr as it is now: wrapped
    logger = logging.getLogger("tests.jobs.chatty")
    logger.addHandler(handler)
    try:
        run = run_once(scheduler, clock, "tests.jobs:chatty", "chatty", kwargs={"items": 1})
    finally:
        logger.removeHandler(handler)
    assert run.output is not None and run.output.count("item 0 done") == 1


def test_a_thread_the_job_hands_its_run_to_works_for_it(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    run = run_once(make_scheduler(), clock, "tests.jobs:with_helper_thread", "helped")
    assert run.result == {"value": "helped"}  # current_run() in the helper thread
    assert run.output is not None
    assert "helper logged" in run.output and "helper printed\n" in run.output


def test_a_thread_the_job_starts_without_its_run_is_not_credited_to_it(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """A library's worker thread, started lazily by the first run that needs it, serves every run after:
    it must not carry the first one."""
    scheduler = make_scheduler()
    work: queue.Queue[str] = queue.Queue()
    done: queue.Queue[str | None] = queue.Queue()
    worker: list[threading.Thread] = []

    def serve() -> None:
        while True:
            item = work.get()
            print(item)  # noqa: T201
            run = cronkeeper.current_run()
            done.put(None if run is None else run.job_id)

    def job(item: str) -> str | None:
        if not worker:
            worker.append(threading.Thread(target=serve, daemon=True))
            worker[0].start()
        work.put(item)
        return done.get(timeout=5)

    scheduler.register(job)
    for name in ("a", "b"):
        scheduler.add_job(job, id=name, every="1m", kwargs={"item": f"{name}'s item"})
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    for name in ("a", "b"):
        (run,) = scheduler.runs(job_id=name)
        assert (run.status, run.result, run.output) == (RunStatus.SUCCEEDED, None, None)


def test_a_jobs_bytes_and_its_own_handlers_writes(make_scheduler: SchedulerFactory, clock: FakeClock) -> None:
    """Bytes fail as the stream makes them fail (code that falls back to .buffer on TypeError keeps working);
    a custom handler that prints its records does not have them kept twice."""
    scheduler = make_scheduler()
    logger = logging.getLogger("tests.custom")

    class Printing(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(record.getMessage())  # noqa: T201

    def job() -> None:
        try:
            sys.stdout.write(b"raw")  # type: ignore[arg-type]
        except TypeError:
            print("fell back")  # noqa: T201
        logger.warning("exported 10 rows")

    handler = Printing()
    logger.addHandler(handler)
    scheduler.register(job)
    try:
        run = run_once(scheduler, clock, job, "bytes")
    finally:
        logger.removeHandler(handler)
    assert run.status is RunStatus.SUCCEEDED and run.output is not None
    assert run.output.startswith("fell back\n") and run.output.count("exported 10 rows") == 1


def test_an_applications_own_tee_does_not_double_a_runs_prints(
    make_scheduler: SchedulerFactory, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = make_scheduler()
    run_once(scheduler, clock, "tests.jobs:printing", "first")  # the streams are wrapped by now

    class Tee:
        def __init__(self, stream: Any) -> None:
            self.stream, self.copy = stream, io.StringIO()

        def write(self, text: str) -> int:
            self.copy.write(text)
            return int(self.stream.write(text))

        def flush(self) -> None:
            self.stream.flush()

    monkeypatch.setattr(sys, "stdout", Tee(sys.stdout))
    run = run_once(scheduler, clock, "tests.jobs:printing", "second")
    assert run.output == "report written\nto stderr\n"


def test_a_pool_worker_started_in_a_run_does_not_keep_working_for_it(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """A pool's worker thread serves whoever submits next: it must not carry the run that happened to
    start it."""
    scheduler = make_scheduler()
    pool = ThreadPoolExecutor(max_workers=1)
    later: list[str] = []

    def job() -> None:
        pool.submit(print, "submitted in the run").result()

    scheduler.register(job)
    scheduler.add_job(job, id="pooled", every="1m")
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    pool.submit(later.append, "after").result()
    pool.shutdown()
    (run,) = scheduler.runs(job_id="pooled")
    assert run.status is RunStatus.SUCCEEDED and run.output is None
    assert later == ["after"]
