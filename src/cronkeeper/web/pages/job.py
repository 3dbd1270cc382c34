"""A job's page (configuration, next fires, history and a chart of its latest runs) and the admin actions
on it: run now, pause, resume and delete.  Every action is a plain form POST that lands in the audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cronkeeper.durations import format_duration
from cronkeeper.models import Job, NotifyOptions, RunStatus, TriggerSource
from cronkeeper.serialize import redact_env, schedule_text
from cronkeeper.services.jobs import SchedulePreview
from cronkeeper.specs import spec_to_dict
from cronkeeper.specs.stored import notify_fields
from cronkeeper.specs.validate import NOTIFY_KEYS, POLICY_KEYS
from cronkeeper.store.records import FAILURE_STATUSES
from cronkeeper.web.api_models import BeforeId
from cronkeeper.web.auth import client_address
from cronkeeper.web.charts import duration_chart
from cronkeeper.web.context import render, web_context
from cronkeeper.web.pages.common import (
    PAGE_SIZE,
    Admin,
    Viewer,
    alerts,
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


# The job page's configuration, grouped as people look for it; an option no group names goes to the first.
OPTION_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("About", ("id", "name", "description", "tags")),
    (
        "Schedule",
        ("cron", "every", "at", "seconds", "timezone", "start", "end", "jitter", "misfire_grace", "catchup"),
    ),
    ("Target", ("command", "shell", "env", "cwd", "call", "args", "kwargs", "isolate", "checkin")),
    ("Policies", POLICY_KEYS),
)
COUNT_WINDOWS = (
    ("24 h", timedelta(hours=24)),
    ("7 days", timedelta(days=7)),
    ("30 days", timedelta(days=30)),
)


def option_groups(job: Job, *, reveal_env: bool) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every stored option as text, by group, env values hidden from viewers (they often hold secrets)."""
    options = spec_to_dict(job.spec)
    if not reveal_env:
        options = redact_env(options)
    grouped: list[tuple[str, list[tuple[str, str]]]] = []
    placed: set[str] = set(NOTIFY_KEYS) | {"long_running"}
    for title, keys in OPTION_GROUPS:
        rows = [(key, _as_text(key, options[key])) for key in keys if key in options]
        placed.update(keys)
        grouped.append((title, rows))
    grouped[0][1].extend((key, _as_text(key, value)) for key, value in options.items() if key not in placed)
    return [(title, rows) for title, rows in grouped if rows]


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """How a job's runs went over the last ``label``: succeeded, failed (failed, timed out, lost) and the
    rest (skipped, missed, cancelled, still going)."""

    label: str
    total: int
    succeeded: int
    failures: int

    @property
    def other(self) -> int:
        return self.total - self.succeeded - self.failures


def window_counts(request: Request, job_id: str, now: datetime) -> list[WindowCounts]:
    windows = [(label, now - span) for label, span in COUNT_WINDOWS]
    counted = dashboard(request).outcome_counts(job_id, [since for _, since in windows])
    return [
        WindowCounts(
            label,
            sum(counts.values()),
            counts.get(RunStatus.SUCCEEDED, 0),
            sum(n for status, n in counts.items() if status in FAILURE_STATUSES),
        )
        for (label, _), counts in zip(windows, counted, strict=True)
    ]


def alert_rows(job: Job, defaults: NotifyOptions) -> list[tuple[str, str, bool]]:
    """The job's notification options: its own, or the default it follows (the flag says which)."""
    own = spec_to_dict(job.spec)
    inherited = notify_fields(defaults)
    rows = []
    for key in NOTIFY_KEYS:
        if key in own:
            rows.append((key, _as_text(key, own[key]), False))
        else:
            rows.append((key, _as_text(key, inherited.get(key)), True))
    if "long_running" in own:
        rows.append(("long_running", _as_text("long_running", own["long_running"]), False))
    return rows


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
    alert_service = alerts(request)
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
        "option_groups": option_groups(job, reveal_env=principal.is_admin),
        "alert_rows": alert_rows(job, alert_service.defaults()),
        "incident": alert_service.open_incident(job_id),
        "counts": window_counts(request, job_id, web_context(request).scheduler.clock.now()),
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
