"""The history of every job (newest first, filtered, paged), one run's page, its output as a download, and
cancelling a run that is still going."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cronkeeper.exceptions import JobNotFoundError
from cronkeeper.models import Run, RunStatus, TriggerSource
from cronkeeper.web.api_models import BeforeId, RunId
from cronkeeper.web.auth import client_address
from cronkeeper.web.context import render
from cronkeeper.web.filters import zone_of
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
    text,
)

router = APIRouter()


@router.get("/runs")
def runs_page(
    request: Request,
    _principal: Viewer,
    status: str | None = None,
    source: str | None = None,
    job: str | None = None,
    before_id: BeforeId = None,
) -> Response:
    job_id = text(job)
    history, more = paged(
        run_service(request).list_runs(
            job_id=job_id,
            status=choice(RunStatus, status, "status"),
            sources=choice(TriggerSource, source, "source"),
            limit=PAGE_SIZE + 1,
            before_id=before_id,
        )
    )
    filters = {"status": status or "", "source": source or "", "job": job_id or ""}
    context = {
        "nav": "runs",
        "history": history,
        "filters": filters,
        "statuses": [member.value for member in RunStatus],
        "sources": [member.value for member in TriggerSource],
        "next_query": query_string(filters, before_id=history[-1].id) if more else None,
        "first_query": query_string(filters) if before_id is not None else None,
    }
    return render(request, "runs.html", context)


def result_rows(result: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A job's result or metrics as rows: ``processed | 120``; nested values as compact JSON."""
    if not result:
        return []
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for key, value in result.items()
    ]


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: RunId, _principal: Viewer) -> Response:
    run = run_service(request).get_run(run_id)
    context = {
        "nav": "runs",
        "run": run,
        "result_rows": result_rows(run.result),
        "relations": dashboard(request).run_relations(run),
        **_job_of(request, run.job_id),
    }
    return render(request, "run.html", context)


def _job_of(request: Request, job_id: str) -> dict[str, object]:
    """The run's job as the page needs it: its zone (for a reader who reads each job's times in its own),
    and whether it can be run again here (it exists, and is not a check-in job, which runs elsewhere)."""
    try:
        job = service(request).get_job(job_id)
    except JobNotFoundError:
        return {"job_zone": None, "can_run_again": False}
    return {"job_zone": zone_of(job.spec), "can_run_again": not job.spec.runs_elsewhere}


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: RunId, principal: Admin) -> Response:
    run_service(request).cancel_run(run_id, by=principal.name, via=client_address(request))
    return see_other(request, f"/runs/{run_id}")


@router.get("/runs/{run_id}/output.txt")
def output(request: Request, run_id: RunId, _principal: Viewer) -> Response:
    """Plain text, never rendered by the browser: output is whatever the job printed, HTML included."""
    run: Run = run_service(request).get_run(run_id)
    return Response(
        run.output or "",
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="run-{run_id}-output.txt"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
