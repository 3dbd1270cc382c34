"""Chart geometry for the dashboard: numbers that templates put into SVG attributes.

The Content-Security-Policy forbids inline styles and scripts, so charts are plain SVG shapes whose look
comes from classes in app.css.  Everything here is pure arithmetic, kept out of templates so it can be
tested; nothing here reads user text, so titles are safe to build as strings (templates still escape them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NamedTuple, Protocol

from cronkeeper.models import RunStatus
from cronkeeper.store.records import SpanRun
from cronkeeper.web.filters import seconds

_OWN_CLASS = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST})


class Timed(Protocol):
    """A run as far as a chart cares: :class:`~cronkeeper.models.Run` and the dashboard's RecentRun."""

    @property
    def id(self) -> int: ...

    @property
    def status(self) -> RunStatus: ...

    @property
    def duration(self) -> timedelta | None: ...


@dataclass(frozen=True, slots=True)
class Bar:
    """One run's bar: its box in SVG user units, its CSS class (by status) and its hover text."""

    x: float
    y: float
    w: float
    h: float
    css: str
    title: str
    run_id: int


@dataclass(frozen=True, slots=True)
class BarChart:
    """Bars and the scale they are drawn to: ``top`` seconds is the full height, a round number (1, 2 or 5
    times a power of ten) at or above the longest run, so that the scale reads at a glance from the first
    run on."""

    bars: list[Bar]
    width: float
    height: float
    top: float


def _fmt(value: float) -> str:
    """Short numbers keep the SVG small: ``12``, ``3.5``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def sparkline(values: Sequence[float], width: float, height: float, *, pad: float = 1.5) -> str:
    """The ``points`` of a polyline through ``values``, left to right, scaled from zero to the largest.

    Zero, not the smallest value, is the baseline: a job that takes 10.0 s then 10.2 s should look steady.
    A single value draws a flat line across; no values draw nothing.
    """
    if not values:
        return ""
    top = max(values)
    usable = height - 2 * pad

    def y(value: float) -> float:
        return height - pad - (value / top * usable if top > 0 else 0.0)

    if len(values) == 1:
        level = _fmt(y(values[0]))
        return f"{_fmt(pad)},{level} {_fmt(width - pad)},{level}"
    step = (width - 2 * pad) / (len(values) - 1)
    return " ".join(f"{_fmt(pad + i * step)},{_fmt(y(value))}" for i, value in enumerate(values))


def bar_class(status: RunStatus) -> str:
    """``bar-succeeded``, ``bar-failed``, ``bar-timed_out``, ``bar-lost``, ``bar-active`` or ``bar-other``
    (cancelled, missed, skipped: runs that say nothing about whether the job works)."""
    if status in _OWN_CLASS:
        return f"bar-{status.value}"
    return "bar-active" if status.is_active else "bar-other"


def duration_bars(
    runs: Sequence[Timed],
    width: float,
    height: float,
    *,
    slots: int = 0,
    gap: float = 1.0,
    min_height: float = 2.0,
) -> list[Bar]:
    """A bar per run, in the order given (oldest first reads left to right), as tall as its duration.

    ``slots`` reserves room for that many bars, so a job with 3 runs gets 3 thin bars (at the right, the
    newest end) rather than 3 slabs.  Runs without a duration (missed, skipped, still going) get a stub of
    ``min_height`` so they still show.
    """
    if not runs:
        return []
    slot = width / max(len(runs), slots)
    # Flush right: the newest run is always at the right edge, where the axis says "newest".
    start = width - slot * len(runs)
    top = nice_top(max((_seconds(run) for run in runs), default=0.0))
    bars = []
    for i, run in enumerate(runs):
        taken = _seconds(run)
        h = max(min_height, taken / top * height if top > 0 else 0.0)
        title = f"run {run.id}: {run.status.value}"
        if run.duration is not None:
            title += f" in {seconds(run.duration)}"
        bars.append(
            Bar(
                x=round(start + i * slot + gap / 2, 2),
                y=round(height - h, 2),
                w=round(max(slot - gap, 0.5), 2),
                h=round(h, 2),
                css=bar_class(run.status),
                title=title,
                run_id=run.id,
            )
        )
    return bars


def duration_chart(runs: Sequence[Timed], width: float, height: float, *, slots: int = 0) -> BarChart:
    """:func:`duration_bars` with the scale, for the axis label."""
    top = nice_top(max((_seconds(run) for run in runs), default=0.0))
    return BarChart(duration_bars(runs, width, height, slots=slots), width, height, top)


def nice_top(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above ``value`` (0 for 0)."""
    if value <= 0:
        return 0.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value * (1 - 1e-9))


def _seconds(run: Timed) -> float:
    duration = run.duration
    return 0.0 if duration is None else max(duration.total_seconds(), 0.0)


