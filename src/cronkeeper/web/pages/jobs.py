"""The jobs page: every job with its schedule, state, next run and recent health, filtered and paged; and
the actions an admin takes on several of its jobs at once.

Two queries whatever the number of jobs or runs (see :mod:`cronkeeper.store.views`); the filter form works
as a plain GET form and, with htmx, refreshes only the table as the user types.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from cronkeeper.exceptions import ValidationError
from cronkeeper.models import TriggerSource
from cronkeeper.serialize import schedule_text
from cronkeeper.store.records import JobPageFilter, JobRow, JobState, RunHealth
from cronkeeper.triggers import CronTrigger, Trigger
from cronkeeper.web.auth import client_address
from cronkeeper.web.charts import sparkline
from cronkeeper.web.context import render
from cronkeeper.web.filters import zone_of
from cronkeeper.web.pages.common import (
    PAGE_SIZE,
    Admin,
    Viewer,
    choice,
    dashboard,
    query_string,
    run_service,
    see_other,
    service,
    text,
)

router = APIRouter()
HEALTH_WINDOW = 20
SPARK_WIDTH, SPARK_HEIGHT = 100, 22


def describe(trigger: Trigger) -> str:
    return _describe_cron(trigger) if isinstance(trigger, CronTrigger) else trigger.describe()


@functools.lru_cache(maxsize=4096)
def _describe_cron(trigger: CronTrigger) -> str:
    """Describing a cron expression costs as much as the rest of a row, and jobs share a few schedules."""
    return trigger.describe()


@dataclass(frozen=True, slots=True)
class JobLine:
    """A row of the jobs table."""

    job: JobRow
    health: RunHealth
    spark: str

    @property
    def schedule(self) -> str:
        return schedule_text(self.job.spec.trigger)

    @property
    def description(self) -> str:
        return describe(self.job.spec.trigger)

    @property
    def timezone(self) -> str | None:
        """Only a cron schedule is read in a zone; intervals and one-offs are absolute instants."""
        zone = zone_of(self.job.spec)
        return None if zone is None else zone.key


@router.get("/")
def jobs_page(
    request: Request,
    _principal: Viewer,
    state: str | None = None,
    tag: str | None = None,
    q: str | None = None,
    after: str | None = None,
) -> Response:
    page_filter = JobPageFilter(
        state=choice(JobState, state, "state"),
        search=text(q),
        tag=text(tag),
        after_id=text(after),
        limit=PAGE_SIZE,
    )
    view = dashboard(request)
    page = view.job_page(page_filter)
    recent = view.recent_runs([row.id for row in page.rows], per_job=HEALTH_WINDOW)
    lines = []
    for row in page.rows:
        health = RunHealth.of(recent[row.id])
        lines.append(JobLine(row, health, sparkline(health.durations, SPARK_WIDTH, SPARK_HEIGHT)))
    filters = {"state": state or "", "tag": page_filter.tag or "", "q": page_filter.search or ""}
    context = {
        "nav": "jobs",
        "lines": lines,
        "filters": filters,
        "states": [member.value for member in JobState],
        "next_query": None if page.next_after is None else query_string(filters, after=page.next_after),
        "first_query": query_string(filters) if page_filter.after_id is not None else None,
        "window": HEALTH_WINDOW,
        "spark": (SPARK_WIDTH, SPARK_HEIGHT),
    }
    # The filter form's htmx requests want only the table; anything else (a plain GET, a reload, htmx
    # restoring its history) gets the whole page.
    template = "_jobs_table.html" if request.headers.get("HX-Target") == "job-table" else "jobs.html"
    response = render(request, template, context)
    response.headers["Vary"] = "HX-Target"
    return response


# What the jobs list can do to the jobs ticked in it, all at once.
BULK_ACTIONS = ("pause", "resume", "trigger")


@router.post("/jobs/bulk")
def bulk(
    request: Request,
    principal: Admin,
    action: Annotated[str, Form()] = "",
    job: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Pause, resume or run now every ticked job; each change is audited on its own.  Every job is looked up
    and checked before any is changed, so a list naming a job that is gone, or one that cannot be run here
    (a check-in job), changes nothing; a job already paused (or active) is left as it is."""
    if action not in BULK_ACTIONS:
        raise ValidationError("action", f"must be one of {', '.join(BULK_ACTIONS)}")
    job_ids = list(dict.fromkeys(job or ()))
    if not job_ids:
        raise ValidationError("job", "tick at least one job")
    jobs = service(request)
    found = [jobs.get_job(job_id) for job_id in job_ids]
    if action == "trigger":
        elsewhere = [found_job.id for found_job in found if found_job.spec.runs_elsewhere]
        if elsewhere:
            raise ValidationError("job", f"{', '.join(elsewhere)} run elsewhere (check-in jobs): untick them")
    by, via, runs = principal.name, client_address(request), run_service(request)
    for ticked in found:
        if action == "pause" and not ticked.paused:
            jobs.pause(ticked.id, by=by, via=via)
        elif action == "resume" and ticked.paused:
            jobs.resume(ticked.id, by=by, via=via)
        elif action == "trigger":
            runs.trigger(ticked.id, triggered_by=by, trigger_source=TriggerSource.MANUAL, via=via)
    return see_other(request, "/runs?source=manual" if action == "trigger" else "/")
