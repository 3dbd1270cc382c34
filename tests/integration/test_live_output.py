"""The output of a command or isolated callable reaches its run row while it runs, so a run page served by any
node can follow it; a real scheduler, a real SQLite file and real child processes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from cronkeeper import RunStatus, Scheduler
from cronkeeper.exceptions import StoreError
from cronkeeper.models import Run
from cronkeeper.settings import SchedulerSettings

FIRST_THEN_SECOND = ["sh", "-c", "echo first; sleep 2; echo second"]
Progress = Sequence[tuple[int, str]]


def print_and_sleep() -> str:
    """Run isolated, the child imports this module.  No flush: a child holding its output back would show."""
    print("first")  # noqa: T201 - the test follows the output
    time.sleep(2)
    print("second")  # noqa: T201
    return "done"


@pytest.fixture
def make_live(db_url: str) -> Iterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []

    def make(**settings: Any) -> Scheduler:
        scheduler = Scheduler(db_url, settings=SchedulerSettings(workers=2, **settings))
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


def poll(scheduler: Scheduler, run_id: int, until: Callable[[Run], bool], timeout: float = 15.0) -> Run:
    deadline = time.monotonic() + timeout
    run = scheduler.get_run(run_id)
    while not until(run) and time.monotonic() < deadline:
        time.sleep(0.05)
        run = scheduler.get_run(run_id)
    return run


def shows_first_or_ended(run: Run) -> bool:
    """The whole first line: `print` writes the text and its line break apart, and a progress write may fall
    between them, so "first" alone can show for a moment."""
    return "first\n" in (run.output or "") or not run.status.is_active


def ended(run: Run) -> bool:
    return not run.status.is_active


def follow(scheduler: Scheduler, job_id: str) -> None:
    """Trigger the job, see its first line while it still runs, then its whole output once it ended."""
    run_id = scheduler.trigger(job_id)
    scheduler.start()
    run = poll(scheduler, run_id, shows_first_or_ended)
    assert (run.status, run.output) == (RunStatus.RUNNING, "first\n")
    run = poll(scheduler, run_id, ended)
    assert (run.status, run.output) == (RunStatus.SUCCEEDED, "first\nsecond\n")


def test_a_commands_output_shows_while_it_runs(make_live: Callable[..., Scheduler]) -> None:
    scheduler = make_live()
    scheduler.add_job(id="chatty", every="1h", command=FIRST_THEN_SECOND)
    follow(scheduler, "chatty")


def test_an_isolated_callables_output_shows_while_it_runs(
    make_live: Callable[..., Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # the child must not rely on the caller's
    scheduler = make_live()
    scheduler.add_job(f"{__name__}:print_and_sleep", id="chatty", every="1h", isolate=True)
    follow(scheduler, "chatty")


def test_output_is_written_again_only_when_it_changed(
    make_live: Callable[..., Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = make_live(progress_interval=timedelta(seconds=0.1))
    written: list[Progress] = []
    record_progress = scheduler.store.record_progress

    def spy(progress: Progress, *, owner: str) -> None:
        written.append(list(progress))
        record_progress(progress, owner=owner)

    monkeypatch.setattr(scheduler.store, "record_progress", spy)
    scheduler.add_job(id="chatty", every="1h", command=FIRST_THEN_SECOND)
    follow(scheduler, "chatty")
    # About twenty chances to write during the two seconds of sleep; "first" was written once.
    assert [text for batch in written for _, text in batch if text == "first\n"] == ["first\n"]


def test_a_failed_progress_write_is_dropped_and_the_outcome_still_written(
    make_live: Callable[..., Scheduler], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = make_live(progress_interval=timedelta(seconds=0.1))

    def broken(progress: Progress, *, owner: str) -> None:
        raise StoreError("database write failed: disk I/O error")

    monkeypatch.setattr(scheduler.store, "record_progress", broken)
    scheduler.add_job(id="chatty", every="1h", command=FIRST_THEN_SECOND)
    run_id = scheduler.trigger("chatty")
    with caplog.at_level(logging.WARNING, logger="cronkeeper.engine.outcomes"):
        scheduler.start()
        run = poll(scheduler, run_id, ended)
    assert (run.status, run.output) == (RunStatus.SUCCEEDED, "first\nsecond\n")
    assert any("could not write the output" in record.getMessage() for record in caplog.records)


def print_then_print() -> None:
    """Run in a worker thread: what it prints shows while it runs, as a command's output does."""
    print("first")  # noqa: T201
    time.sleep(2)
    print("second")  # noqa: T201


def test_what_an_in_process_job_prints_shows_while_it_runs(make_live: Callable[..., Scheduler]) -> None:
    scheduler = make_live()
    scheduler.add_job(f"{__name__}:print_then_print", id="chatty", every="1h")
    follow(scheduler, "chatty")
