"""Live status: what runs now, what waits, which nodes are alive, what failed lately.

The page polls a fragment of itself every few seconds (htmx), so it stays current without a script.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cronkeeper.models import RunStatus
from cronkeeper.web.context import render, web_context
from cronkeeper.web.pages.common import Viewer

router = APIRouter()
REFRESH_SECONDS = 5


def _state(request: Request) -> dict[str, Any]:
    scheduler = web_context(request).scheduler
    view = scheduler.status
    active = view.active_runs()
    return {
        "nav": "status",
        "running": [run for run in active if run.status is RunStatus.RUNNING],
        "queued": [run for run in active if run.status is RunStatus.QUEUED],
        "nodes": view.nodes(now=scheduler.clock.now(), lease=scheduler.settings.lease),
        "failures": view.recent_failures(),
        "refresh": REFRESH_SECONDS,
        "health": scheduler.health(),
    }


@router.get("/status")
def status_page(request: Request, _principal: Viewer) -> Response:
    return render(request, "status.html", _state(request))


@router.get("/status/live")
def status_fragment(request: Request, _principal: Viewer) -> Response:
    return render(request, "_status.html", _state(request))
