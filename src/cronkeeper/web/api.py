"""The JSON API under /api: the service's operations over HTTP, for scripts, CI and the dashboard.

Handlers only translate: input is checked by the same specs layer as every other face (through the service),
changes are audited by the service with the caller's name and address, and domain errors become answers in
:mod:`cronkeeper.web.errors`.  They are plain functions because the service blocks on the database; FastAPI
runs them in its thread pool.  Admins change things; viewers read, with env values redacted.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import APIKeyCookie, HTTPBearer
from starlette.responses import JSONResponse, Response

from cronkeeper.durations import parse_duration, parse_instant
from cronkeeper.exceptions import ConflictError, ValidationError
from cronkeeper.models import Job, LoopHealth, Run, RunStatus, TriggerSource
from cronkeeper.serialize import iso, job_to_json, run_to_json
from cronkeeper.store.records import JobPageFilter, Node, stats_report_to_json, stats_to_json
from cronkeeper.web.api_models import (
    CONFLICT,
    ERRORS,
    MAX_PAGE,
    NOT_FOUND,
    PRECONDITION_FAILED,
    AfterJobId,
    BeforeId,
    CheckinIn,
    CheckinOut,
    IdempotencyKey,
    IfMatch,
    JobCreate,
    JobId,
    JobList,
    JobOut,
    JobPatch,
    JobStateFilter,
    JobStatsOut,
    Limit,
    PreviewOut,
    PreviewRequest,
    RunAccepted,
    RunDetail,
    RunId,
    RunPage,
    Since,
    Sources,
    StatsOut,
    Statuses,
    StatusOut,
    TagFilter,
    TextFilter,
    Until,
)
from cronkeeper.web.auth import SESSION_COOKIE, Principal, admin, checkin, client_address, viewer
from cronkeeper.web.context import web_context
from cronkeeper.web.errors import PreconditionFailed
from cronkeeper.web.pages.common import dashboard, run_service, service

# Only here so that OpenAPI shows how to authenticate; `viewer` and `admin` do the checking.
_BEARER = HTTPBearer(auto_error=False, description="An API token: `cronkeeper tokens create NAME`.")
_COOKIE = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The dashboard's session; unsafe methods also need its X-CSRF-Token header.",
)
ROUTER_OPTIONS: dict[str, Any] = {
    "prefix": "/api",
    "dependencies": [Depends(_BEARER), Depends(_COOKIE)],
    "responses": ERRORS,
}
router = APIRouter(**ROUTER_OPTIONS)

_VERSION = re.compile(r'(?:W/)?"?([0-9]{1,18})"?')

Viewer = Annotated[Principal, Depends(viewer)]
Admin = Annotated[Principal, Depends(admin)]
CheckinCaller = Annotated[Principal, Depends(checkin)]


def _job_response(
    job: Job,
    principal: Principal,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    warnings: list[str] | None = None,
) -> JSONResponse:
    """The job as JSON with its version as ETag, for a later If-Match."""
    body = job_to_json(job, reveal_env=principal.is_admin)
    if warnings:
        body["warnings"] = warnings
    return JSONResponse(body, status_code, headers={"ETag": f'"{job.version}"', **(headers or {})})


# ---- jobs --------------------------------------------------------------------------------------------------


@router.get("/jobs", tags=["jobs"], summary="List jobs", response_model=JobList)
def list_jobs(
    request: Request,
    principal: Viewer,
    state: JobStateFilter = None,
    tag: TagFilter = None,
    q: TextFilter = None,
    after: AfterJobId = None,
    limit: Limit = 100,
) -> JSONResponse:
    """Jobs in id order, filtered and paged in SQL: pass `next_after` as `after` for the next page.  A page
    may hold fewer than `limit` jobs and still not be the last (a tag is checked exactly after a rough SQL
    match); only a null `next_after` ends the listing."""
    page_filter = JobPageFilter(state=state, search=q, tag=tag, after_id=after, limit=limit)
    page = dashboard(request).job_page(page_filter)
    # The page's rows lack the version, origin and authors of the API's job shape: read the jobs by id.
    found = service(request).find_jobs([row.id for row in page.rows])
    body = [job_to_json(job, reveal_env=principal.is_admin) for job in found]
    return JSONResponse({"jobs": body, "next_after": page.next_after})


@router.get("/jobs/{job_id}", tags=["jobs"], summary="Get a job", response_model=JobOut, responses=NOT_FOUND)
def get_job(request: Request, job_id: JobId, principal: Viewer) -> JSONResponse:
    return _job_response(service(request).get_job(job_id), principal)


@router.post(
    "/jobs",
    tags=["jobs"],
    summary="Create a job",
    status_code=201,
    response_model=JobOut,
    responses=CONFLICT,
)
def create_job(request: Request, body: JobCreate, principal: Admin) -> JSONResponse:
    job = service(request).add_job(
        body.model_dump(exclude_unset=True, exclude={"paused"}),
        by=principal.name,
        origin="api",
        paused=body.paused,
        via=client_address(request),
    )
    location = str(request.url_for("get_job", job_id=job.id))
    return _job_response(
        job, principal, status_code=201, headers={"Location": location}, warnings=_warnings(request, job)
    )


def _warnings(request: Request, job: Job) -> list[str]:
    """What the client should hear about a job it saved: a function this process cannot import."""
    problem = service(request).target_problem(job.spec)
    missing = web_context(request).scheduler.alerts.missing_channels(job.spec.notify)
    return ([] if problem is None else [f"call: {problem}"]) + [
        f"notify: there is no channel named {name!r}: alerts to it will fail" for name in missing
    ]


def _if_match(if_match: str | None) -> int | None:
    """The version an If-Match header names (``"3"``, ``W/"3"`` or ``3``); None without one, or for ``*``."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _VERSION.fullmatch(if_match.strip())
    if found is None:
        raise ValidationError("If-Match", 'must be the job\'s ETag, e.g. "3"')
    return int(found.group(1))