class SpanBar(NamedTuple):
    """A timeline bar: ``stands_for`` touching runs of one outcome from ``x``, ``w`` wide, ``first`` the
    earliest (the one it links to).  A tuple, not a dataclass: a timeline makes thousands."""

    x: float
    w: float
    css: str
    first: SpanRun
    stands_for: int


@dataclass(frozen=True, slots=True)
class Lane:
    """One job's row of a timeline: its runs as bars, and its next fires as ticks (x only)."""

    job_id: str
    y: float
    bars: list[SpanBar]
    fires: list[float]


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """Runs on a time axis, one lane per job, oldest at the left; ``now_x`` splits the past from the fires
    ahead, drawn faintly; ``zone`` is the one the axis and the hover texts read in."""

    lanes: list[Lane]
    ticks: list[Tick]
    now_x: float
    width: float
    height: float
    lane_height: float
    label_width: float
    zone: tzinfo


# Tick steps a timeline's axis chooses from: the smallest that keeps the labels apart.
_TICK_STEPS = (
    [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30)]
    + [timedelta(hours=h) for h in (1, 2, 3, 6, 12)]
    + [timedelta(days=1)]
)
_MAX_TICKS = 9
_BAR_CLASS = {status: bar_class(status) for status in RunStatus}
# The narrowest bar, so that a run of a second shows in a week; and how close two bars of one outcome may
# come before they are drawn as one.
_MIN_BAR = 2.0
_TOUCHING = 0.5


def timeline(
    runs: Sequence[SpanRun],
    fires: Mapping[str, Sequence[datetime]],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    width: float,
    zone: tzinfo = UTC,
    lane_height: float = 18.0,
    label_width: float = 160.0,
) -> Timeline:
    """The geometry of a timeline over ``[start, end)``: a lane per job that ran or fires there (in id order),
    each run a bar from its start (else the instant it was for) to its end (else now, while it runs)."""
    scale = (width - label_width) / (end - start).total_seconds()

    def x(instant: datetime) -> float:
        offset = (min(max(instant, start), end) - start).total_seconds()
        return round(label_width + offset * scale, 2)

    by_job: dict[str, list[SpanRun]] = {}
    for run in runs:
        by_job.setdefault(run.job_id, []).append(run)
    lanes = []
    for index, job_id in enumerate(sorted(by_job.keys() | fires.keys())):
        bars = _lane_bars(sorted(by_job.get(job_id, ()), key=_begin), x, now)
        ahead = [x(fire) for fire in fires.get(job_id, ()) if now <= fire < end]
        lanes.append(Lane(job_id, index * lane_height, bars, ahead))
    return Timeline(
        lanes,
        _ticks(start, end, x, zone),
        x(now),
        width,
        len(lanes) * lane_height,
        lane_height,
        label_width,
        zone,
    )


def _begin(run: SpanRun) -> tuple[datetime, int]:
    return run.started_at or run.scheduled_for, run.id


def _lane_bars(runs: Sequence[SpanRun], x: Callable[[datetime], float], now: datetime) -> list[SpanBar]:
    """A bar per run, oldest first, but runs of one outcome that touch (within ``_TOUCHING``) drawn as one:
    a week of a job that runs every minute is a few hundred shapes, not ten thousand, and looks the same."""
    bars: list[SpanBar] = []
    for run in runs:
        begin = run.started_at or run.scheduled_for
        stop = run.finished_at or (now if run.status.is_active else begin)
        left = x(begin)
        right = max(x(stop), left + _MIN_BAR)
        css = _BAR_CLASS[run.status]
        if bars and bars[-1].css == css and left <= bars[-1].x + bars[-1].w + _TOUCHING:
            last = bars[-1]
            bars[-1] = SpanBar(
                last.x, round(max(last.x + last.w, right) - last.x, 2), css, last.first, last.stands_for + 1
            )
        else:
            bars.append(SpanBar(left, round(right - left, 2), css, run, 1))
    return bars


def _ticks(start: datetime, end: datetime, x: Callable[[datetime], float], zone: tzinfo) -> list[Tick]:
    """Ticks on round local times (every 10 minutes, 3 hours, midnight…), as many as fit, counted on the
    local clock so that they stay round across a change of offset (DST)."""
    span = end - start
    step = next((step for step in _TICK_STEPS if span / step <= _MAX_TICKS), _TICK_STEPS[-1])
    seconds_step = int(step.total_seconds())
    local = start.astimezone(zone).replace(tzinfo=None)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    since_midnight = int((local - midnight).total_seconds())
    wall = midnight + timedelta(seconds=-(-since_midnight // seconds_step) * seconds_step)
    shape = "%m-%d" if step >= timedelta(days=1) else "%H:%M"
    ticks = []
    while (tick := wall.replace(tzinfo=zone).astimezone(UTC)) <= end:
        if tick >= start:
            ticks.append(Tick(x(tick), wall.strftime(shape)))
        wall += step
    return ticks
