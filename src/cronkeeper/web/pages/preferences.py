"""A reader's own preferences: the zone the dashboard shows times in, kept with the account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from cronkeeper.exceptions import ValidationError
from cronkeeper.web.auth import PermissionDenied
from cronkeeper.web.context import web_context
from cronkeeper.web.pages.common import Viewer, see_other

router = APIRouter()


@router.post("/preferences/time-zone")
def set_time_zone(
    request: Request,
    principal: Viewer,
    time_zone: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "/",
) -> Response:
    """Blank: the browser's zone; ``UTC``, ``job`` (each job's own) or an IANA name.  Back to the page it was
    chosen on (a path of this site only)."""
    if principal.name.startswith("token:"):
        raise PermissionDenied("an API token has no preferences")
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        raise ValidationError("back", "must be a path of this site")
    web_context(request).accounts.set_time_zone(principal.name, time_zone.strip() or None)
    return see_other(request, back)