@contextlib.contextmanager
def _precondition(job_id: str, if_match_version: int | None) -> Iterator[None]:
    """A change made with If-Match: the service compares the version in the statement that writes, and a
    conflict it reports is answered 412 (a failed precondition) rather than 409."""
    try:
        yield
    except ConflictError:
        if if_match_version is None:
            raise
        raise PreconditionFailed(
            f"job {job_id!r} has changed since the version in If-Match; reload it and try again"
        ) from None


@router.patch(
    "/jobs/{job_id}",
    tags=["jobs"],
    summary="Change a job",
    response_model=JobOut,
    responses={**NOT_FOUND, **CONFLICT, **PRECONDITION_FAILED},
)
def edit_job(
    request: Request, job_id: JobId, body: JobPatch, principal: Admin, if_match: IfMatch = None
) -> Response:
    """Only the options sent change.  An edit based on a stale read is refused instead of silently undoing
    someone else's change: with 412 for If-Match, with 409 for `expected_version` in the body; either is
    checked before the options are, so a stale edit hears that first."""
    version = _if_match(if_match)
    if version is not None and body.expected_version not in (None, version):
        raise ValidationError("If-Match", "disagrees with expected_version")
    with _precondition(job_id, version):
        job = service(request).edit_job(
            job_id,
            body.model_dump(exclude_unset=True, exclude={"expected_version"}),
            by=principal.name,
            expected_version=body.expected_version if version is None else version,
            via=client_address(request),
        )
    return _job_response(job, principal, warnings=_warnings(request, job))


@router.post(
    "/jobs/{job_id}/pause",
    tags=["jobs"],
    summary="Pause a job",
    response_model=JobOut,
    responses={**NOT_FOUND, **PRECONDITION_FAILED},
)
def pause_job(request: Request, job_id: JobId, principal: Admin, if_match: IfMatch = None) -> Response:
    version = _if_match(if_match)
    with _precondition(job_id, version):
        job = service(request).pause(
            job_id, by=principal.name, via=client_address(request), expected_version=version
        )
    return _job_response(job, principal)


@router.post(
    "/jobs/{job_id}/resume",
    tags=["jobs"],
    summary="Resume a job",
    response_model=JobOut,
    responses={**NOT_FOUND, **PRECONDITION_FAILED},
)
def resume_job(request: Request, job_id: JobId, principal: Admin, if_match: IfMatch = None) -> Response:
    """Resumes from the next fire after now: what was missed while paused is not run."""
    version = _if_match(if_match)
    with _precondition(job_id, version):
        job = service(request).resume(
            job_id, by=principal.name, via=client_address(request), expected_version=version
        )
    return _job_response(job, principal)


