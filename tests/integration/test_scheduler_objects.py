"""Several scheduler objects on one database: a job whose target exists only in one of them (a bound method, a
lambda, a local function) runs only there, on that object; jobs any process can import run anywhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler
from tests.conftest import SchedulerFactory
from tests.jobs import metrics


class Counter:
    """An object whose method is the job: each object counts its own runs."""

    def __init__(self) -> None:
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1


def minute_by_minute(clock: FakeClock, schedulers: list[Scheduler], minutes: int) -> None:
    for _ in range(minutes):
        clock.advance(timedelta(minutes=1))
        for scheduler in schedulers:
            scheduler.run_pending()


@pytest.fixture
def two(make_scheduler: SchedulerFactory) -> tuple[Scheduler, Scheduler]:
    return make_scheduler(), make_scheduler()


def test_each_object_runs_its_own_bound_method(two: tuple[Scheduler, Scheduler], clock: FakeClock) -> None:
    first, second = two
    counters = Counter(), Counter()
    jobs = [sched.add_job(counter.tick, every="1m") for sched, counter in zip(two, counters, strict=True)]
    assert jobs[0].id != jobs[1].id  # one class, one method name: the second object's job is a job of its own
    assert jobs[0].runs_on == first.instance_id and jobs[1].runs_on == second.instance_id
    minute_by_minute(clock, [first, second], 10)
    assert [counter.ticks for counter in counters] == [10, 10]
    assert {run.status for run in first.runs(limit=100)} == {RunStatus.SUCCEEDED}


def test_a_lambda_runs_only_in_the_object_that_added_it(
    two: tuple[Scheduler, Scheduler], clock: FakeClock
) -> None:
    first, second = two
    calls: list[str] = []
    job = first.add_job(lambda: calls.append("first"), id="local", every="1m")
    shared = second.add_job(metrics, every="1m")  # importable: no home, whoever claims it runs it
    assert shared.runs_on is None
    clock.advance(timedelta(minutes=1))
    second.run_pending()  # the other object claims what it can run, and only that
    assert second.runs(job_id=job.id) == []
    assert second.next_due_at() == clock.now() + timedelta(minutes=1)  # the lambda's fire is not its own
    first.run_pending()
    assert calls == ["first"]
    assert [run.status for run in first.runs(job_id=job.id)] == [RunStatus.SUCCEEDED]


def test_a_manual_run_waits_for_the_object_that_can_run_it(
    two: tuple[Scheduler, Scheduler], clock: FakeClock
) -> None:
    first, second = two
    counter = Counter()
    job = first.add_job(counter.tick, every="1h")
    run_id = second.trigger(job.id)
    second.run_pending()
    assert second.get_run(run_id).status is RunStatus.QUEUED
    first.run_pending()
    assert counter.ticks == 1 and first.get_run(run_id).status is RunStatus.SUCCEEDED


def test_a_closed_object_hands_its_jobs_to_the_next_one_that_declares_them(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    first = make_scheduler()
    first.add_job(Counter().tick, every="1m")
    first.close()
    other = make_scheduler()
    assert other.next_due_at() is None  # a job only the closed object could run: nothing for this one
    counter = Counter()
    job = other.add_job(counter.tick, every="1m")
    assert job.id == "Counter.tick" and job.runs_on == other.instance_id  # the same job, at its new home
    minute_by_minute(clock, [other], 3)
    assert counter.ticks == 3


def test_a_function_registered_by_name_is_at_home_where_it_was_registered(
    two: tuple[Scheduler, Scheduler], clock: FakeClock
) -> None:
    first, second = two
    seen: list[int] = []

    def local() -> None:
        seen.append(1)

    ref = first.register(local)
    job = first.add_job(ref, id="by-name", every="1m")
    assert job.runs_on == first.instance_id
    minute_by_minute(clock, [second, first], 2)
    assert seen == [1, 1]


def test_declaring_an_importable_target_gives_the_job_back_to_every_node(
    two: tuple[Scheduler, Scheduler], clock: FakeClock
) -> None:
    first, second = two
    first.add_job(Counter().tick, id="switch", every="1m")
    job = second.add_job(metrics, id="switch", every="1m")
    assert job.runs_on is None
    minute_by_minute(clock, [first], 1)
    assert [run.status for run in first.runs(job_id="switch")] == [RunStatus.SUCCEEDED]


@pytest.mark.parametrize("make_target", [lambda c: c.tick, lambda c: lambda: c.tick()])
def test_an_edit_from_another_process_keeps_the_job_at_home(
    two: tuple[Scheduler, Scheduler], clock: FakeClock, make_target: Callable[[Counter], Callable[[], None]]
) -> None:
    first, second = two
    counter = Counter()
    job = first.add_job(make_target(counter), id="homed", every="1m")
    edited = second.edit(job.id, timeout="5s")
    assert edited.runs_on == first.instance_id
    minute_by_minute(clock, [second, first], 1)
    assert counter.ticks == 1
