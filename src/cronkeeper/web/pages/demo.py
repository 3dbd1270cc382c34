"""The demo inbox of ``serve --demo``: a channel inside the dashboard, so that a new user sees an alert arrive
without any outside service.  The demo's failing jobs alert the channel ``demo-inbox``, a ``json://`` URL to
this app; what Apprise posts is kept in memory (the last 50) and shown.  Mounted only in demo mode: the POST
takes no login, because Apprise sends none."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cronkeeper.web.context import render, web_context
from cronkeeper.web.pages.common import Viewer

router = APIRouter(include_in_schema=False)
MAX_BODY = 64 * 1024


@router.post("/demo/inbox")
async def receive(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_BODY:
        return Response(status_code=413)
    try:
        message: Any = json.loads(body)
    except ValueError:
        return Response(status_code=400)
    if not isinstance(message, dict):
        return Response(status_code=400)
    context = web_context(request)
    context.inbox.append(
        {
            "at": context.scheduler.clock.now(),
            "title": str(message.get("title", ""))[:300],
            "message": str(message.get("message", ""))[:MAX_BODY],
        }
    )
    return Response(status_code=204)


@router.get("/demo/inbox")
def inbox(request: Request, _principal: Viewer) -> Response:
    messages = list(reversed(web_context(request).inbox))
    return render(request, "demo_inbox.html", {"nav": "alerts", "messages": messages})
