"""Following a run as it happens: server-sent events with its status and output.

The database is the truth and the run may be executing on another node, so the stream polls the run's row
(through the thread pool: reads block) rather than listening to this process's engine.  A stream can stay
open for as long as the run goes, so the credentials it was opened with are checked again before anything
new is sent, and every few seconds while nothing is: logging out, a password change, removing the user or
revoking the token ends it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from cronkeeper.exceptions import RunNotFoundError
from cronkeeper.services.runs import RunService
from cronkeeper.web.api_models import RunId
from cronkeeper.web.auth import Principal, _identify
from cronkeeper.web.pages.common import Viewer, run_service

router = APIRouter()
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 5.0


def event(name: str, data: object) -> str:
    """One SSE message; JSON never holds a raw newline, so the data fits on one ``data:`` line."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


class Credentials:
    """The stream's credentials, identified again as at connection (the same session or token lookup)."""

    def __init__(self, request: Request, principal: Principal) -> None:
        self.request = request
        self.name = principal.name
        self.checked = time.monotonic()

    async def still_valid(self, *, now: bool) -> bool:
        """Checked ``now`` (before news is sent), else only if the last check is ``RECHECK_SECONDS`` old."""
        if not now and time.monotonic() - self.checked < RECHECK_SECONDS:
            return True
        found = await run_in_threadpool(_identify, self.request)
        self.checked = time.monotonic()
        return found is not None and found.name == self.name


async def follow(
    request: Request, runs: RunService, run_id: int, credentials: Credentials
) -> AsyncIterator[str]:
    """``run`` whenever status or output change, ``end`` once the run has ended (or was deleted, or the
    credentials no longer hold: the page reloads, to the login form), and a comment now and then so that
    proxies keep a quiet stream open; stops when the client goes away."""
    last: tuple[str, str | None] | None = None
    quiet_since = time.monotonic()
    while True:
        try:
            run = await run_in_threadpool(runs.get_run, run_id)
        except RunNotFoundError:
            yield event("end", {"status": None})
            return
        state = (run.status.value, run.output)
        if not await credentials.still_valid(now=state != last):
            yield event("end", {"status": None})
            return
        if state != last:
            last, quiet_since = state, time.monotonic()
            yield event("run", {"status": run.status.value, "output": run.output})
        if not run.status.is_active:
            yield event("end", {"status": run.status.value})
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_SECONDS)
        if time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
            quiet_since = time.monotonic()
            yield ": still here\n\n"


@router.get("/runs/{run_id}/events")
async def run_events(request: Request, run_id: RunId, principal: Viewer) -> StreamingResponse:
    runs = run_service(request)
    await run_in_threadpool(runs.get_run, run_id)  # an unknown run is a 404, not an empty stream
    return StreamingResponse(
        follow(request, runs, run_id, Credentials(request, principal)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
