"""A FastAPI app with its scheduled jobs in the same process, and endpoints to manage them.

The scheduler starts and stops with the app (its lifespan).  Three cron jobs return what they did as a dict,
which cronkeeper stores as the run's ``result``, so "how many invoices failed last month?" is a query on the
history rather than a grep through logs:

- ``daily-digest``      every day at 06:00
- ``weekly-reindex``    every Sunday at 03:00
- ``monthly-invoices``  on the 1st, 2nd and 3rd of each month at 04:00 (billing is retried for three days)

Run it (SQLite file ``fastapi_app.db`` in the working directory, or set ``CRONKEEPER_DB``)::

    cd examples/fastapi_app
    python app.py                                   # or: uvicorn app:create_app --factory
    curl localhost:8000/jobs
    curl -X POST localhost:8000/jobs/weekly-reindex/pause
    curl -X POST localhost:8000/jobs/weekly-reindex/resume
    curl localhost:8000/jobs/daily-digest/runs
    curl -X DELETE localhost:8000/jobs/monthly-invoices
    cronkeeper --db sqlite:///fastapi_app.db runs list  # the same history from the command line

The whole dashboard can be mounted too: ``app.mount("/cron", cronkeeper.web.create_app(scheduler))`` (see the
Flask example for its first user).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cronkeeper import Job, JobNotFoundError, Run, Scheduler

log = logging.getLogger("fastapi_app")

# ---- the work ----------------------------------------------------------------------------------------------
# Stand-ins for your database and mailer: each job handles a batch of items and reports how that went.

SUBSCRIBERS = ["ana@example.org", "ben@example.org", "carla.example.org", "dev@example.org"]
DOCUMENTS = [f"doc-{number}" for number in range(1, 11)]
ACCOUNTS = ["acme", "globex", "initech", "umbrella", "hooli"]


def process(items: Iterable[str], handle: Callable[[str], None]) -> dict[str, int]:
    """Handle every item, carrying on past the ones that fail, and count the outcomes.

    Returning the counts (rather than only logging them) makes them part of the run's record: the dashboard,
    ``cronkeeper runs show`` and ``scheduler.runs()`` all show them.
    """
    succeeded = failed = 0
    for item in items:
        try:
            handle(item)
        except ValueError as exc:
            log.warning("%s: %s", item, exc)
            failed += 1
        else:
            succeeded += 1
    return {"items_processed": succeeded + failed, "items_succeeded": succeeded, "items_failed": failed}


def send_digest(address: str) -> None:
    if "@" not in address:
        raise ValueError("not an e-mail address")


def reindex(document: str) -> None:
    """Every document indexes fine in this stand-in."""


def bill(account: str) -> None:
    if account == "umbrella":
        raise ValueError("card declined")


def daily_digest() -> dict[str, int]:
    """E-mail each subscriber a summary of yesterday."""
    return process(SUBSCRIBERS, send_digest)


def weekly_reindex() -> dict[str, int]:
    """Rebuild the search index while traffic is low."""
    return process(DOCUMENTS, reindex)


def monthly_invoices() -> dict[str, int]:
    """Bill every account.  Scheduled on three days so that a declined card gets two more chances; billing
    an account that has paid already would do nothing."""
    return process(ACCOUNTS, bill)


def add_jobs(scheduler: Scheduler) -> None:
    """Declare the jobs.  ``add_job`` on an existing id updates it, so this runs at every start."""
    scheduler.add_job(daily_digest, id="daily-digest", cron="0 6 * * *")
    scheduler.add_job(weekly_reindex, id="weekly-reindex", cron="0 3 * * SUN")
    scheduler.add_job(monthly_invoices, id="monthly-invoices", cron="0 4 1-3 * *")


# ---- the API -----------------------------------------------------------------------------------------------


class JobOut(BaseModel):
    id: str
    schedule: str
    paused: bool
    next_due_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            schedule=job.spec.trigger.describe(),
            paused=job.paused,
            next_due_at=job.next_due_at,
        )


class RunOut(BaseModel):
    id: int
    status: str
    scheduled_for: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            id=run.id,
            status=run.status.value,
            scheduled_for=run.scheduled_for,
            finished_at=run.finished_at,
            result=run.result,
        )


def get_scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


# The endpoints are plain ``def``: FastAPI runs them in its thread pool, so the database calls they make
# never block the event loop.
SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]
router = APIRouter(prefix="/jobs")


@router.get("")
def list_jobs(scheduler: SchedulerDep) -> list[JobOut]:
    return [JobOut.of(job) for job in scheduler.jobs()]


@router.get("/{job_id}/runs")
def list_runs(job_id: str, scheduler: SchedulerDep, limit: int = 20) -> list[RunOut]:
    scheduler.get_job(job_id)  # 404 for an unknown job rather than an empty list
    return [RunOut.of(run) for run in scheduler.runs(job_id=job_id, limit=limit)]


@router.post("/{job_id}/pause")
def pause_job(job_id: str, scheduler: SchedulerDep) -> JobOut:
    return JobOut.of(scheduler.pause(job_id, by="api"))


@router.post("/{job_id}/resume")
def resume_job(job_id: str, scheduler: SchedulerDep) -> JobOut:
    """Resuming never replays the fires missed while paused: the job continues from its next fire."""
    return JobOut.of(scheduler.resume(job_id, by="api"))


@router.delete("/{job_id}", status_code=204)
def remove_job(job_id: str, scheduler: SchedulerDep) -> Response:
    """Delete the job and its history.  A job still declared in ``add_jobs`` comes back at the next start:
    to stop one for good, pause it, or remove it from the code."""
    scheduler.remove_job(job_id, by="api")
    return Response(status_code=204)


async def job_not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


def create_app(scheduler: Scheduler | None = None) -> FastAPI:
    """The app factory (``uvicorn app:create_app --factory``).  Pass a scheduler to choose its database and
    clock; by default it uses ``$CRONKEEPER_DB`` or ``fastapi_app.db`` in the working directory."""
    if scheduler is None:
        scheduler = Scheduler(os.environ.get("CRONKEEPER_DB", "sqlite:///fastapi_app.db"), timezone="UTC")
    add_jobs(scheduler)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler.start()  # a background thread; sync jobs run in its thread pool
        try:
            yield
        finally:
            # Running jobs get up to 30 s to finish; waiting in a thread keeps the event loop free meanwhile.
            await asyncio.to_thread(scheduler.stop)

    app = FastAPI(title="cronkeeper FastAPI example", lifespan=lifespan)
    app.state.scheduler = scheduler
    app.include_router(router)
    app.add_exception_handler(JobNotFoundError, job_not_found)
    return app


if __name__ == "__main__":
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check's chatter at each start
    uvicorn.run(create_app(), host="127.0.0.1", port=8000)
