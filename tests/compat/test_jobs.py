"""The facade's job API: adding (and declaring again), ids, references, arguments, changes, listing."""

from __future__ import annotations

import functools
import io
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.compat.apscheduler import (
    BackgroundScheduler,
    ConflictingIdError,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    Job,
    JobLookupError,
)
from cronkeeper.compat.apscheduler.errors import NotATriggerError, UnknownJobStoreError
from cronkeeper.compat.apscheduler.jobs import DEFAULT_GRACE
from cronkeeper.exceptions import JobNotFoundError, TargetImportError, ValidationError
from tests.compat.conftest import Factory
from tests.compat.helpers import step

PARIS = ZoneInfo("Europe/Paris")


def noop() -> None:
    pass


def double(value: int) -> int:
    return value * 2


def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def statuses(sched: BackgroundScheduler, job_id: str) -> list[str]:
    return [run.status.value for run in reversed(sched.core.runs(job_id=job_id, limit=1000))]


# ---- adding ------------------------------------------------------------------------------------------------


def test_added_job_shows_apschedulers_attributes(make: Factory) -> None:
    sched = make(BackgroundScheduler, timezone="Europe/Paris")
    job = sched.add_job(greet, "cron", hour=3, args=["ann"], kwargs={"punctuation": "?"}, id="greeting")
    assert isinstance(job, Job)
    assert (job.id, job.name, job.func, job.func_ref) == ("greeting", "greet", greet, f"{__name__}:greet")
    assert (job.args, job.kwargs) == (("ann",), {"punctuation": "?"})
    assert str(job.trigger) == "cron[hour='3']"
    assert job.next_run_time == datetime(2026, 3, 3, 3, 0, tzinfo=PARIS)
    assert job.next_run_time.tzinfo == PARIS
    assert (job.executor, job.coalesce, job.max_instances, job.misfire_grace_time) == ("default", True, 1, 60)
    assert job.pending is False
    assert repr(job) == "<Job (id=greeting name=greet)>"
    assert str(job) == "greet (trigger: cron[hour='3'], next run at: 2026-03-03 03:00:00 CET)"


def test_the_job_runs_with_its_arguments(sched: BackgroundScheduler, clock: FakeClock) -> None:
    sched.add_job(greet, "interval", hours=1, args=["bob"], id="greeting")
    step(sched, clock, timedelta(hours=2))
    runs = sched.core.runs(job_id="greeting")
    assert [run.result for run in runs] == [{"value": "hello bob!"}] * 2


def test_no_trigger_runs_the_job_once_now(sched: BackgroundScheduler, clock: FakeClock) -> None:
    job = sched.add_job(double, args=[4])
    assert str(job.trigger) == "date[2026-03-02 08:00:00 UTC]"
    step(sched, clock, timedelta(seconds=1))
    assert statuses(sched, job.id) == ["succeeded"]
    assert sched.get_jobs() == []  # over, as APScheduler forgets it; its history stays
    assert sched.core.runs(job_id=job.id)[0].result == {"value": 8}


def test_a_text_reference_is_imported(sched: BackgroundScheduler, clock: FakeClock) -> None:
    job = sched.add_job("tests.jobs:metrics", "interval", minutes=30, kwargs={"items": 3}, id="metrics")
    assert job.func_ref == "tests.jobs:metrics"
    assert job.name == "metrics"
    step(sched, clock, timedelta(minutes=30))
    assert sched.core.runs(job_id="metrics")[0].result == {
        "items_processed": 3,
        "items_succeeded": 2,
        "items_failed": 1,
    }


def test_a_text_reference_that_cannot_be_imported_is_refused(sched: BackgroundScheduler) -> None:
    with pytest.raises(TargetImportError, match=r"tests\.no_such_module"):
        sched.add_job("tests.no_such_module:job", "interval", minutes=1)


def test_arguments_that_json_cannot_hold_are_refused_naming_them(sched: BackgroundScheduler) -> None:
    with pytest.raises(ValidationError, match="never pickled") as caught:
        sched.add_job(double, "interval", minutes=1, args=[object()])
    assert caught.value.field == "args"
    with pytest.raises(ValidationError) as caught:
        sched.add_job(double, "interval", minutes=1, kwargs={"when": datetime(2026, 1, 1, tzinfo=PARIS)})
    assert caught.value.field == "kwargs"
    with pytest.raises(ValidationError) as caught:
        sched.add_job(double, "interval", minutes=1, args="abc")  # type: ignore[arg-type]
    assert caught.value.field == "args"