@router.delete(
    "/jobs/{job_id}",
    tags=["jobs"],
    summary="Delete a job and its history",
    status_code=204,
    response_class=Response,
    responses={**NOT_FOUND, **PRECONDITION_FAILED},
)
def delete_job(request: Request, job_id: JobId, principal: Admin, if_match: IfMatch = None) -> Response:
    version = _if_match(if_match)
    with _precondition(job_id, version):
        service(request).remove(
            job_id, by=principal.name, via=client_address(request), expected_version=version
        )
    return Response(status_code=204)


# ---- runs --------------------------------------------------------------------------------------------------


@router.post(
    "/jobs/{job_id}/runs",
    tags=["runs"],
    summary="Run a job now",
    status_code=202,
    response_model=RunAccepted,
    responses={**NOT_FOUND, **CONFLICT},
)
def trigger_job(
    request: Request, job_id: JobId, principal: Admin, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Queues a run that any live scheduler on the database picks up; poll GET /api/runs/{run_id}."""
    run_id = run_service(request).trigger(
        job_id,
        triggered_by=principal.name,
        trigger_source=TriggerSource.API,
        via=client_address(request),
        idempotency_key=idempotency_key,
    )
    return JSONResponse({"run_id": run_id, "job_id": job_id}, 202)


Window = tuple[datetime | None, datetime | None]


def _window(since: str | None, until: str | None) -> Window:
    """The query's window as instants; the service checks that its ends are in order."""
    return (
        None if since is None else parse_instant(since, "since"),
        None if until is None else parse_instant(until, "until"),
    )


def _run_page(
    request: Request,
    job_id: str | None,
    statuses: list[RunStatus] | None,
    sources: list[TriggerSource] | None,
    window: Window,
    limit: int,
    before_id: int | None,
) -> JSONResponse:
    """Keyset paging: a page ends at an id, so rows arriving meanwhile neither repeat nor shift a page.  One
    row more than the page is read to know whether another page follows (a page of the largest size asks
    for one row past its end instead, as the service reads no more than that size)."""
    since, until = window

    def fetch(size: int, before: int | None) -> list[Run]:
        return run_service(request).list_runs(
            job_id=job_id,
            status=statuses,
            sources=sources,
            limit=size,
            before_id=before,
            since=since,
            until=until,
        )

    runs = fetch(min(limit + 1, MAX_PAGE), before_id)
    more = len(runs) > limit
    if len(runs) == limit == MAX_PAGE:
        more = bool(fetch(1, runs[-1].id))
    runs = runs[:limit]
    body = {
        "runs": [run_to_json(run, with_output=False) for run in runs],
        "next_before_id": runs[-1].id if more else None,
    }
    return JSONResponse(body)


@router.get(
    "/jobs/{job_id}/runs",
    tags=["runs"],
    summary="A job's runs, newest first",
    response_model=RunPage,
    responses=NOT_FOUND,
)
def list_job_runs(
    request: Request,
    job_id: JobId,
    _principal: Viewer,
    status: Statuses = None,
    source: Sources = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    before_id: BeforeId = None,
) -> JSONResponse:
    """`since` and `until` bound `scheduled_for`, the instant a run is for, to [since, until)."""
    window = _window(since, until)
    service(request).get_job(job_id)  # an unknown job is a 404, not an empty history
    return _run_page(request, job_id, status, source, window, limit, before_id)


@router.get("/runs", tags=["runs"], summary="All runs, newest first", response_model=RunPage)
def list_runs(
    request: Request,
    _principal: Viewer,
    job_id: Annotated[str | None, Query(description="Only runs of this job.")] = None,
    status: Statuses = None,
    source: Sources = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    before_id: BeforeId = None,
) -> JSONResponse:
    """`since` and `until` bound `scheduled_for`, the instant a run is for, to [since, until)."""
    return _run_page(request, job_id, status, source, _window(since, until), limit, before_id)


@router.get(
    "/runs/{run_id}", tags=["runs"], summary="A run in full", response_model=RunDetail, responses=NOT_FOUND
)
def get_run(request: Request, run_id: RunId, _principal: Viewer) -> JSONResponse:
    return JSONResponse(run_to_json(run_service(request).get_run(run_id), with_output=True))


@router.get(
    "/runs/{run_id}/output",
    tags=["runs"],
    summary="Download a run's output",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "The captured output"}, **NOT_FOUND},
)
def get_run_output(request: Request, run_id: RunId, _principal: Viewer) -> Response:
    """An attachment that browsers never render: the output of a job is data, whatever it contains."""
    run = run_service(request).get_run(run_id)
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="run-{run.id}.txt"',
    }
    return Response(run.output or "", media_type="text/plain; charset=utf-8", headers=headers)


