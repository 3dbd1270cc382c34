"""A fire is claimed up to half a second before it is due, so that it starts on the dot.  A change to its job
in that half second (from this process or another) must still count: the claimed run is checked against the
job as it is when the run is due."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from cronkeeper import FakeClock, RunStatus, Scheduler, SchedulerSettings
from cronkeeper.exceptions import StoreError
from cronkeeper.store.schema import runs
from cronkeeper.testing import sql_engine
from tests.conftest import SchedulerFactory

DUE = "2026-03-02T08:01:00+00:00"


@pytest.fixture
def claimed(make_scheduler: SchedulerFactory, clock: FakeClock) -> tuple[Scheduler, Scheduler]:
    """A job due at 08:01 whose fire the first scheduler has claimed ahead of time; the second one edits."""
    runner, editor = make_scheduler(), make_scheduler()
    runner.add_job("tests.jobs:metrics", id="job", every="1m", start="2026-03-02T08:00:00+00:00")
    clock.set(clock.now() + timedelta(seconds=59.7))
    assert runner.run_pending(wait=False) == 0  # claimed, held until it is due
    assert [run.status for run in runner.runs(job_id="job")] == [RunStatus.QUEUED]
    return runner, editor


def fire_when_due(runner: Scheduler, clock: FakeClock) -> int:
    clock.set(clock.now() + timedelta(seconds=0.3))
    return runner.run_pending()


def test_a_job_paused_just_before_its_fire_does_not_run_it(
    claimed: tuple[Scheduler, Scheduler], clock: FakeClock
) -> None:
    runner, editor = claimed
    editor.pause("job")
    fire_when_due(runner, clock)
    (run,) = runner.runs(job_id="job")
    assert run.status is RunStatus.SKIPPED
    assert run.error == "not started: the job was paused before the run was due"
    assert run.started_at is None


def test_a_job_rescheduled_just_before_its_fire_does_not_run_the_old_slot(
    claimed: tuple[Scheduler, Scheduler], clock: FakeClock
) -> None:
    runner, editor = claimed
    editor.reschedule("job", cron="30 8 * * *")
    assert fire_when_due(runner, clock) == 0
    assert runner.runs(job_id="job") == []  # the slot is no fire any more: no record of it at all
    next_fire = runner.get_job("job").next_fire_at
    assert next_fire is not None and next_fire.isoformat() == "2026-03-02T08:30:00+00:00"


def test_a_job_removed_just_before_its_fire_does_not_run(
    claimed: tuple[Scheduler, Scheduler], clock: FakeClock
) -> None:
    runner, editor = claimed
    editor.remove_job("job")
    assert fire_when_due(runner, clock) == 0
    assert runner.runs() == []


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda editor: editor.edit("job", kwargs={"items": 3}), id="its-arguments"),
        pytest.param(
            lambda editor: editor.edit("job", every="30s", start=DUE, kwargs={"items": 3}), id="still-a-fire"
        ),
    ],
)
def test_a_run_whose_slot_is_still_a_fire_runs_with_the_job_as_edited(
    claimed: tuple[Scheduler, Scheduler], clock: FakeClock, edit: Callable[[Scheduler], object]
) -> None:
    runner, editor = claimed
    edit(editor)
    assert fire_when_due(runner, clock) == 1
    (run,) = runner.runs(job_id="job")
    assert run.status is RunStatus.SUCCEEDED and run.scheduled_for.isoformat() == DUE
    assert run.result == {"items_processed": 3, "items_succeeded": 2, "items_failed": 1}


def test_a_run_handed_back_at_a_restart_runs_before_the_next_fire(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    first = make_scheduler()
    first.add_job("tests.jobs:metrics", id="job", every="1m", start="2026-03-02T08:00:00+00:00")
    clock.set(clock.now() + timedelta(seconds=59.7))
    first.run_pending(wait=False)  # 08:01 claimed ahead, held
    first.close()  # stopped before it was due: handed back, queued for whoever comes next
    clock.set(clock.now() + timedelta(seconds=59.9))  # 08:01:59.6: the 08:02 fire is in the look-ahead too
    second = make_scheduler()
    second.run_pending()
    runs = {run.scheduled_for.strftime("%H:%M"): run for run in second.runs(job_id="job")}
    assert runs["08:01"].status is RunStatus.SUCCEEDED, runs["08:01"].error


@pytest.mark.parametrize(
    ("interval", "slack"),
    [
        pytest.param(5.0, 1.0, id="a-second"),
        pytest.param(1.0, 0.5, id="half-a-short-interval"),  # within the lease of two intervals
    ],
)
def test_a_heartbeat_put_off_for_a_run_about_to_start_lets_the_loop_sleep(
    make_scheduler: SchedulerFactory, clock: FakeClock, interval: float, slack: float
) -> None:
    """The heartbeat falls due 50 ms before a run claimed ahead, so it waits for a quiet pass or its slack
    (a second, or half an interval if that is less).  Meanwhile the loop sleeps until the slack ends,
    instead of passing again at once, and again: the run is the starter's to start."""
    settings = SchedulerSettings(workers=1, heartbeat_interval=timedelta(seconds=interval))
    runner = make_scheduler(settings=settings)
    start = clock.now()
    runner.add_job(
        "tests.jobs:metrics", id="job", every="1m", start=start + timedelta(seconds=interval + 0.05)
    )
    runner.run_pending(wait=False)  # the first heartbeat: the next is due at +interval
    clock.set(start + timedelta(seconds=interval - 0.1))
    runner.run_pending(wait=False)  # the fire at +interval + 50 ms is claimed ahead
    clock.set(start + timedelta(seconds=interval))
    runner.run_pending(wait=False)  # the heartbeat is due, the run 50 ms away: the heartbeat is put off
    assert runner.loop is not None
    assert runner.loop._seconds_to_sleep(clock.now()) == pytest.approx(slack)


