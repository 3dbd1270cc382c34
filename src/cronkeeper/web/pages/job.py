"""A job's page (configuration, next fires, history and a chart of its latest runs) and the admin actions
on it: run now, pause, resume and delete.  Every action is a plain form POST that lands in the audit log."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cronkeeper.durations import format_duration
from cronkeeper.models import Job, RunStatus, TriggerSource
from cronkeeper.serialize import redact_env, schedule_text
from cronkeeper.services.jobs import SchedulePreview
from cronkeeper.specs import spec_to_dict
from cronkeeper.web.api_models import BeforeId
from cronkeeper.web.auth import client_address
from cronkeeper.web.charts import duration_chart
from cronkeeper.web.context import render
from cronkeeper.web.pages.common import (
    PAGE_SIZE,
    Admin,
    Viewer,
    choice,
    dashboard,
    paged,
    query_string,
    run_service,
    see_other,
    service,
)

router = APIRouter()
CHART_RUNS = 100
CHART_WIDTH, CHART_HEIGHT = 1000, 100
_SCHEDULE_FIELDS = ("cron", "every", "at", "seconds", "timezone", "start", "end")
_DURATION_OPTIONS = frozenset({"every", "timeout", "retry_base", "retry_cap", "misfire_grace", "jitter"})


def option_rows(job: Job, *, reveal_env: bool) -> list[tuple[str, str]]:
    """Every stored option as text, env values hidden from viewers (they often hold secrets)."""
    options = spec_to_dict(job.spec)
    if not reveal_env:
        options = redact_env(options)
    return [(key, _as_text(key, value)) for key, value in options.items()]


def _as_text(key: str, value: Any) -> str:
    """Durations as people write them (``1m`` rather than ``60.0``), the rest as JSON or plain text."""
    if value is None:
        return "—"
    if key in _DURATION_OPTIONS and isinstance(value, int | float):
        return format_duration(timedelta(seconds=value))
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def next_fires(request: Request, job: Job) -> SchedulePreview:
    """The schedule's next fires, through the same preview the schedule editor shows."""
    options = spec_to_dict(job.spec)
    return service(request).preview_schedule(
        {key: options[key] for key in _SCHEDULE_FIELDS if key in options}
    )


@router.get("/jobs/{job_id}")
def job_page(
    request: Request,
    job_id: str,
    principal: Viewer,
    status: str | None = None,
    source: str | None = None,
    before_id: BeforeId = None,
) -> Response:
    job = service(request).get_job(job_id)
    run_status = choice(RunStatus, status, "status")
    run_source = choice(TriggerSource, source, "source")
    history, more = paged(
        run_service(request).list_runs(
            job_id=job_id, status=run_status, sources=run_source, limit=PAGE_SIZE + 1, before_id=before_id
        )
    )
    recent = dashboard(request).recent_runs([job_id], per_job=CHART_RUNS)[job_id]
    filters = {"status": status or "", "source": source or ""}
    context = {
        "nav": "jobs",
        "job": job,
        # What the last try to import it here found: a page view never runs a module's code.
        "import_problem": service(request).target_problem(job.spec, import_now=False),
        "schedule": schedule_text(job.spec.trigger),
        "options": option_rows(job, reveal_env=principal.is_admin),
        "preview": next_fires(request, job),
        "history": history,
        "filters": filters,
        "statuses": [member.value for member in RunStatus],
        "sources": [member.value for member in TriggerSource],
        "next_query": query_string(filters, before_id=history[-1].id) if more else None,
        "first_query": query_string(filters) if before_id is not None else None,
        "chart": duration_chart(list(reversed(recent)), CHART_WIDTH, CHART_HEIGHT, slots=CHART_RUNS),
        "chart_runs": CHART_RUNS,
    }
    return render(request, "job.html", context)


@router.post("/jobs/{job_id}/trigger")
def trigger(request: Request, job_id: str, principal: Admin) -> Response:
    run_id = run_service(request).trigger(
        job_id, triggered_by=principal.name, trigger_source=TriggerSource.MANUAL, via=client_address(request)
    )
    return see_other(request, f"/runs/{run_id}")


@router.post("/jobs/{job_id}/pause")
def pause(request: Request, job_id: str, principal: Admin) -> Response:
    service(request).pause(job_id, by=principal.name, via=client_address(request))
    return see_other(request, f"/jobs/{job_id}")


@router.post("/jobs/{job_id}/resume")
def resume(request: Request, job_id: str, principal: Admin) -> Response:
    service(request).resume(job_id, by=principal.name, via=client_address(request))
    return see_other(request, f"/jobs/{job_id}")


@router.get("/jobs/{job_id}/delete")
def confirm_delete(request: Request, job_id: str, _principal: Admin) -> Response:
    """A page of its own, so that deleting needs a second, deliberate click even without JavaScript."""
    job = service(request).get_job(job_id)
    return render(request, "job_delete.html", {"nav": "jobs", "job": job})


@router.post("/jobs/{job_id}/delete")
def delete(request: Request, job_id: str, principal: Admin) -> Response:
    service(request).remove(job_id, by=principal.name, via=client_address(request))
    return see_other(request, "/")
