"""Chart geometry: numbers only, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronkeeper.models import RunStatus
from cronkeeper.store.records import RecentRun, RunHealth, SpanRun
from cronkeeper.web.charts import bar_class, duration_bars, duration_chart, nice_top, sparkline, timeline
from cronkeeper.web.timeline_svg import timeline_svg

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FakeRun:
    id: int
    status: RunStatus
    duration: timedelta | None


def _points(text: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in text.split())]


def test_sparkline_spans_the_width_and_puts_the_largest_value_at_the_top() -> None:
    points = _points(sparkline([1.0, 4.0, 2.0], 100, 20, pad=0))
    assert [x for x, _ in points] == [0, 50, 100]
    assert points[1][1] == 0  # the largest value touches the top
    assert points[0][1] == pytest.approx(15)  # 1/4 of the height above the bottom
    assert points[2][1] == pytest.approx(10)


def test_sparkline_baseline_is_zero_so_steady_durations_look_steady() -> None:
    ys = [y for _, y in _points(sparkline([10.0, 10.2, 9.9], 100, 20, pad=0))]
    assert max(ys) - min(ys) < 1


def test_sparkline_edge_cases() -> None:
    assert sparkline([], 100, 20) == ""
    flat = _points(sparkline([3.0], 100, 20, pad=1))
    assert flat == [(1, 1), (99, 1)]
    zeros = _points(sparkline([0.0, 0.0], 100, 20, pad=1))
    assert all(y == 19 for _, y in zeros)


def test_bars_are_as_tall_as_their_durations_and_classed_by_status() -> None:
    runs = [
        FakeRun(1, RunStatus.SUCCEEDED, timedelta(seconds=2)),
        FakeRun(2, RunStatus.FAILED, timedelta(seconds=4)),
        FakeRun(3, RunStatus.MISSED, None),
        FakeRun(4, RunStatus.RUNNING, None),
    ]
    bars = duration_bars(runs, 100, 50, gap=0, min_height=2)
    assert [bar.css for bar in bars] == ["bar-succeeded", "bar-failed", "bar-other", "bar-active"]
    assert [bar.x for bar in bars] == [0, 25, 50, 75]
    assert all(bar.w == 25 for bar in bars)
    # The scale is 5 s, the round number above the longest (4 s).
    assert bars[1].h == 40 and bars[1].y == 10
    assert bars[0].h == 20 and bars[0].y == 30
    assert bars[2].h == 2 and bars[2].y == 48  # no duration: a stub, still visible
    assert bars[0].title == "run 1: succeeded in 2.0 s"
    assert bars[2].title == "run 3: missed"


def test_slots_keep_few_bars_thin_and_the_newest_at_the_right_edge() -> None:
    runs = [FakeRun(1, RunStatus.SUCCEEDED, timedelta(seconds=1)), FakeRun(2, RunStatus.FAILED, None)]
    first, last = duration_bars(runs, 100, 10, slots=10, gap=0)
    assert first.w == last.w == 10
    assert (first.x, last.x) == (80, 90)


def test_no_runs_no_bars_and_all_zero_durations_are_stubs() -> None:
    assert duration_bars([], 100, 10) == []
    chart = duration_chart([FakeRun(1, RunStatus.SUCCEEDED, timedelta(0))], 100, 10)
    assert chart.top == 0
    assert chart.bars[0].h == 2


@pytest.mark.parametrize(
    ("status", "css"),
    [
        (RunStatus.SUCCEEDED, "bar-succeeded"),
        (RunStatus.TIMED_OUT, "bar-timed_out"),
        (RunStatus.LOST, "bar-lost"),
        (RunStatus.QUEUED, "bar-active"),
        (RunStatus.CANCELLED, "bar-other"),
        (RunStatus.SKIPPED, "bar-other"),
    ],
)
def test_bar_class(status: RunStatus, css: str) -> None:
    assert bar_class(status) == css


def _recent(run_id: int, status: RunStatus, seconds: float | None) -> RecentRun:
    return RecentRun(run_id, "job", status, T0 + timedelta(minutes=run_id), seconds)


def test_health_counts_only_verdicts_and_times_only_runs_that_ended_on_their_own() -> None:
    newest_first = [
        _recent(6, RunStatus.RUNNING, None),
        _recent(5, RunStatus.CANCELLED, 100),
        _recent(4, RunStatus.SKIPPED, None),
        _recent(3, RunStatus.FAILED, 3),
        _recent(2, RunStatus.SUCCEEDED, 2),
        _recent(1, RunStatus.SUCCEEDED, 1),
    ]
    health = RunHealth.of(newest_first)
    assert health.last is not None and health.last.id == 6
    assert health.verdicts == 3
    assert health.success_rate == pytest.approx(2 / 3)
    assert health.median_duration == timedelta(seconds=2)
    assert health.durations == [1, 2, 3]  # oldest first; the cancelled run's 100 s is left out


def test_health_of_a_job_that_never_ran() -> None:
    health = RunHealth.of([])
    assert health.last is None
    assert health.success_rate is None
    assert health.median_duration is None
    assert health.durations == []


@pytest.mark.parametrize(
    ("longest", "top"),
    [(0.0, 0.0), (0.0042, 0.005), (1.0, 1.0), (1.2, 2.0), (3.7, 5.0), (7.0, 10.0), (86.0, 100.0)],
)
def test_the_scale_is_a_round_number_at_or_above_the_longest_run(longest: float, top: float) -> None:
    assert nice_top(longest) == pytest.approx(top)


def test_timeline_ticks_stay_on_round_local_hours_across_a_change_of_offset() -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # clocks went forward at 01:00 UTC that morning
    chart = timeline([], {}, start=now - timedelta(hours=24), end=now, now=now, width=1000, zone=paris)
    labels = [tick.label for tick in chart.ticks]
    assert labels == ["15:00", "18:00", "21:00", "00:00", "03:00", "06:00", "09:00", "12:00"]


def test_touching_runs_of_one_outcome_are_drawn_as_one_bar() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    start = now - timedelta(hours=1)
    runs = [
        SpanRun(n, "often", RunStatus.SUCCEEDED, at, at, at + timedelta(seconds=5))
        for n, at in enumerate(start + timedelta(seconds=10 * i) for i in range(300))
    ]
    runs.append(SpanRun(999, "often", RunStatus.FAILED, now - timedelta(minutes=1), None, None))
    chart = timeline(runs, {}, start=start, end=now, now=now, width=1000)
    (lane,) = chart.lanes
    assert [bar.css for bar in lane.bars] == ["bar-succeeded", "bar-failed"]
    assert [(bar.first.id, bar.stands_for) for bar in lane.bars] == [(0, 300), (999, 1)]
    svg = timeline_svg(chart, "/ck")
    assert '<a href="/ck/runs/0"><rect class="bar-succeeded"' in svg
    assert "<title>300 runs from often, run 0: succeeded in 5.0 s, 2026-03-02 11:00:00 UTC</title>" in svg


def test_the_timeline_svg_escapes_what_it_did_not_make_and_shortens_long_lane_names() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    long_id = "nightly-export-of-the-warehouse-tables"
    runs = [SpanRun(1, long_id, RunStatus.FAILED, now - timedelta(minutes=5), None, now)]
    chart = timeline(
        runs,
        {long_id: [now + timedelta(minutes=5)]},
        start=now - timedelta(hours=1),
        end=now + timedelta(minutes=10),
        now=now,
        width=1000,
    )
    svg = timeline_svg(chart, '/a"<b>')
    assert 'href="/a&#34;&lt;b&gt;/jobs/nightly-export' in svg and "<b>" not in svg
    assert ">nightly-export-of-the-w…</text>" in svg
    assert f"<title>{long_id}: next fire</title>" in svg
    assert (
        "<title>nightly-export-of-the-warehouse-tables, run 1: failed, 2026-03-02 11:55:00 UTC</title>" in svg
    )