def claim_two(
    make_scheduler: SchedulerFactory, clock: FakeClock, b_after: timedelta
) -> tuple[Scheduler, Scheduler]:
    """Job ``a`` due at 08:01 and job ``b`` ``b_after`` later, both claimed ahead by the first scheduler,
    which then starts ``a`` (keeping the versions it read for 10 ms); the second scheduler edits."""
    runner, editor = make_scheduler(), make_scheduler()
    runner.add_job("tests.jobs:metrics", id="a", every="1m", start="2026-03-02T08:00:00+00:00")
    a_due = clock.now() + timedelta(minutes=1)
    runner.add_job("tests.jobs:metrics", id="b", every="1m", start=a_due + b_after)
    clock.set(a_due - timedelta(seconds=0.3))
    assert runner.run_pending(wait=False) == 0
    clock.set(a_due)
    assert runner.run_pending() == 1
    return runner, editor


def test_a_kept_read_of_versions_does_not_serve_a_run_taken_after_it_goes_stale(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """b, due 5 ms after a, is in the read made for a; another process pauses it (this process hears
    nothing of it on SQLite), and b is taken late, 12 ms after the read: the read is stale, b is checked
    again and skipped."""
    runner, editor = claim_two(make_scheduler, clock, timedelta(milliseconds=5))
    editor.pause("b")
    clock.set(clock.now() + timedelta(milliseconds=12))
    assert runner.run_pending() == 0
    (run,) = runner.runs(job_id="b")
    assert run.status is RunStatus.SKIPPED


def test_a_kept_read_serves_a_run_due_within_10_ms_of_it(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """The other side of the rule: a change another process makes within the 10 ms may come too late."""
    runner, editor = claim_two(make_scheduler, clock, timedelta(milliseconds=5))
    editor.pause("b")
    clock.set(clock.now() + timedelta(milliseconds=5))
    assert runner.run_pending() == 1


def test_an_edit_through_this_process_counts_at_once_even_within_a_kept_read(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    runner, _ = claim_two(make_scheduler, clock, timedelta(milliseconds=5))  # b is in a's read
    runner.pause("b")
    clock.set(clock.now() + timedelta(milliseconds=5))
    assert runner.run_pending() == 0
    (run,) = runner.runs(job_id="b")
    assert run.status is RunStatus.SKIPPED


def test_a_run_handed_back_whose_slot_is_no_fire_any_more_does_not_run(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """Claimed ahead, handed back at a stop, then its job is rescheduled: the next scheduler's claim
    records it skipped instead of running a fire the job no longer has."""
    first = make_scheduler()
    first.add_job("tests.jobs:metrics", id="job", every="1m", start="2026-03-02T08:00:00+00:00")
    clock.set(clock.now() + timedelta(seconds=59.7))
    first.run_pending(wait=False)  # 08:01 claimed ahead, held
    first.close()  # handed back
    second = make_scheduler()
    second.reschedule("job", cron="30 8 * * *")
    clock.set(clock.now() + timedelta(seconds=0.3))
    second.run_pending()
    (run,) = second.runs(job_id="job")
    assert run.status is RunStatus.SKIPPED
    assert run.error == "not started: the job's schedule changed and no longer fires then"


def test_a_claim_time_that_came_during_the_last_pass_is_claimed_at_once(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """b's claim time (08:00:59.8) passes while the loop is between its pass and its sleep: no claim has
    looked at b yet, so the loop claims now rather than take b for held back and sleep until it is due."""
    runner = make_scheduler()
    due = clock.now() + timedelta(minutes=1)
    runner.add_job("tests.jobs:metrics", id="a", at=due)
    runner.add_job("tests.jobs:metrics", id="b", at=due + timedelta(seconds=0.3))
    clock.set(due - timedelta(seconds=0.3))
    runner.run_pending(wait=False)  # a is claimed ahead; b's claim comes at 08:00:59.8
    clock.set(due - timedelta(seconds=0.15))
    assert runner.loop is not None
    assert runner.loop._seconds_to_sleep(clock.now()) == 0.0


@pytest.mark.parametrize(("jobs", "claimed_early"), [(10, False), (2000, True)])
def test_a_burst_too_big_to_claim_within_the_lookahead_is_claimed_earlier(
    make_scheduler: SchedulerFactory, clock: FakeClock, jobs: int, claimed_early: bool
) -> None:
    """Ten thousand jobs on one instant take most of a second to claim: claiming them a look-ahead before
    left half still being claimed when they were due.  The claims of a burst begin as long before it as
    claiming that many takes (here at the first claim's assumed pace, 150 µs a run, times 1.5: 0.45 s)."""
    settings = SchedulerSettings(workers=4, lookahead=timedelta(milliseconds=10), batch_size=100)
    runner = make_scheduler(settings=settings)
    runner.add_jobs({"id": f"job-{n}", "call": "tests.jobs:metrics", "at": DUE} for n in range(jobs))
    clock.set(datetime.fromisoformat(DUE) - timedelta(seconds=0.2))
    assert runner.run_pending(wait=False) == 0
    assert bool(count_runs(runner, RunStatus.QUEUED)) is claimed_early
    if claimed_early:
        # The lead is planned once for the instant: the claims go on, a batch a pass, until all are held
        # (counted again as they went, the fires left asked for less and less, and the claims stopped).
        for _ in range(jobs // settings.batch_size):
            runner.run_pending(wait=False)
        assert count_runs(runner, RunStatus.QUEUED) == jobs
    clock.set(datetime.fromisoformat(DUE))
    for _ in range(jobs // settings.batch_size + 1):  # a batch a pass
        runner.run_pending()
    assert count_runs(runner, RunStatus.SUCCEEDED) == jobs


def count_runs(scheduler: Scheduler, status: RunStatus) -> int:
    with sql_engine(scheduler).connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(runs).where(runs.c.status == status.value)
            ).scalar_one()
        )


def test_a_count_of_due_fires_the_database_fails_keeps_the_look_ahead(
    make_scheduler: SchedulerFactory, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting a burst is best effort: a failed count costs the pass nothing (its own reads and writes
    tell of an outage); the fire is claimed a look-ahead before, as without the count."""
    runner = make_scheduler()
    runner.add_job("tests.jobs:metrics", id="job", at=DUE)

    def away(**_: object) -> int:
        raise StoreError("database read failed: connection refused")

    monkeypatch.setattr(runner.store, "count_due", away)
    clock.set(datetime.fromisoformat(DUE) - timedelta(seconds=2))
    assert runner.run_pending(wait=False) == 0
    assert count_runs(runner, RunStatus.QUEUED) == 0
    clock.set(datetime.fromisoformat(DUE) - timedelta(seconds=0.3))
    runner.run_pending(wait=False)
    assert count_runs(runner, RunStatus.QUEUED) == 1
    clock.set(datetime.fromisoformat(DUE))
    assert runner.run_pending() == 1
