"""The dashboard's pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cronkeeper.web.auth import Principal, viewer
from cronkeeper.web.context import render, web_context

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]


@router.get("/")
def jobs_page(request: Request, _principal: Viewer) -> Response:
    jobs = web_context(request).scheduler.service.list_jobs()
    return render(request, "jobs.html", {"jobs": jobs, "nav": "jobs"})
