"""The dashboard's pages: server-rendered HTML, with htmx for the parts that update in place.

Each module serves one area; this package's ``router`` gathers them.  Handlers are plain ``def`` (Starlette
runs them in its thread pool, because the service does blocking database I/O), except the run follower,
which streams and polls through the thread pool.
"""

from __future__ import annotations

from fastapi import APIRouter

from cronkeeper.web.pages import alerts, audit, edit, job, jobs, live, preferences, runs, status, timeline

router = APIRouter(include_in_schema=False)
for module in (jobs, edit, job, runs, live, status, timeline, alerts, audit, preferences):
    router.include_router(module.router)

__all__ = ["router"]
