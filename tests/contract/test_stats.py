"""The StatsView contract and history by time window, on SQLite and PostgreSQL alike: the same runs give the
same figures, to the last bit, on both."""

from __future__ import annotations

import random
import statistics
from datetime import datetime, timedelta

import pytest

from cronkeeper.models import RunOutcome, RunStatus
from cronkeeper.store.base import Completion, RunFilter
from cronkeeper.store.records import RunMark
from cronkeeper.store.sql import SqlJobStore
from cronkeeper.store.stats import SqlStatsView
from tests.contract.test_store import NOW, add, claim

MINUTE = timedelta(minutes=1)


@pytest.fixture
def view(store: SqlJobStore) -> SqlStatsView:
    return SqlStatsView(store.engine)


def run_minutes(
    store: SqlJobStore, job_id: str, outcomes: list[tuple[RunStatus, float, str | None]]
) -> list[int]:
    """One run of ``job_id`` (every minute from NOW) per outcome: (status, seconds it took, error)."""
    ids = []
    for minute, (status, seconds, error) in enumerate(outcomes):
        at = NOW + minute * MINUTE
        for run_id in claim(store, now=at):
            if store.get_run(run_id).job_id != job_id:
                continue
            started = at + timedelta(milliseconds=250)
            done = Completion(
                run_id, status, started, started + timedelta(seconds=seconds), RunOutcome(error=error)
            )
            assert store.record_finished([done], owner="node-a", now=at) == [run_id]
            ids.append(run_id)
    return ids


OK = RunStatus.SUCCEEDED
# Minutes 0 and 13 fall outside the window [NOW + 1 min, NOW + 13 min) of the tests below.
OUTCOMES = [
    (OK, 100.0, None),
    (OK, 1.5, None),
    (OK, 0.25, None),
    (OK, 3.000001, None),
    (OK, 2.0, None),
    (RunStatus.FAILED, 10.0, "disk full"),
    (OK, 4.75, None),
    (OK, 6.0, None),
    (OK, 0.5, None),
    (RunStatus.TIMED_OUT, 8.0, "timed out after 8s"),
    (OK, 7.0, None),
    (RunStatus.LOST, 50.0, "lost: the node died"),
    (RunStatus.CANCELLED, 40.0, "cancelled on request"),
    (OK, 0.001, None),
]


def test_stats_give_counts_rate_median_p95_and_max_over_the_window(
    store: SqlJobStore, view: SqlStatsView
) -> None:
    add(store, "a")
    ids = run_minutes(store, "a", OUTCOMES)
    since, until = NOW + MINUTE, NOW + 13 * MINUTE
    stats = view.job_stats(["a"], since=since, until=until)["a"]
    assert stats.runs == {
        "queued": 0,
        "running": 0,
        "succeeded": 8,
        "failed": 1,
        "timed_out": 1,
        "cancelled": 1,
        "lost": 1,
        "missed": 0,
        "skipped": 0,
    }
    assert (stats.total, stats.finished, stats.succeeded, stats.failures) == (12, 12, 8, 3)
    assert stats.success_rate == 8 / 11
    # Timed durations, sorted: 0.25 0.5 1.5 2 3.000001 | 4.75 6 7 8 10 (lost and cancelled runs left out).
    assert stats.median_seconds == 3.8750005
    assert stats.p95_seconds == 9.1
    assert stats.max_seconds == 10.0
    assert stats.last_success == RunMark(ids[10], NOW + 10 * MINUTE + timedelta(seconds=7.25))
    assert stats.last_failure == RunMark(
        ids[11], NOW + 11 * MINUTE + timedelta(seconds=50.25), "lost: the node died"
    )
    assert (stats.since, stats.until) == (since, until)


def test_the_window_is_half_open_on_the_instant_runs_are_for(store: SqlJobStore, view: SqlStatsView) -> None:
    add(store, "a")
    run_minutes(store, "a", [(OK, 1.0, None)] * 4)
    counts = {
        (since, until): view.job_stats(["a"], since=NOW + since * MINUTE, until=NOW + until * MINUTE)[
            "a"
        ].total
        for since, until in [(0, 4), (1, 3), (1, 1), (3, 10)]
    }
    assert counts == {(0, 4): 4, (1, 3): 2, (1, 1): 0, (3, 10): 1}
    assert view.job_stats(["a"], since=None, until=NOW + MINUTE)["a"].total == 1
    assert view.job_stats(["a"], since=NOW + 2 * MINUTE, until=None)["a"].total == 2


def test_jobs_without_runs_in_the_window_have_zeros_and_unknown_ids_are_left_out(
    store: SqlJobStore, view: SqlStatsView
) -> None:
    add(store, "busy")
    add(store, "idle", due=NOW + timedelta(days=1))
    run_minutes(store, "busy", [(RunStatus.FAILED, 2.0, "x" * 500)])
    found = view.job_stats(None, since=NOW, until=NOW + timedelta(hours=1))
    assert list(found) == ["busy", "idle"]
    idle = found["idle"]
    assert idle.runs == {status.value: 0 for status in RunStatus}
    assert (idle.total, idle.success_rate, idle.median_seconds, idle.p95_seconds, idle.max_seconds) == (
        0,
        None,
        None,
        None,
        None,
    )
    assert (idle.last_success, idle.last_failure) == (None, None)
    busy = found["busy"]
    assert (busy.success_rate, busy.median_seconds, busy.p95_seconds) == (0.0, 2.0, 2.0)
    assert busy.last_failure is not None and busy.last_failure.error == "x" * 200
    assert list(view.job_stats(["idle", "ghost", "busy"], since=None, until=None)) == ["busy", "idle"]
    assert view.job_stats([], since=None, until=None) == {}


def test_percentiles_interpolate_between_closest_ranks_to_the_microsecond(
    store: SqlJobStore, view: SqlStatsView
) -> None:
    rng = random.Random(9)
    durations = [round(rng.uniform(0, 30), 6) for _ in range(37)]
    add(store, "a")
    run_minutes(store, "a", [(OK, seconds, None) for seconds in durations])
    stats = view.job_stats(["a"], since=None, until=None)["a"]
    assert stats.median_seconds == statistics.median(durations)
    assert stats.p95_seconds == pytest.approx(statistics.quantiles(durations, n=20, method="inclusive")[-1])
    assert stats.max_seconds == max(durations)


def test_history_is_filtered_by_the_instant_runs_are_for(store: SqlJobStore) -> None:
    add(store, "a")
    add(store, "b")
    run_minutes(store, "a", [(OK, 1.0, None)] * 5)

    def fires(since: datetime | None = None, until: datetime | None = None) -> list[datetime]:
        found = store.list_runs(RunFilter(job_id="a", limit=100, since=since, until=until))
        return [run.scheduled_for for run in found]

    assert fires(since=NOW + MINUTE, until=NOW + 3 * MINUTE) == [NOW + 2 * MINUTE, NOW + MINUTE]
    assert fires(since=NOW + 4 * MINUTE) == [NOW + 4 * MINUTE]
    assert fires(until=NOW + MINUTE) == [NOW]
    every_job = store.list_runs(RunFilter(limit=100, since=NOW + 4 * MINUTE, until=NOW + 5 * MINUTE))
    assert {(run.job_id, run.scheduled_for) for run in every_job} == {
        ("a", NOW + 4 * MINUTE),
        ("b", NOW + 4 * MINUTE),
    }
