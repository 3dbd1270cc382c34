"""Events: APScheduler's codes and classes, fed from the facade's actions and from cronkeeper's run events."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import cronkeeper.compat.apscheduler as facade
from cronkeeper import FakeClock
from cronkeeper.compat.apscheduler import (
    EVENT_ALL,
    EVENT_ALL_JOBS_REMOVED,
    EVENT_JOB_ADDED,
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_MODIFIED,
    EVENT_JOB_REMOVED,
    EVENT_JOB_SUBMITTED,
    EVENT_SCHEDULER_PAUSED,
    EVENT_SCHEDULER_RESUMED,
    EVENT_SCHEDULER_SHUTDOWN,
    EVENT_SCHEDULER_STARTED,
    BackgroundScheduler,
    JobEvent,
    JobExecutionError,
    JobExecutionEvent,
    JobSubmissionEvent,
    JobTimeoutError,
    SchedulerEvent,
)
from cronkeeper.events import EventKind, RunEvent
from cronkeeper.models import TriggerSource
from tests.compat.conftest import Factory
from tests.compat.helpers import Events, step


def test_event_codes_have_apschedulers_values() -> None:
    events = pytest.importorskip("apscheduler.events")
    names = [name for name in events.__all__ if name.startswith("EVENT_")]
    assert len(names) == 18
    assert {name: getattr(facade, name) for name in names} == {name: getattr(events, name) for name in names}
    assert facade.EVENT_SCHEDULER_START == events.EVENT_SCHEDULER_START


def test_event_classes_take_apschedulers_arguments() -> None:
    when = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))
    executed = JobExecutionEvent(EVENT_JOB_EXECUTED, "job", "default", when, retval=3)
    assert (executed.code, executed.job_id, executed.jobstore, executed.scheduled_run_time) == (
        EVENT_JOB_EXECUTED,
        "job",
        "default",
        when,
    )
    assert (executed.retval, executed.exception, executed.traceback, executed.alias) == (3, None, None, None)
    submitted = JobSubmissionEvent(EVENT_JOB_SUBMITTED, "job", "default", [when])
    assert submitted.scheduled_run_times == [when]
    assert isinstance(submitted, JobEvent) and isinstance(executed, SchedulerEvent)
    assert SchedulerEvent(EVENT_ALL_JOBS_REMOVED, "default").alias == "default"


def ok() -> int:
    return 42


def returns(value: Any) -> Any:
    return value


def fails() -> None:
    raise LookupError("no such thing")


def test_a_run_is_submitted_then_executed_with_its_return_value(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    events = Events()
    sched.add_listener(events)
    sched.add_job(ok, "cron", minute=30, id="job")
    step(sched, clock, timedelta(minutes=30))
    assert events.codes("job") == [EVENT_JOB_ADDED, EVENT_JOB_SUBMITTED, EVENT_JOB_EXECUTED]
    submitted, executed = events.events[1:]
    fire = datetime.fromisoformat("2026-03-02T08:30:00+00:00")
    assert isinstance(submitted, JobSubmissionEvent) and submitted.scheduled_run_times == [fire]
    assert isinstance(executed, JobExecutionEvent)
    assert (executed.job_id, executed.jobstore, executed.scheduled_run_time, executed.retval) == (
        "job",
        "default",
        fire,
        42,
    )
    assert executed.exception is None


@pytest.mark.parametrize(
    ("value", "retval"),
    [(None, None), ("done", "done"), ({"items": 3}, {"items": 3}), ({"value": 3}, {"value": 3})],
)
def test_retval_is_what_the_job_returned(
    sched: BackgroundScheduler, clock: FakeClock, value: Any, retval: Any
) -> None:
    events = Events()
    sched.add_listener(events, EVENT_JOB_EXECUTED)
    sched.add_job(returns, "interval", minutes=1, args=[value])
    step(sched, clock, timedelta(minutes=1))
    assert [event.retval for event in events.of(EVENT_JOB_EXECUTED)] == [retval]


def test_a_failure_is_an_error_event_with_the_exception_and_traceback(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    events = Events()
    sched.add_listener(events, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
    sched.add_job(fails, "interval", minutes=1, id="bad")
    step(sched, clock, timedelta(minutes=1))
    (error,) = events.events
    assert isinstance(error, JobExecutionEvent) and error.code == EVENT_JOB_ERROR
    assert isinstance(error.exception, LookupError) and str(error.exception) == "no such thing"
    assert error.traceback is not None and "raise LookupError" in error.traceback
    assert error.retval is None


def test_each_retry_is_submitted_and_reported(sched: BackgroundScheduler, clock: FakeClock) -> None:
    events = Events()
    sched.add_listener(events, EVENT_JOB_SUBMITTED | EVENT_JOB_ERROR)
    sched.add_job(fails, "cron", hour=9, id="bad", max_retries=1, retry_base="10s", retry_jitter=0)
    step(sched, clock, timedelta(hours=1, seconds=30))
    assert events.codes() == [EVENT_JOB_SUBMITTED, EVENT_JOB_ERROR] * 2


def test_a_timed_out_thread_job_is_an_error_with_a_timeout_exception(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    release = threading.Event()
    events = Events()
    sched.add_listener(events, EVENT_JOB_ERROR)
    sched.add_job(lambda: release.wait(5), "interval", minutes=1, id="slow", timeout=0.05)
    try:
        step(sched, clock, timedelta(minutes=1))
    finally:
        release.set()
    (error,) = events.of(EVENT_JOB_ERROR)
    assert isinstance(error.exception, JobTimeoutError) and isinstance(error.exception, TimeoutError)
    assert "timed out after 0.05s" in str(error.exception)


def test_missed_fires_after_downtime_are_reported(sched: BackgroundScheduler, clock: FakeClock) -> None:
    events = Events()
    sched.add_listener(events, EVENT_JOB_MISSED | EVENT_JOB_EXECUTED)
    sched.add_job(ok, "interval", minutes=10, id="coalesced")
    sched.add_job(ok, "interval", minutes=10, id="skipped", catchup="skip")
    clock.advance(timedelta(hours=1, minutes=5))  # the process was down
    step(sched, clock, timedelta(0))
    # coalesce=True: one catch-up run, the other missed fires in one record (APScheduler: one event each).
    assert events.codes("coalesced") == [EVENT_JOB_MISSED, EVENT_JOB_EXECUTED]
    assert events.codes("skipped") == [EVENT_JOB_MISSED]
    # The newest missed fire, as APScheduler reports (the record itself starts at the first).
    assert {event.job_id: event.scheduled_run_time for event in events.of(EVENT_JOB_MISSED)} == {
        "coalesced": datetime.fromisoformat("2026-03-02T08:50:00+00:00"),
        "skipped": datetime.fromisoformat("2026-03-02T09:00:00+00:00"),
    }


def test_a_fire_refused_by_max_instances_is_reported(sched: BackgroundScheduler, clock: FakeClock) -> None:
    release = threading.Event()
    events = Events()
    sched.add_listener(events, EVENT_JOB_MAX_INSTANCES)
    sched.add_job(lambda: release.wait(5), "interval", minutes=1, id="long", max_instances=1)
    core = sched.core
    clock.advance(timedelta(minutes=1))
    core.run_pending(wait=False)
    clock.advance(timedelta(minutes=1))
    core.run_pending(wait=False)
    release.set()
    assert core.loop is not None
    core.loop.drain(5)
    (refused,) = events.events
    assert isinstance(refused, JobSubmissionEvent)
    assert refused.scheduled_run_times == [datetime.fromisoformat("2026-03-02T08:02:00+00:00")]


def test_the_facades_own_actions_send_their_events(sched: BackgroundScheduler) -> None:
    events = Events()
    sched.add_listener(events)
    sched.add_job(ok, "interval", minutes=1, id="job")
    sched.modify_job("job", name="renamed")
    sched.reschedule_job("job", trigger="interval", minutes=2)
    sched.pause_job("job")
    sched.resume_job("job")
    sched.remove_job("job")
    sched.remove_all_jobs()
    sched.start(paused=True)
    sched.resume()
    sched.pause()
    sched.shutdown()
    assert events.codes() == [
        EVENT_JOB_ADDED,
        EVENT_JOB_MODIFIED,
        EVENT_JOB_MODIFIED,
        EVENT_JOB_MODIFIED,
        EVENT_JOB_MODIFIED,
        EVENT_JOB_REMOVED,
        EVENT_ALL_JOBS_REMOVED,
        EVENT_SCHEDULER_STARTED,
        EVENT_SCHEDULER_RESUMED,
        EVENT_SCHEDULER_PAUSED,
        EVENT_SCHEDULER_SHUTDOWN,
    ]
    assert all(getattr(event, "jobstore", "default") == "default" for event in events.events)


def test_masks_select_events_and_listeners_can_be_removed(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    errors, everything = Events(), Events()
    sched.add_listener(errors, EVENT_JOB_ERROR)
    sched.add_listener(everything, EVENT_ALL)
    sched.add_job(fails, "interval", minutes=1, id="bad")
    step(sched, clock, timedelta(minutes=1))
    sched.remove_listener(everything)
    step(sched, clock, timedelta(minutes=1))
    assert errors.codes() == [EVENT_JOB_ERROR, EVENT_JOB_ERROR]
    assert everything.codes() == [EVENT_JOB_ADDED, EVENT_JOB_SUBMITTED, EVENT_JOB_ERROR]


def test_a_failing_listener_is_logged_and_the_others_still_hear(
    sched: BackgroundScheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: SchedulerEvent) -> None:
        raise RuntimeError("listener bug")

    events = Events()
    sched.add_listener(broken)
    sched.add_listener(events, EVENT_JOB_EXECUTED)
    sched.add_job(ok, "interval", minutes=1)
    step(sched, clock, timedelta(minutes=2))
    assert len(events.of(EVENT_JOB_EXECUTED)) == 2
    assert "listener bug" in caplog.text


def test_scheduled_run_times_are_in_the_schedulers_zone(make: Factory, clock: FakeClock) -> None:
    sched = make(BackgroundScheduler, timezone="America/New_York")
    events = Events()
    sched.add_listener(events, EVENT_JOB_EXECUTED)
    sched.add_job(ok, "cron", hour=5)
    step(sched, clock, timedelta(hours=3))
    (executed,) = events.of(EVENT_JOB_EXECUTED)
    assert executed.scheduled_run_time.tzinfo == ZoneInfo("America/New_York")
    assert executed.scheduled_run_time.hour == 5


def run_event(kind: EventKind, **fields: Any) -> RunEvent:
    at = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
    return RunEvent(kind, 1, "job", at, 0, TriggerSource.SCHEDULE, **fields)


def test_errors_seen_in_another_process_carry_the_recorded_message() -> None:
    from cronkeeper.compat.apscheduler.events import job_events

    utc = ZoneInfo("UTC")
    (failed,) = job_events(
        run_event(EventKind.FAILED, error="ValueError: bad", traceback="Traceback..."), utc
    )
    (lost,) = job_events(run_event(EventKind.LOST, error="owner stopped heartbeating"), utc)
    assert isinstance(failed, JobExecutionEvent) and isinstance(failed.exception, JobExecutionError)
    assert (str(failed.exception), failed.traceback) == ("ValueError: bad", "Traceback...")
    assert isinstance(lost, JobExecutionEvent) and lost.code == EVENT_JOB_ERROR
    assert job_events(run_event(EventKind.CANCELLED), utc) == []


def test_retval_is_the_object_itself_in_process(sched: BackgroundScheduler, clock: FakeClock) -> None:
    returned = (1, object())
    events = Events()
    sched.add_listener(events, EVENT_JOB_EXECUTED)
    sched.add_job(lambda: returned, "interval", minutes=1)
    step(sched, clock, timedelta(minutes=1))
    assert [event.retval for event in events.of(EVENT_JOB_EXECUTED)] == [returned]


@pytest.mark.parametrize(
    ("result", "retval"), [(None, None), ({"value": [1, 2]}, [1, 2]), ({"items": 3}, {"items": 3})]
)
def test_retval_of_a_run_seen_from_another_process_comes_from_its_record(result: Any, retval: Any) -> None:
    from cronkeeper.compat.apscheduler.events import job_events

    (executed,) = job_events(run_event(EventKind.SUCCEEDED, result=result), ZoneInfo("UTC"))
    assert isinstance(executed, JobExecutionEvent) and executed.retval == retval