def test_tuples_arrive_as_json_gives_them_back(sched: BackgroundScheduler, clock: FakeClock) -> None:
    seen: list[Any] = []
    sched.add_job(seen.append, "interval", minutes=1, args=[(1, 2)], id="tuple")
    step(sched, clock, timedelta(minutes=1))
    assert seen == [[1, 2]]


def test_lambdas_and_closures_run_their_own_code(sched: BackgroundScheduler, clock: FakeClock) -> None:
    calls: list[str] = []
    first = sched.add_job(lambda: calls.append("first"), "interval", minutes=1)
    second = sched.add_job(lambda: calls.append("second"), "interval", minutes=1)

    def make_job(tag: str) -> Any:
        def job() -> None:
            calls.append(tag)

        return job

    third = sched.add_job(make_job("third"), "interval", minutes=1)
    fourth = sched.add_job(make_job("fourth"), "interval", minutes=1)
    assert first.func_ref == f"{__name__}:test_lambdas_and_closures_run_their_own_code.<locals>.lambda"
    assert second.func_ref == first.func_ref + "_2"
    assert fourth.func_ref == third.func_ref + "_2"
    step(sched, clock, timedelta(minutes=1))
    assert sorted(calls) == ["first", "fourth", "second", "third"]


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def bump(self) -> int:
        self.count += 1
        return self.count


def test_bound_methods_of_two_objects_stay_apart(sched: BackgroundScheduler, clock: FakeClock) -> None:
    one, two = Counter(), Counter()
    job = sched.add_job(one.bump, "interval", minutes=1)
    sched.add_job(two.bump, "interval", minutes=2)
    assert job.name == "Counter.bump"
    step(sched, clock, timedelta(minutes=4))
    assert (one.count, two.count) == (4, 2)


# ---- identity and declarations -----------------------------------------------------------------------------


def test_jobs_without_an_id_get_one_from_their_function_and_arguments(sched: BackgroundScheduler) -> None:
    plain = sched.add_job(noop, "interval", minutes=1)
    again = sched.add_job(noop, "cron", hour=1)
    with_args = sched.add_job(double, "interval", minutes=1, args=[1])
    other_args = sched.add_job(double, "interval", minutes=1, args=[2])
    assert plain.id == "tests.compat.test_jobs.noop"
    assert again.id == "tests.compat.test_jobs.noop-2"
    assert re.fullmatch(r"tests\.compat\.test_jobs\.double-[0-9a-f]{8}", with_args.id)
    assert other_args.id != with_args.id


def test_adding_the_same_jobs_at_the_next_start_updates_them_in_place(
    make: Factory, clock: FakeClock
) -> None:
    first = make(BackgroundScheduler)
    first.add_job(double, "interval", minutes=10, args=[1])
    first.add_job(noop, "cron", minute="*/5", id="explicit")
    step(first, clock, timedelta(minutes=10))
    ids = sorted(job.id for job in first.get_jobs())

    restarted = make(BackgroundScheduler)  # the program's next start: same code, new scheduler object
    restarted.add_job(double, "interval", minutes=10, args=[1])
    restarted.add_job(noop, "cron", minute="*/15", id="explicit")  # schedule changed in code
    assert sorted(job.id for job in restarted.get_jobs()) == ids
    assert statuses(restarted, "explicit") == ["succeeded", "succeeded"]  # history kept
    assert str(restarted.get_job("explicit").trigger) == "cron[minute='*/15']"  # type: ignore[union-attr]
    interval_id = next(i for i in ids if i != "explicit")
    # The interval job keeps the grid it got when first added.
    assert restarted.get_job(interval_id).next_run_time == datetime.fromisoformat("2026-03-02T08:20:00+00:00")  # type: ignore[union-attr]


