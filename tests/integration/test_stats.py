"""Figures and history by time window through the library: what a scheduler's runs add up to, and bad windows
refused with the field named, changing nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronkeeper import FakeClock, JobNotFoundError, RunStatus, Scheduler, ValidationError
from cronkeeper.testing import advance
from tests.conftest import SchedulerFactory

HOUR = timedelta(hours=1)


@pytest.fixture
def busy(make_scheduler: SchedulerFactory, clock: FakeClock) -> Scheduler:
    """Two hourly jobs fired five times from START (at +1 h … +5 h): "ok" always succeeds, "boom" always
    fails; "idle" has never fired."""
    scheduler = make_scheduler()
    scheduler.add_job("tests.jobs:metrics", id="ok", every="1h")
    scheduler.add_job("tests.jobs:boom", id="boom", every="1h")
    scheduler.add_job("tests.jobs:metrics", id="idle", cron="0 0 1 1 *")
    advance(scheduler, clock, 5 * HOUR)
    return scheduler


def test_stats_of_every_job_count_their_runs_and_name_the_last_success_and_failure(
    busy: Scheduler, clock: FakeClock
) -> None:
    found = busy.stats()
    assert list(found) == ["boom", "idle", "ok"]
    ok, boom, idle = found["ok"], found["boom"], found["idle"]
    assert (ok.total, ok.succeeded, ok.failures, ok.success_rate) == (5, 5, 0, 1.0)
    assert (boom.total, boom.succeeded, boom.failures, boom.success_rate) == (5, 0, 5, 0.0)
    assert (idle.total, idle.success_rate, idle.median_seconds) == (0, None, None)
    newest_ok = busy.runs(job_id="ok", limit=1)[0]
    assert ok.last_success is not None and ok.last_success.run_id == newest_ok.id
    assert ok.last_failure is None
    assert boom.last_failure is not None and "boom" in (boom.last_failure.error or "")
    assert ok.median_seconds is not None and ok.max_seconds is not None


def test_stats_over_a_window_count_the_runs_scheduled_for_it(busy: Scheduler, clock: FakeClock) -> None:
    start = clock.now() - 5 * HOUR
    found = busy.stats(["ok", "idle"], since=start + HOUR, until=start + 3 * HOUR)
    assert list(found) == ["ok", "idle"]
    assert found["ok"].runs[RunStatus.SUCCEEDED.value] == 2
    assert (found["ok"].since, found["ok"].until) == (start + HOUR, start + 3 * HOUR)
    assert busy.stats("ok", since=start + 5 * HOUR)["ok"].total == 1


def test_a_window_given_in_another_zone_means_the_same_instants(busy: Scheduler, clock: FakeClock) -> None:
    start = clock.now() - 5 * HOUR
    paris = ZoneInfo("Europe/Paris")
    local = busy.stats(
        "ok", since=(start + HOUR).astimezone(paris), until=(start + 3 * HOUR).astimezone(paris)
    )
    assert local["ok"].runs == busy.stats("ok", since=start + HOUR, until=start + 3 * HOUR)["ok"].runs


def test_history_is_filtered_by_window_and_source(busy: Scheduler, clock: FakeClock) -> None:
    start = clock.now() - 5 * HOUR
    manual = busy.trigger("ok")
    window = busy.runs(job_id="ok", since=start + 2 * HOUR, until=start + 4 * HOUR)
    assert [run.scheduled_for for run in window] == [start + 3 * HOUR, start + 2 * HOUR]
    assert [run.id for run in busy.runs(sources="manual")] == [manual]
    assert [run.id for run in busy.runs(sources=["manual"], since=clock.now())] == [manual]


@pytest.mark.parametrize(
    ("window", "field"),
    [
        ({"since": datetime.fromisoformat("2026-03-02T08:00")}, "since"),
        ({"until": datetime.fromisoformat("2026-03-02T08:00")}, "until"),
        ({"since": "2026-03-02T08:00:00+00:00"}, "since"),
        (
            {
                "since": datetime.fromisoformat("2026-03-02T09:00+00:00"),
                "until": datetime.fromisoformat("2026-03-02T08:00+00:00"),
            },
            "until",
        ),
        ({"since": datetime.max.replace(tzinfo=ZoneInfo("America/New_York"))}, "since"),
    ],
)
def test_bad_windows_are_refused_naming_the_field(
    busy: Scheduler, window: dict[str, Any], field: str
) -> None:
    for call in (busy.stats, busy.runs):
        with pytest.raises(ValidationError) as caught:
            call(**window)
        assert caught.value.field == field


def test_stats_of_a_job_that_does_not_exist_is_an_error_not_zeros(busy: Scheduler) -> None:
    with pytest.raises(JobNotFoundError):
        busy.stats(["ok", "ghost"])
    with pytest.raises(ValidationError) as caught:
        busy.stats([1, 2])  # type: ignore[list-item]
    assert caught.value.field == "job_id"
