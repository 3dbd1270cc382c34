"""When things ran and when they will: the timeline (runs of every job, or a filtered few, as bars on a time
axis over the last hour, day or week, with the fires ahead drawn faintly) and the upcoming fires of the next
24 hours.

Both read only their window: the timeline one capped range scan of the runs by the instant they were for
(twice: counted in the database to choose the lanes, then read for those lanes only);
the upcoming list the jobs due soonest, by the index the scheduler claims with.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.responses import Response

from cronkeeper.exceptions import ValidationError
from cronkeeper.models import JobSpec
from cronkeeper.store.base import DashboardView
from cronkeeper.store.records import JobRow, JobState, RunWindow
from cronkeeper.web.charts import timeline
from cronkeeper.web.context import base_path, render, web_context
from cronkeeper.web.filters import zone_of
from cronkeeper.web.pages.common import Viewer, dashboard, text
from cronkeeper.web.timeline_svg import timeline_svg
from cronkeeper.web.zones import reading_zone

router = APIRouter()
WINDOWS = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
# What one timeline draws at most: the newest runs, the busiest jobs; the page says when it left some out.
MAX_RUNS = 3000
MAX_LANES = 60
MAX_FIRES_PER_LANE = 100
TIMELINE_WIDTH = 1200
UPCOMING_SPAN = timedelta(hours=24)
MAX_UPCOMING = 500
# A job that fires every second would fill the list: each job shows at most this many of its fires.
MAX_FIRES_PER_JOB = 10


@router.get("/timeline")
def timeline_page(
    request: Request, principal: Viewer, window: str = "1h", job: str | None = None, tag: str | None = None
) -> Response:
    span = WINDOWS.get(window)
    if span is None:
        raise ValidationError("window", f"must be one of {', '.join(WINDOWS)}")
    now = web_context(request).scheduler.clock.now()
    start, end = now - span, now + span / 6
    wanted_job, wanted_tag = text(job), text(tag)
    view = dashboard(request)
    scan = RunWindow(start, now, MAX_RUNS, wanted_job)
    counts, more_runs = view.busy_jobs(scan)
    lanes = _lane_jobs(view, counts, wanted_job, wanted_tag)
    runs = view.runs_in_window(scan, lanes) if lanes else []
    fires = {
        job_id: _fires(row.spec, now, end, MAX_FIRES_PER_LANE) if row.state is JobState.ACTIVE else []
        for job_id, row in lanes.items()
    }
    zone = reading_zone(request, principal.time_zone).zone
    chart = timeline(runs, fires, start=start, end=end, now=now, width=TIMELINE_WIDTH, zone=zone)
    context = {
        "nav": "timeline",
        "chart": chart,
        "svg": timeline_svg(chart, base_path(request)),
        "window": window,
        "windows": list(WINDOWS),
        "filters": {"job": wanted_job or "", "tag": wanted_tag or ""},
        "more_runs": more_runs,
        "max_runs": MAX_RUNS,
        "start": start,
    }
    return render(request, "timeline.html", context)


def _lane_jobs(
    view: DashboardView, counts: dict[str, int], job: str | None, tag: str | None
) -> dict[str, JobRow]:
    """The jobs that get a lane: those that ran in the window (with ``tag``), and the job named ``job``
    exactly even if it did not run; the busiest first, at most ``MAX_LANES``.  Read busiest first, a lane's
    worth at a time, so that a window of many jobs reads only the few it draws (a job deleted since it ran
    has no lane)."""
    if job:
        counts.setdefault(job, 0)
    busiest = sorted(counts, key=lambda job_id: (-counts[job_id], job_id))
    lanes: dict[str, JobRow] = {}
    for at in range(0, len(busiest), MAX_LANES):
        rows = view.jobs_by_id(busiest[at : at + MAX_LANES])
        for job_id in busiest[at : at + MAX_LANES]:
            row = rows.get(job_id)
            if row is not None and (tag is None or tag in row.spec.tags):
                lanes[job_id] = row
                if len(lanes) == MAX_LANES:
                    return lanes
    return lanes


def _fires(spec: JobSpec, now: datetime, end: datetime, limit: int) -> list[datetime]:
    """The fires of ``spec`` in ``[now, end)``, at most ``limit``."""
    ahead = spec.trigger.fires_after(now - timedelta(microseconds=1))
    return list(itertools.islice(itertools.takewhile(lambda fire: fire < end, ahead), limit))


@dataclass(frozen=True, slots=True)
class Upcoming:
    at: datetime
    job_id: str
    name: str
    zone: ZoneInfo | None


@router.get("/upcoming")
def upcoming_page(request: Request, _principal: Viewer) -> Response:
    """The next fires of every active job in the next 24 hours, in order, at most ``MAX_FIRES_PER_JOB`` of
    each and ``MAX_UPCOMING`` in all.  No job beyond the ``MAX_UPCOMING`` due soonest can have a fire among
    the first ``MAX_UPCOMING``: each of those has one before it."""
    now = web_context(request).scheduler.clock.now()
    until = now + UPCOMING_SPAN
    rows = dashboard(request).next_up(MAX_UPCOMING)
    heap = [
        (row.next_fire_at, row.id, row, row.spec.trigger.fires_after(row.next_fire_at))
        for row in rows
        if row.next_fire_at is not None
    ]
    heapq.heapify(heap)
    listed: list[Upcoming] = []
    shown: dict[str, int] = {}
    while heap and len(listed) < MAX_UPCOMING:
        fire, job_id, row, following = heapq.heappop(heap)
        if fire >= until:
            break
        listed.append(Upcoming(fire, job_id, row.spec.display_name, zone_of(row.spec)))
        shown[job_id] = shown.get(job_id, 0) + 1
        after = next(following, None)
        if after is not None and shown[job_id] < MAX_FIRES_PER_JOB:
            heapq.heappush(heap, (after, job_id, row, following))
    context = {
        "nav": "upcoming",
        "fires": listed,
        "limit": MAX_UPCOMING,
        "per_job": MAX_FIRES_PER_JOB,
        "until": until,
    }
    return render(request, "upcoming.html", context)