def test_a_job_declared_by_another_process_in_between_is_updated(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make(BackgroundScheduler), make(BackgroundScheduler)
    first.add_job(noop, "cron", minute=5, id="shared", replace_existing=True)
    store = second.core.store
    found = iter([None])  # the second looks before the first has stored it, then finds it taken
    monkeypatch.setattr(store, "find_job", lambda job_id, _real=store.find_job: next(found, _real(job_id)))
    job = second.add_job(noop, "cron", minute=7, id="shared", replace_existing=True)
    assert str(job.trigger) == "cron[minute='7']"
    assert [stored.id for stored in second.core.jobs()] == ["shared"]


def test_a_second_add_of_one_id_by_one_scheduler_conflicts(sched: BackgroundScheduler) -> None:
    sched.add_job(noop, "interval", minutes=1, id="once")
    with pytest.raises(ConflictingIdError) as caught:
        sched.add_job(noop, "interval", minutes=2, id="once")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == "Job identifier (once) conflicts with an existing job"
    job = sched.add_job(noop, "interval", minutes=2, id="once", replace_existing=True)
    assert str(job.trigger) == "interval[0:02:00]"
    assert len(sched.get_jobs()) == 1


def test_a_finished_one_off_job_can_be_added_again(sched: BackgroundScheduler, clock: FakeClock) -> None:
    sched.add_job(noop, "date", run_date=clock.now() + timedelta(minutes=1), id="once")
    step(sched, clock, timedelta(minutes=2))
    job = sched.add_job(noop, "date", run_date=clock.now() + timedelta(minutes=1), id="once")
    assert job.next_run_time == clock.now() + timedelta(minutes=1)


def test_a_job_paused_elsewhere_stays_paused_when_declared_again(make: Factory) -> None:
    first = make(BackgroundScheduler)
    first.add_job(noop, "interval", minutes=1, id="tick")
    first.core.pause("tick")  # e.g. from the dashboard
    restarted = make(BackgroundScheduler)
    job = restarted.add_job(noop, "interval", minutes=1, id="tick")
    assert job.next_run_time is None


def test_the_decorator_registers_and_returns_the_function(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    calls: list[int] = []

    @sched.scheduled_job("interval", minutes=5, id="decorated", name="Decorated job")
    def decorated() -> None:
        calls.append(1)

    @sched.scheduled_job("interval", minutes=5, id="decorated")  # replace_existing is implied
    def decorated_again() -> None:
        calls.append(2)

    assert decorated.__name__ == "decorated"
    step(sched, clock, timedelta(minutes=5))
    assert calls == [2]


# ---- options -----------------------------------------------------------------------------------------------


def test_policies_map_to_cronkeepers(sched: BackgroundScheduler) -> None:
    job = sched.add_job(noop, "interval", minutes=1, coalesce=False, max_instances=3, misfire_grace_time=None)
    spec = sched.core.get_job(job.id).spec
    assert (spec.catchup.value, spec.max_instances, spec.misfire_grace.days) == ("all", 3, 36525)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (False, 3, None)
    with pytest.raises(ValidationError) as caught:
        sched.add_job(noop, "interval", minutes=1, misfire_grace_time=0)
    assert caught.value.field == "misfire_grace_time"


def test_coalesce_with_a_grace_runs_a_late_fire_only_within_it_as_apscheduler(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    # APScheduler coalesces the due fires into the newest and runs it only within misfire_grace_time.
    sched.add_job(noop, "cron", minute=5, id="strict", misfire_grace_time=30, coalesce=True)
    sched.add_job(noop, "cron", minute=5, id="default-grace")  # cronkeeper's default: one catch-up
    sched.add_job(noop, "cron", minute=5, id="modified", misfire_grace_time=30, coalesce=False)
    sched.modify_job("modified", coalesce=True)
    assert sched.core.get_job("strict").spec.catchup.value == "skip"
    assert sched.core.get_job("default-grace").spec.misfire_grace == DEFAULT_GRACE
    clock.advance(timedelta(minutes=15))  # down over 08:05
    step(sched, clock, timedelta(seconds=1))
    assert statuses(sched, "strict") == ["missed"]
    assert statuses(sched, "modified") == ["missed"]
    assert statuses(sched, "default-grace") == ["succeeded"]
    step(sched, clock, timedelta(hours=1))  # on time: runs
    assert statuses(sched, "strict") == ["missed", "succeeded"]


def test_cronkeepers_own_options_are_accepted_beside_apschedulers(sched: BackgroundScheduler) -> None:
    job = sched.add_job(
        noop, "cron", hour=2, timeout=30, max_retries=2, retry_base="5s", overlap="forbid", tags=["nightly"]
    )
    spec = sched.core.get_job(job.id).spec
    assert (spec.timeout, spec.retry.max_retries, spec.overlap.value, spec.tags) == (
        timedelta(seconds=30),
        2,
        "forbid",
        ("nightly",),
    )
    with pytest.raises(ValidationError, match="coalesce or catchup"):
        sched.add_job(noop, "cron", hour=2, coalesce=True, catchup="skip")


@pytest.mark.parametrize(
    ("trigger", "options", "field"),
    [
        ("cron", {"hours": 3}, "hours"),  # a typo APScheduler answers with a TypeError
        ("interval", {"minute": 5}, "minute"),
        ("date", {"start_date": "2026-01-01 00:00:00"}, "start_date"),
        ("weekly", {}, "trigger"),
        (CronTrigger(hour=1), {"minute": 5}, "minute"),
    ],
)
def test_unknown_trigger_options_are_refused_naming_them(
    sched: BackgroundScheduler, trigger: object, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        sched.add_job(noop, trigger, **options)
    assert caught.value.field == field


def test_trigger_objects_without_a_zone_take_the_schedulers(make: Factory) -> None:
    sched = make(BackgroundScheduler, timezone="Europe/Paris")
    job = sched.add_job(noop, CronTrigger(hour=10), id="ten")
    assert job.next_run_time == datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
    tokyo = sched.add_job(noop, CronTrigger(hour=9, timezone="Asia/Tokyo"), id="tokyo")
    assert tokyo.next_run_time == datetime(2026, 3, 3, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_next_run_time_none_adds_the_job_paused(sched: BackgroundScheduler, clock: FakeClock) -> None:
    job = sched.add_job(noop, "interval", minutes=1, id="later", next_run_time=None)
    assert job.next_run_time is None
    assert str(job) == "noop (trigger: interval[0:01:00], paused)"
    step(sched, clock, timedelta(minutes=5))
    assert statuses(sched, "later") == []
    sched.resume_job("later")
    step(sched, clock, timedelta(minutes=1))
    assert statuses(sched, "later") == ["succeeded"]


def test_next_run_time_now_runs_at_once_then_on_schedule(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    sched.add_job(noop, "interval", minutes=10, id="eager", next_run_time=clock.now())
    sched.add_job(noop, "cron", hour=9, id="eager-cron", next_run_time=clock.now())
    step(sched, clock, timedelta(minutes=20))
    fires = [run.scheduled_for for run in reversed(sched.core.runs(job_id="eager"))]
    start = clock.now() - timedelta(minutes=20)
    assert fires == [start, start + timedelta(minutes=10), start + timedelta(minutes=20)]
    assert statuses(sched, "eager-cron") == ["succeeded"]


@pytest.fixture
def paris_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's local zone is Europe/Paris (east of UTC) for the test."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("paris_host")
def test_a_naive_next_run_time_is_the_hosts_wall_time_without_a_configured_zone(
    make: Factory, clock: FakeClock
) -> None:
    now_here = clock.now().astimezone().replace(tzinfo=None)  # datetime.now() on a host in Paris
    sched = make(BackgroundScheduler)
    sched.add_job(noop, "cron", hour=3, id="eager-cron", next_run_time=now_here)
    job = sched.add_job(noop, "interval", minutes=30, id="eager", next_run_time=now_here)
    assert job.next_run_time == clock.now() + timedelta(minutes=30)  # run now, then every 30 minutes
    step(sched, clock, timedelta(seconds=1))
    assert statuses(sched, "eager-cron") == ["succeeded"]
    assert statuses(sched, "eager") == ["succeeded"]
    configured = make(BackgroundScheduler, timezone="America/New_York")
    later = configured.add_job(noop, "interval", minutes=30, id="ny", next_run_time=now_here)
    assert later.next_run_time == now_here.replace(tzinfo=ZoneInfo("America/New_York"))


def test_a_future_next_run_time_starts_an_interval_there(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    at = clock.now() + timedelta(minutes=3)
    job = sched.add_job(noop, "interval", minutes=10, id="later", next_run_time=at)
    assert job.next_run_time == at
    with pytest.raises(ValidationError, match="start_date") as caught:
        sched.add_job(noop, "cron", hour=9, next_run_time=at)
    assert caught.value.field == "next_run_time"


def test_a_past_run_date_beyond_the_grace_is_refused(sched: BackgroundScheduler, clock: FakeClock) -> None:
    with pytest.raises(ValidationError, match=r"run_date: .* is in the past"):
        sched.add_job(noop, "date", run_date=clock.now() - timedelta(hours=1))


def test_a_job_past_its_end_date_is_returned_without_a_next_run_as_apscheduler(
    sched: BackgroundScheduler,
) -> None:
    job = sched.add_job(noop, "cron", hour=3, end_date="2020-01-01", id="old")
    assert (job.id, job.next_run_time) == ("old", None)
    assert sched.add_job(noop, "cron", hour=3, end_date="2020-01-01", id="old").next_run_time is None
    assert sched.get_jobs() == []


def test_unknown_job_store_is_refused(sched: BackgroundScheduler) -> None:
    with pytest.raises(ValidationError) as caught:
        sched.add_job(noop, "interval", minutes=1, jobstore="redis")
    assert caught.value.field == "jobstore"


# ---- changing ----------------------------------------------------------------------------------------------


def test_modify_job_changes_the_stored_job(sched: BackgroundScheduler, clock: FakeClock) -> None:
    sched.add_job(double, "interval", minutes=1, args=[1], id="job")
    job = sched.modify_job(
        "job", name="renamed", args=[5], max_instances=2, coalesce=False, misfire_grace_time=120, timeout=9
    )
    assert (job.name, job.args, job.max_instances, job.coalesce, job.misfire_grace_time) == (
        "renamed",
        (5,),
        2,
        False,
        120,
    )
    assert sched.core.get_job("job").spec.timeout == timedelta(seconds=9)
    step(sched, clock, timedelta(minutes=1))
    assert sched.core.runs(job_id="job")[0].result == {"value": 10}


def test_modify_job_can_swap_the_function_keeping_the_arguments(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    sched.add_job(double, "interval", minutes=1, args=[3], id="job")
    job = sched.modify_job("job", func=lambda value: value + 100)
    assert job.args == (3,)
    step(sched, clock, timedelta(minutes=1))
    assert sched.core.runs(job_id="job")[0].result == {"value": 103}


def test_modify_job_with_a_trigger_and_with_next_run_time(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    sched.add_job(noop, "interval", minutes=1, id="job")
    job = sched.modify_job("job", trigger=CronTrigger(minute=30))
    assert str(job.trigger) == "cron[minute='30']"
    assert job.next_run_time == datetime.fromisoformat("2026-03-02T08:30:00+00:00")
    assert sched.modify_job("job", next_run_time=None).next_run_time is None
    resumed = sched.modify_job("job", next_run_time=clock.now())  # resume and run now
    assert resumed.next_run_time is not None
    step(sched, clock, timedelta(seconds=1))
    assert statuses(sched, "job") == ["succeeded"]


def test_modify_job_refuses_what_cannot_change(sched: BackgroundScheduler) -> None:
    sched.add_job(noop, "interval", minutes=1, id="job")
    with pytest.raises(ValidationError, match="id: cannot be changed"):
        sched.modify_job("job", id="other")
    with pytest.raises(ValidationError, match="colour: is not a job option"):
        sched.modify_job("job", colour="red")
    with pytest.raises(ValidationError) as caught:
        sched.modify_job("job", kwargs={"x": object()})
    assert caught.value.field == "kwargs"


def test_unknown_ids_raise_job_lookup_error_as_apscheduler(sched: BackgroundScheduler) -> None:
    calls: list[Callable[[], object]] = [
        lambda: sched.modify_job("ghost", name="x"),
        lambda: sched.reschedule_job("ghost", trigger="interval", minutes=1),
        lambda: sched.pause_job("ghost"),
        lambda: sched.resume_job("ghost"),
        lambda: sched.remove_job("ghost"),
    ]
    for call in calls:
        with pytest.raises(JobLookupError) as caught:
            call()
        assert isinstance(caught.value, KeyError) and isinstance(caught.value, JobNotFoundError)
        assert str(caught.value) == "No job by the id of ghost was found"
    assert sched.get_job("ghost") is None


def test_reschedule_counts_from_now_and_resumes_a_paused_job(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    sched.add_job(noop, "cron", hour=3, id="job")
    sched.pause_job("job")
    clock.advance(timedelta(minutes=7))
    job = sched.reschedule_job("job", trigger="interval", minutes=15)
    assert str(job.trigger) == "interval[0:15:00]"
    assert job.next_run_time == clock.now() + timedelta(minutes=15)
    job = sched.reschedule_job("job", trigger="date", run_date="2026-03-05 10:00:00")
    assert str(job.trigger) == "date[2026-03-05 10:00:00 UTC]"


def test_pause_and_resume_a_job(sched: BackgroundScheduler, clock: FakeClock) -> None:
    sched.add_job(noop, "interval", minutes=1, id="tick")
    step(sched, clock, timedelta(minutes=2))
    assert sched.pause_job("tick").next_run_time is None
    step(sched, clock, timedelta(minutes=30))
    resumed = sched.resume_job("tick")
    assert resumed is not None and resumed.next_run_time == clock.now() + timedelta(minutes=1)
    step(sched, clock, timedelta(minutes=1))
    assert statuses(sched, "tick") == ["succeeded"] * 3  # resuming never bursts


def test_resuming_a_job_past_its_end_gives_none(sched: BackgroundScheduler, clock: FakeClock) -> None:
    sched.add_job(noop, "date", run_date=clock.now() + timedelta(minutes=5), id="once")
    sched.pause_job("once")
    clock.advance(timedelta(hours=1))
    assert sched.resume_job("once") is None
    assert sched.get_job("once") is None


def test_remove_job_and_remove_all_jobs(sched: BackgroundScheduler) -> None:
    sched.add_job(noop, "interval", minutes=1, id="a")
    sched.add_job(noop, "interval", minutes=1, id="b")
    sched.add_job(noop, "interval", minutes=1, id="c")
    sched.remove_job("a")
    assert [job.id for job in sched.get_jobs()] == ["b", "c"]
    sched.add_job(noop, "interval", minutes=1, id="a")  # removed: no conflict any more
    sched.remove_all_jobs()
    assert sched.get_jobs() == []


def test_remove_all_jobs_keeps_the_jobs_of_other_faces(sched: BackgroundScheduler) -> None:
    service = sched.core.service
    service.upsert_job(
        {"id": "from-toml", "call": "os.path:join", "args": ["a"], "every": "1h"}, origin="config"
    )
    service.add_job({"id": "from-cli", "call": "os:getcwd", "cron": "0 * * * *"}, origin="cli")
    service.add_job({"id": "cmd", "command": ["true"], "cron": "0 * * * *"}, origin="cli")
    sched.add_job(noop, "interval", minutes=1, id="mine")
    sched.remove_all_jobs()
    assert sorted(job.id for job in sched.core.jobs()) == ["cmd", "from-cli", "from-toml"]


def test_job_methods_act_and_refresh_the_object(sched: BackgroundScheduler, clock: FakeClock) -> None:
    job = sched.add_job(noop, "interval", minutes=1, id="job")
    assert job.pause() is job and job.next_run_time is None
    assert job.resume() is job and job.next_run_time == clock.now() + timedelta(minutes=1)
    assert job.modify(name="new name").name == "new name"
    assert str(job.reschedule("cron", hour=4).trigger) == "cron[hour='4']"
    job.remove()
    assert sched.get_job("job") is None
    other = sched.add_job(noop, "interval", minutes=1, id="job")
    assert other == job and hash(other) == hash(job)


# ---- reading -----------------------------------------------------------------------------------------------


def test_get_jobs_lists_soonest_first_and_paused_last(sched: BackgroundScheduler) -> None:
    sched.add_job(noop, "interval", hours=2, id="two-hours")
    sched.add_job(noop, "interval", minutes=5, id="five-minutes")
    sched.add_job(noop, "interval", minutes=1, id="paused", next_run_time=None)
    sched.add_job(noop, "cron", hour=9, id="nine")
    assert [job.id for job in sched.get_jobs()] == ["five-minutes", "nine", "two-hours", "paused"]
    assert sched.get_job("nine").name == "noop"  # type: ignore[union-attr]


def test_print_jobs_writes_apschedulers_listing(make: Factory) -> None:
    sched = make(BackgroundScheduler, timezone="Europe/Paris")
    out = io.StringIO()
    sched.print_jobs(out=out)
    assert out.getvalue() == "Jobstore default:\n    No scheduled jobs\n"
    sched.add_job(noop, "cron", hour=3, id="night", name="Nightly")
    sched.add_job(noop, IntervalTrigger(minutes=5), id="often", name="Often")
    sched.add_job(noop, DateTrigger("2026-04-01 12:00:00"), id="held", name="Held", next_run_time=None)
    out = io.StringIO()
    sched.print_jobs(out=out)
    assert out.getvalue() == (
        "Jobstore default:\n"
        "    Often (trigger: interval[0:05:00], next run at: 2026-03-02 09:05:00 CET)\n"
        "    Nightly (trigger: cron[hour='3'], next run at: 2026-03-03 03:00:00 CET)\n"
        "    Held (trigger: date[2026-04-01 12:00:00 CEST], paused)\n"
    )


def test_jobs_defined_through_other_faces_are_listed_as_stored(sched: BackgroundScheduler) -> None:
    sched.core.add_job("tests.jobs:metrics", id="from-config", cron="30 6 * * 1-5", timezone="Europe/Paris")
    sched.core.add_job(id="a-command", every="1h", command=["true"])
    jobs = sched.get_jobs()
    assert [job.id for job in jobs] == ["from-config"]  # a command is no APScheduler job
    assert str(jobs[0].trigger) == "cron[month='*', day='*', day_of_week='1-5', hour='6', minute='30']"
    assert jobs[0].next_run_time == datetime(2026, 3, 3, 6, 30, tzinfo=PARIS)


def test_a_one_off_job_disappears_after_its_run_but_its_history_stays(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    sched.add_job(noop, "date", run_date="2026-03-02 09:00:00", id="once")
    step(sched, clock, timedelta(hours=2))
    assert sched.get_job("once") is None
    assert [run.status for run in sched.core.runs(job_id="once")] == [RunStatus.SUCCEEDED]


# ---- partial ids, modify_job's trigger, job store aliases ------------------------------------------------


def test_partials_get_ids_from_their_function_and_arguments_not_their_order(make: Factory) -> None:
    first = make(BackgroundScheduler)
    five = first.add_job(functools.partial(greet, "ann"), "interval", minutes=1)
    six = first.add_job(functools.partial(greet, "bob", punctuation="?"), "interval", minutes=1)
    as_args = first.add_job(greet, "interval", minutes=1, args=["ann"])
    assert re.fullmatch(r"tests\.compat\.test_jobs\.greet-[0-9a-f]{8}", five.id)
    assert five.func_ref == f"{__name__}:greet.partial_{five.id[-8:]}"  # not greet's own: that lacks "ann"
    assert as_args.id == f"{five.id}-2"  # the same call as partial(greet, "ann"): the same id, counted
    assert isinstance(first.core, Scheduler)
    first.core.close()  # the program ends
    again = make(BackgroundScheduler)  # the next start, with the two jobs added in the other order
    assert again.add_job(functools.partial(greet, "bob", punctuation="?"), "interval", minutes=1).id == six.id
    assert again.add_job(functools.partial(greet, "ann"), "interval", minutes=1).id == five.id
    both = again.add_job(functools.partial(greet, "ann"), "interval", minutes=1, kwargs={"punctuation": "."})
    assert both.id.startswith(f"{five.id}-") and both.id != f"{five.id}-2"


def test_a_partial_runs_with_its_arguments(sched: BackgroundScheduler, clock: FakeClock) -> None:
    job = sched.add_job(functools.partial(greet, "ann"), "interval", minutes=1, kwargs={"punctuation": "?"})
    step(sched, clock, timedelta(minutes=1))
    assert statuses(sched, job.id) == ["succeeded"]
    assert job.func() == "hello ann!"  # the partial itself, as added
    assert sched.core.runs(job_id=job.id)[0].result == {"value": "hello ann?"}


def test_partials_whose_arguments_json_cannot_hold_keep_the_order_based_names(
    sched: BackgroundScheduler,
) -> None:
    first = sched.add_job(functools.partial(repr, object()), "interval", minutes=1)
    second = sched.add_job(functools.partial(repr, object()), "interval", minutes=1)
    assert (first.id, second.id) == ("functools.partial", "functools.partial_2")


def test_modify_job_refuses_a_trigger_alias_as_apscheduler(sched: BackgroundScheduler) -> None:
    job = sched.add_job(noop, "cron", hour=3, id="night")
    for value in ("cron", None):
        with pytest.raises(NotATriggerError, match="reschedule_job") as caught:
            sched.modify_job("night", trigger=value)
        assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValidationError)
        assert caught.value.field == "trigger"
    unchanged = sched.get_job("night")
    assert unchanged is not None
    assert (str(unchanged.trigger), unchanged.next_run_time) == ("cron[hour='3']", job.next_run_time)
    assert str(sched.modify_job("night", trigger=CronTrigger(hour=4)).trigger) == "cron[hour='4']"


def test_apscheduler_refuses_a_trigger_alias_in_modify_job_too() -> None:
    background = pytest.importorskip("apscheduler.schedulers.background")
    real = background.BackgroundScheduler(timezone="UTC")
    real.add_job(noop, "cron", hour=3, id="night")
    with pytest.raises(TypeError):
        real.modify_job("night", trigger="cron")


def test_an_unknown_job_store_is_refused_by_every_job_method(sched: BackgroundScheduler) -> None:
    job = sched.add_job(noop, "cron", hour=3, id="night")
    calls: list[Callable[[], object]] = [
        lambda: sched.add_job(noop, "interval", minutes=1, id="other", jobstore="redis"),
        lambda: sched.pause_job("night", jobstore="redis"),
        lambda: sched.resume_job("night", jobstore="redis"),
        lambda: sched.modify_job("night", jobstore="redis", name="renamed"),
        lambda: sched.reschedule_job("night", jobstore="redis", trigger="cron", hour=4),
        lambda: sched.get_job("night", jobstore="redis"),
        lambda: sched.get_jobs(jobstore="redis"),
        lambda: sched.remove_job("night", jobstore="redis"),
        lambda: sched.remove_all_jobs(jobstore="redis"),
    ]
    for call in calls:
        with pytest.raises(UnknownJobStoreError, match="No such job store: 'redis'") as caught:
            call()
        assert isinstance(caught.value, KeyError) and caught.value.field == "jobstore"
    assert sched.get_jobs() == [job]
    kept = sched.get_job("night", jobstore="default")
    assert kept is not None and (kept.name, kept.next_run_time) == ("noop", job.next_run_time)


def test_job_store_aliases_that_were_configured_are_accepted(make: Factory) -> None:
    with pytest.warns(UserWarning, match="jobstores are ignored"):
        sched = make(BackgroundScheduler, jobstores={"archive": {"type": "memory"}})
    sched.add_job(noop, "cron", hour=3, id="night", jobstore="archive")
    assert sched.pause_job("night", jobstore="archive").next_run_time is None
    assert sched.resume_job("night", jobstore="default") is not None
    assert [job.id for job in sched.get_jobs(jobstore="archive")] == ["night"]
    sched.remove_job("night", jobstore=None)
    assert sched.get_jobs() == []


def test_apscheduler_raises_key_error_for_an_unknown_job_store() -> None:
    background = pytest.importorskip("apscheduler.schedulers.background")
    real = background.BackgroundScheduler(timezone="UTC")
    real.start(paused=True)
    try:
        with pytest.raises(KeyError, match="No such job store"):
            real.add_job(noop, "cron", hour=3, jobstore="redis")
    finally:
        real.shutdown(wait=False)