@router.post(
    "/jobs/{job_id}/checkins",
    tags=["runs"],
    summary="Report a run of a check-in job",
    status_code=201,
    response_model=CheckinOut,
    responses={**NOT_FOUND, **CONFLICT},
)
def check_in(request: Request, job_id: JobId, body: CheckinIn, principal: CheckinCaller) -> JSONResponse:
    """For jobs that run elsewhere (`checkin = true`): `start` opens a run (end it with `success` or `fail`
    and its `run_id`); `success` or `fail` alone is a whole run.  A check-in token (`cronkeeper tokens create
    NAME --role checkin`) may do this and nothing else."""
    duration = None if body.duration is None else parse_duration(body.duration, "duration")
    run = run_service(request).check_in(
        job_id,
        body.event,
        run_id=body.run_id,
        exit_code=body.exit_code,
        output=body.output,
        duration=duration,
        by=principal.name,
    )
    return JSONResponse({"run_id": run.id, "job_id": run.job_id, "status": run.status.value}, 201)


@router.post(
    "/runs/{run_id}/cancel",
    tags=["runs"],
    summary="Cancel a run",
    status_code=202,
    response_model=RunAccepted,
    responses={**NOT_FOUND, **CONFLICT},
)
def cancel_run(request: Request, run_id: RunId, principal: Admin) -> JSONResponse:
    """A queued run is cancelled at once; a running one by its scheduler at its next heartbeat."""
    run = run_service(request).cancel_run(run_id, by=principal.name, via=client_address(request))
    return JSONResponse({"run_id": run_id, "job_id": run.job_id}, 202)


# ---- figures -----------------------------------------------------------------------------------------------


@router.get(
    "/jobs/{job_id}/stats",
    tags=["stats"],
    summary="A job's figures over a window",
    response_model=JobStatsOut,
    responses=NOT_FOUND,
)
def job_stats(
    request: Request, job_id: JobId, _principal: Viewer, since: Since = None, until: Until = None
) -> JSONResponse:
    """Runs by status, success rate, median, p95 and longest duration, last success and last failure, over
    the runs whose `scheduled_for` is in [since, until) (either end open when left out)."""
    start, end = _window(since, until)
    found = run_service(request).stats(job_id, since=start, until=end)
    return JSONResponse(stats_to_json(found[job_id]))


@router.get("/stats", tags=["stats"], summary="Every job's figures over a window", response_model=StatsOut)
def all_stats(request: Request, _principal: Viewer, since: Since = None, until: Until = None) -> JSONResponse:
    """The figures of GET /api/jobs/{job_id}/stats for every job, in id order."""
    start, end = _window(since, until)
    found = run_service(request).stats(since=start, until=end)
    return JSONResponse(stats_report_to_json(found.values(), start, end))


# ---- status and schedules ----------------------------------------------------------------------------------


def _node_json(record: Node | LoopHealth) -> dict[str, Any]:
    """A node or this process's loop as JSON: its fields, instants in ISO-8601."""
    return {
        key: iso(value) if isinstance(value, datetime) else value for key, value in asdict(record).items()
    }


@router.get("/status", tags=["status"], summary="Scheduler, nodes and run counts", response_model=StatusOut)
def get_status(request: Request, _principal: Viewer) -> JSONResponse:
    scheduler = web_context(request).scheduler
    counts = scheduler.status.counts_by_status()
    nodes = scheduler.status.nodes(now=scheduler.clock.now(), lease=scheduler.settings.lease)
    body = {
        "scheduler": _node_json(scheduler.health()),
        "nodes": [_node_json(node) for node in nodes],
        "counts": counts,
        "active": counts[RunStatus.QUEUED.value] + counts[RunStatus.RUNNING.value],
    }
    return JSONResponse(body)


@router.post(
    "/schedule/preview",
    tags=["schedules"],
    summary="Explain a schedule and list its next fires",
    response_model=PreviewOut,
)
def preview_schedule(request: Request, body: PreviewRequest, _principal: Viewer) -> JSONResponse:
    """Open to viewers: it changes nothing, and editors want to see a schedule before an admin saves it."""
    schedule = body.model_dump(exclude_unset=True, exclude={"count"})
    preview = service(request).preview_schedule(schedule, count=body.count)
    return JSONResponse({"description": preview.description, "next": [iso(at) for at in preview.next_fires]})
