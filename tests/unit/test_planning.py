"""What a due job does: misfire grace, catch-up, overlap and jitter, as a pure function of the time."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronkeeper.cron import CronExpression
from cronkeeper.models import (
    CATCHUP_ALL_CAP,
    Catchup,
    CommandTarget,
    JobSpec,
    Overlap,
    RunStatus,
    TriggerSource,
)
from cronkeeper.planning import ENUMERATION_LIMIT, FirePlan, PlannedRun, free_slots, next_due, plan_fires
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def cron(expression: str, zone: str = "UTC") -> CronTrigger:
    return CronTrigger(CronExpression(expression), ZoneInfo(zone))


def spec(trigger: Trigger | None = None, **policies: object) -> JobSpec:
    """An hourly job with the default policies, or ``trigger`` and ``policies`` instead."""
    base = JobSpec(id="job", target=CommandTarget(("true",)), trigger=trigger or cron("0 * * * *"))
    return replace(base, **policies)  # type: ignore[arg-type]


def queued(plan: FirePlan) -> list[PlannedRun]:
    return [run for run in plan.runs if run.status is RunStatus.QUEUED]


def missed(plan: FirePlan) -> list[PlannedRun]:
    return [run for run in plan.runs if run.status is RunStatus.MISSED]


def isos(runs: list[PlannedRun]) -> list[str]:
    return [run.scheduled_for.isoformat() for run in runs]


# on time, and a short stall within the grace


@pytest.mark.parametrize(
    "now",
    ["2026-03-02T10:00:00+00:00", "2026-03-02T10:00:05+00:00", "2026-03-02T10:01:00+00:00"],
)
def test_fires_once_on_time(now: str) -> None:
    plan = plan_fires(spec(), at("2026-03-02T10:00:00+00:00"), at(now), active=0)
    assert plan == FirePlan(
        runs=[PlannedRun(at("2026-03-02T10:00:00+00:00"), TriggerSource.SCHEDULE)],
        next_fire_at=at("2026-03-02T11:00:00+00:00"),
        next_due_at=at("2026-03-02T11:00:00+00:00"),
        replace_active=False,
    )


def test_fire_just_past_the_grace_is_a_catchup_not_a_schedule_run() -> None:
    plan = plan_fires(spec(), at("2026-03-02T10:00:00+00:00"), at("2026-03-02T10:01:00.000001+00:00"), 0)
    assert plan.runs == [PlannedRun(at("2026-03-02T10:00:00+00:00"), TriggerSource.CATCHUP)]


def test_fires_within_grace_coalesce_to_the_newest_plus_one_missed_record() -> None:
    every_10s = IntervalTrigger(timedelta(seconds=10), at("2026-03-02T10:00:00+00:00"))
    plan = plan_fires(spec(every_10s), at("2026-03-02T10:00:00+00:00"), at("2026-03-02T10:00:35+00:00"), 0)
    assert isos(queued(plan)) == ["2026-03-02T10:00:30+00:00"]
    assert queued(plan)[0].trigger_source is TriggerSource.SCHEDULE
    [record] = missed(plan)
    assert record.scheduled_for == at("2026-03-02T10:00:00+00:00")
    assert record.result == {
        "missed": 3,
        "complete": True,
        "first": "2026-03-02T10:00:00+00:00",
        "last": "2026-03-02T10:00:20+00:00",
    }
    assert record.error is not None
    assert "missed 3 fire(s)" in record.error
    assert plan.next_fire_at == at("2026-03-02T10:00:40+00:00")


# catch-up after the grace


HOURLY_OUTAGE_FIRST = "2026-03-02T07:00:00+00:00"
HOURLY_OUTAGE_NOW = "2026-03-02T10:30:00+00:00"  # 07:00, 08:00, 09:00 and 10:00 are all late


def summary(missed_count: int, first: str, last: str) -> dict[str, object]:
    return {"missed": missed_count, "complete": True, "first": first, "last": last}


@pytest.mark.parametrize(
    ("catchup", "runs", "missed_summaries"),
    [
        (
            Catchup.ONCE,
            ["2026-03-02T10:00:00+00:00"],
            [summary(3, "2026-03-02T07:00:00+00:00", "2026-03-02T09:00:00+00:00")],
        ),
        (
            Catchup.SKIP,
            [],
            [summary(4, "2026-03-02T07:00:00+00:00", "2026-03-02T10:00:00+00:00")],
        ),
        (
            Catchup.ALL,
            [
                "2026-03-02T07:00:00+00:00",
                "2026-03-02T08:00:00+00:00",
                "2026-03-02T09:00:00+00:00",
                "2026-03-02T10:00:00+00:00",
            ],
            [],
        ),
    ],
)
def test_catchup_policy_decides_what_runs_after_an_outage(
    catchup: Catchup, runs: list[str], missed_summaries: list[dict[str, object]]
) -> None:
    job = spec(catchup=catchup, max_instances=10)
    plan = plan_fires(job, at(HOURLY_OUTAGE_FIRST), at(HOURLY_OUTAGE_NOW), active=0)
    assert isos(queued(plan)) == runs
    assert {run.trigger_source for run in queued(plan)} <= {TriggerSource.CATCHUP}
    assert [record.result for record in missed(plan)] == missed_summaries
    assert plan.next_fire_at == at("2026-03-02T11:00:00+00:00")


def test_catchup_once_leaves_one_run_and_one_missed_record_not_a_burst() -> None:
    plan = plan_fires(spec(), at(HOURLY_OUTAGE_FIRST), at(HOURLY_OUTAGE_NOW), active=0)
    assert [run.status for run in plan.runs] == [RunStatus.MISSED, RunStatus.QUEUED]


def test_catchup_all_is_capped_at_the_newest_hundred() -> None:
    minutely = spec(cron("* * * * *"), catchup=Catchup.ALL, max_instances=1000)
    # 151 fires, 10:00 to 12:30; only the last, 30 s ago, is within the grace.
    plan = plan_fires(minutely, at("2026-03-02T10:00:00+00:00"), at("2026-03-02T12:30:30+00:00"), 0)
    runs = queued(plan)
    assert len(runs) == CATCHUP_ALL_CAP == 100
    assert runs[0].scheduled_for == at("2026-03-02T10:51:00+00:00")
    assert runs[-1] == PlannedRun(at("2026-03-02T12:30:00+00:00"), TriggerSource.SCHEDULE)
    assert {run.trigger_source for run in runs[:-1]} == {TriggerSource.CATCHUP}
    [record] = missed(plan)
    assert record.result == {
        "missed": 51,
        "complete": True,
        "first": "2026-03-02T10:00:00+00:00",
        "last": "2026-03-02T10:50:00+00:00",
    }


# a long outage: more fires than are worth listing

MONTH_FIRST = "2026-03-01T00:00:00+00:00"
MONTH_NOW = "2026-03-31T00:00:30+00:00"  # 30 days of a minutely job; the 00:00 fire is 30 s old


@pytest.mark.parametrize("catchup", [Catchup.ONCE, Catchup.SKIP, Catchup.ALL])
def test_long_outage_is_summarised_in_one_missed_record(catchup: Catchup) -> None:
    minutely = spec(cron("* * * * *"), catchup=catchup, max_instances=1000)
    plan = plan_fires(minutely, at(MONTH_FIRST), at(MONTH_NOW), active=0)
    [record] = missed(plan)
    assert plan.runs[0] is record
    assert record.scheduled_for == at(MONTH_FIRST)
    assert record.result is not None
    assert record.result["complete"] is False
    assert record.result["first"] == MONTH_FIRST
    assert isinstance(record.result["missed"], int)
    assert record.result["missed"] >= ENUMERATION_LIMIT - CATCHUP_ALL_CAP
    assert record.error is not None
    assert "at least" in record.error
    assert plan.next_fire_at == at("2026-03-31T00:01:00+00:00")


@pytest.mark.parametrize("catchup", [Catchup.ONCE, Catchup.SKIP])
def test_long_outage_still_runs_the_fire_that_is_on_time(catchup: Catchup) -> None:
    minutely = spec(cron("* * * * *"), catchup=catchup)
    plan = plan_fires(minutely, at(MONTH_FIRST), at(MONTH_NOW), active=0)
    assert queued(plan) == [PlannedRun(at("2026-03-31T00:00:00+00:00"), TriggerSource.SCHEDULE)]
    record = missed(plan)[0]
    assert record.result is not None
    assert record.result["last"] == "2026-03-30T23:59:00+00:00"


def test_long_outage_catches_up_the_newest_fire_once() -> None:
    every_10_minutes = spec(cron("*/10 * * * *"))
    plan = plan_fires(every_10_minutes, at(MONTH_FIRST), at("2026-03-31T00:05:30+00:00"), active=0)
    assert queued(plan) == [PlannedRun(at("2026-03-31T00:00:00+00:00"), TriggerSource.CATCHUP)]


def test_long_outage_catches_up_all_the_newest_hundred() -> None:
    minutely = spec(cron("* * * * *"), catchup=Catchup.ALL, max_instances=1000)
    plan = plan_fires(minutely, at(MONTH_FIRST), at(MONTH_NOW), active=0)
    runs = queued(plan)
    assert len(runs) == CATCHUP_ALL_CAP
    assert runs[0].scheduled_for == at("2026-03-30T22:21:00+00:00")
    assert runs[-1] == PlannedRun(at("2026-03-31T00:00:00+00:00"), TriggerSource.SCHEDULE)


def test_long_outage_of_a_weekday_schedule_finds_its_newest_fires() -> None:
    # Fires unevenly spread (office hours on weekdays) and a year away.
    office = spec(cron("*/5 9-17 * * 1-5", "Europe/Paris"), catchup=Catchup.ALL, max_instances=1000)
    plan = plan_fires(office, at("2025-03-03T08:00:00+00:00"), at("2026-03-02T08:00:30+00:00"), 0)
    runs = queued(plan)
    assert len(runs) == CATCHUP_ALL_CAP
    # Monday 2026-03-02 09:00 Paris = 08:00Z is on time; the 99 before it were last Friday's.
    assert runs[-1] == PlannedRun(at("2026-03-02T08:00:00+00:00"), TriggerSource.SCHEDULE)
    assert runs[-2].scheduled_for == at("2026-02-27T16:55:00+00:00")
    assert [run.status for run in plan.runs].count(RunStatus.MISSED) == 1


# overlap


@pytest.mark.parametrize(
    ("overlap", "max_instances", "active", "status", "replace_active"),
    [
        (Overlap.ALLOW, 1, 0, RunStatus.QUEUED, False),
        (Overlap.ALLOW, 1, 1, RunStatus.SKIPPED, False),
        (Overlap.ALLOW, 3, 2, RunStatus.QUEUED, False),
        (Overlap.ALLOW, 3, 3, RunStatus.SKIPPED, False),
        (Overlap.FORBID, 1, 0, RunStatus.QUEUED, False),
        (Overlap.FORBID, 1, 1, RunStatus.SKIPPED, False),
        (Overlap.FORBID, 5, 1, RunStatus.SKIPPED, False),  # forbid ignores max_instances
        (Overlap.REPLACE, 1, 0, RunStatus.QUEUED, False),
        (Overlap.REPLACE, 1, 1, RunStatus.QUEUED, True),
        (Overlap.REPLACE, 1, 2, RunStatus.QUEUED, True),
    ],
)
def test_overlap_policy_decides_whether_the_fire_starts(
    overlap: Overlap, max_instances: int, active: int, status: RunStatus, replace_active: bool
) -> None:
    job = spec(overlap=overlap, max_instances=max_instances)
    plan = plan_fires(job, at("2026-03-02T10:00:00+00:00"), at("2026-03-02T10:00:01+00:00"), active)
    [run] = plan.runs
    assert run.scheduled_for == at("2026-03-02T10:00:00+00:00")
    assert run.status is status
    assert plan.replace_active is replace_active
    assert plan.next_fire_at == at("2026-03-02T11:00:00+00:00")


def test_skipped_run_says_why() -> None:
    job = spec(overlap=Overlap.FORBID)
    plan = plan_fires(job, at("2026-03-02T10:00:00+00:00"), at("2026-03-02T10:00:01+00:00"), active=1)
    assert (
        plan.runs[0].error
        == "not started: 1 run(s) of this job still active (overlap=forbid, max_instances=1)"
    )


def test_catchup_all_fills_free_slots_and_queues_the_rest_to_run_in_turn() -> None:
    job = spec(catchup=Catchup.ALL, max_instances=3)
    plan = plan_fires(job, at(HOURLY_OUTAGE_FIRST), at(HOURLY_OUTAGE_NOW), active=1)
    assert [run.status for run in plan.runs] == [RunStatus.QUEUED] * 4
    assert [run.waits for run in plan.runs] == [False, False, True, True]


def test_catchup_all_with_one_run_at_a_time_runs_every_fire_one_after_another() -> None:
    job = spec(catchup=Catchup.ALL)  # overlap forbid, max_instances 1
    plan = plan_fires(job, at("2026-03-02T07:00:00+00:00"), at("2026-03-02T10:00:30+00:00"), active=0)
    assert [(run.scheduled_for.hour, run.waits, run.trigger_source) for run in plan.runs] == [
        (7, False, TriggerSource.CATCHUP),
        (8, True, TriggerSource.CATCHUP),
        (9, True, TriggerSource.CATCHUP),
        (10, True, TriggerSource.CATCHUP),  # on time, but it waits its turn behind the catch-up: late too
    ]
    assert missed(plan) == []


def test_catchup_all_after_a_long_outage_summarises_it_to_its_true_last_fire() -> None:
    minutely = spec(cron("* * * * *"), catchup=Catchup.ALL)
    plan = plan_fires(minutely, at("2026-06-01T10:01:00+00:00"), at("2026-06-04T10:00:30+00:00"), active=0)
    [record] = missed(plan)
    runs = queued(plan)
    assert len(runs) == CATCHUP_ALL_CAP and runs[-1].scheduled_for == at("2026-06-04T10:00:00+00:00")
    assert record.result is not None
    assert record.result["first"] == "2026-06-01T10:01:00+00:00"
    assert record.result["last"] == "2026-06-04T08:20:00+00:00"  # just before the hundred run now
    assert record.result["complete"] is False and record.error is not None
    assert "at least" in record.error and "to 2026-06-04T08:20:00+00:00" in record.error


def test_an_interval_jobs_long_outage_is_counted_exactly() -> None:
    every_minute = spec(IntervalTrigger(timedelta(minutes=1), at("2026-06-01T10:01:00+00:00")))
    plan = plan_fires(every_minute, at("2026-06-01T10:01:00+00:00"), at("2026-06-04T10:00:30+00:00"), 0)
    [record] = missed(plan)
    assert record.result is not None
    assert (record.result["missed"], record.result["complete"]) == (3 * 24 * 60 - 1, True)
    assert record.result["last"] == "2026-06-04T09:59:00+00:00"
    assert record.error is not None and "missed 4319 fire(s)" in record.error


def test_replace_does_not_cancel_anything_when_nothing_would_start() -> None:
    job = spec(overlap=Overlap.REPLACE, catchup=Catchup.SKIP)
    plan = plan_fires(job, at(HOURLY_OUTAGE_FIRST), at(HOURLY_OUTAGE_NOW), active=1)
    assert queued(plan) == []
    assert plan.replace_active is False


@pytest.mark.parametrize(
    ("overlap", "max_instances", "active", "slots"),
    [
        (Overlap.ALLOW, 1, 0, 1),
        (Overlap.ALLOW, 4, 1, 3),
        (Overlap.ALLOW, 2, 5, 0),
        (Overlap.FORBID, 4, 0, 1),
        (Overlap.FORBID, 4, 1, 0),
        (Overlap.REPLACE, 1, 3, 1),
    ],
)
def test_free_slots_follow_the_overlap_policy(
    overlap: Overlap, max_instances: int, active: int, slots: int
) -> None:
    assert free_slots(spec(overlap=overlap, max_instances=max_instances), active) == slots


# where the schedule goes next


@pytest.mark.parametrize(
    ("first", "now", "next_fire"),
    [
        ("2026-03-02T10:00:00+00:00", "2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00"),
        ("2026-03-02T10:00:00+00:00", "2026-03-02T10:59:59.999999+00:00", "2026-03-02T11:00:00+00:00"),
        ("2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00", "2026-03-02T12:00:00+00:00"),
        ("2026-03-02T10:00:00+00:00", "2026-03-05T17:45:00+00:00", "2026-03-05T18:00:00+00:00"),
    ],
)
def test_next_fire_is_strictly_after_now(first: str, now: str, next_fire: str) -> None:
    for catchup in Catchup:
        plan = plan_fires(spec(catchup=catchup), at(first), at(now), active=0)
        assert plan.next_fire_at == at(next_fire)
        assert plan.next_due_at == at(next_fire)


def test_date_job_has_no_next_fire_after_it_fired() -> None:
    once = spec(DateTrigger(at("2026-03-02T10:00:00+00:00")))
    plan = plan_fires(once, at("2026-03-02T10:00:00+00:00"), at("2026-03-02T10:00:02+00:00"), active=0)
    assert isos(queued(plan)) == ["2026-03-02T10:00:00+00:00"]
    assert plan.next_fire_at is None
    assert plan.next_due_at is None


def test_next_fire_follows_the_cron_zone_across_dst() -> None:
    # 02:30 Paris on the spring-forward day runs once at 03:00 CEST; the day after it is 02:30 CEST again.
    paris = spec(cron("30 2 * * *", "Europe/Paris"))
    plan = plan_fires(paris, at("2026-03-29T01:00:00+00:00"), at("2026-03-29T01:00:10+00:00"), active=0)
    assert isos(queued(plan)) == ["2026-03-29T01:00:00+00:00"]
    assert plan.next_fire_at == at("2026-03-30T00:30:00+00:00")


# jitter


@pytest.mark.parametrize("seed", range(50))
def test_jitter_delays_the_run_within_its_bound_but_not_the_fire(seed: int) -> None:
    job = spec(jitter=timedelta(seconds=30))
    fire, run = next_due(job, at("2026-03-02T10:00:00+00:00"), random.Random(seed))
    assert fire == at("2026-03-02T11:00:00+00:00")
    assert run is not None
    assert fire <= run <= fire + timedelta(seconds=30)


def test_jitter_is_reproducible_with_a_seeded_random() -> None:
    job = spec(jitter=timedelta(minutes=5))
    after = at("2026-03-02T10:00:00+00:00")
    runs = {next_due(job, after, random.Random(7))[1] for _ in range(3)}
    assert len(runs) == 1
    spread = {next_due(job, after, random.Random(seed))[1] for seed in range(20)}
    assert len(spread) > 1


def test_plan_puts_the_next_run_after_the_next_fire_by_the_jitter() -> None:
    job = spec(jitter=timedelta(seconds=30))
    plan = plan_fires(
        job, at("2026-03-02T10:00:00+00:00"), at("2026-03-02T10:00:10+00:00"), 0, random.Random(3)
    )
    assert plan.runs == [PlannedRun(at("2026-03-02T10:00:00+00:00"), TriggerSource.SCHEDULE)]
    assert plan.next_fire_at == at("2026-03-02T11:00:00+00:00")
    assert plan.next_due_at is not None
    assert plan.next_fire_at <= plan.next_due_at <= plan.next_fire_at + timedelta(seconds=30)


def test_without_jitter_the_run_is_due_at_the_fire() -> None:
    assert next_due(spec(), at("2026-03-02T10:00:00+00:00"), random.Random(1)) == (
        at("2026-03-02T11:00:00+00:00"),
        at("2026-03-02T11:00:00+00:00"),
    )


def test_finished_schedule_has_nothing_due() -> None:
    once = spec(DateTrigger(at("2026-03-02T10:00:00+00:00")), jitter=timedelta(seconds=30))
    assert next_due(once, at("2026-03-02T10:00:00+00:00"), random.Random(1)) == (None, None)


def test_all_instants_are_aware_utc() -> None:
    plan = plan_fires(spec(), at(HOURLY_OUTAGE_FIRST), at(HOURLY_OUTAGE_NOW), active=0)
    instants = [run.scheduled_for for run in plan.runs] + [plan.next_fire_at, plan.next_due_at]
    assert all(instant is not None and instant.tzinfo is UTC for instant in instants)
