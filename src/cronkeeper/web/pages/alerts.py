"""The alerts page: the channels (URLs masked; admins add, test and remove them) and the outbox, newest
first, with what became of each alert."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from cronkeeper.exceptions import ValidationError
from cronkeeper.store.records import AlertStatus
from cronkeeper.web.api_models import BeforeId
from cronkeeper.web.auth import client_address
from cronkeeper.web.context import render
from cronkeeper.web.pages.common import (
    PAGE_SIZE,
    Admin,
    Viewer,
    alerts,
    choice,
    paged,
    query_string,
    see_other,
    text,
)

router = APIRouter()


def _page(
    request: Request,
    *,
    status: str | None = None,
    channel: str | None = None,
    job_id: str | None = None,
    before_id: int | None = None,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    service = alerts(request)
    chosen = choice(AlertStatus, status, "status")
    found, more = paged(
        service.list_alerts(
            status=chosen,
            channel=text(channel),
            job_id=text(job_id),
            limit=PAGE_SIZE + 1,
            before_id=before_id,
        )
    )
    filters = {"status": status or "", "channel": channel or "", "job_id": job_id or ""}
    context = {
        "nav": "alerts",
        "channels": service.list_channels(),
        "alerts": found,
        "statuses": [member.value for member in AlertStatus],
        "filters": filters,
        "next_query": query_string(filters, before_id=found[-1].id) if more else None,
        "first_query": query_string(filters) if before_id is not None else None,
        "added": {"name": "", "url": ""},
        **(extra or {}),
    }
    return render(request, "alerts.html", context, status_code=status_code)


@router.get("/alerts")
def alerts_page(
    request: Request,
    _principal: Viewer,
    status: str | None = None,
    channel: str | None = None,
    job_id: str | None = None,
    before_id: BeforeId = None,
) -> Response:
    return _page(request, status=status, channel=channel, job_id=job_id, before_id=before_id)


@router.post("/channels")
def add_channel(
    request: Request, principal: Admin, name: Annotated[str, Form()] = "", url: Annotated[str, Form()] = ""
) -> Response:
    try:
        alerts(request).add_channel(name, url, origin="web", by=principal.name, via=client_address(request))
    except ValidationError as exc:
        # The URL is not shown back: it may hold a password.
        extra = {"error": exc, "added": {"name": name, "url": ""}}
        return _page(request, extra=extra, status_code=422)
    return see_other(request, "/alerts")


@router.post("/channels/{name}/test")
def test_channel(request: Request, name: str, principal: Admin) -> Response:
    error = alerts(request).test_channel(name, by=principal.name, via=client_address(request))
    return _page(request, extra={"tested": {"name": name, "error": error}})


@router.get("/channels/{name}/remove")
def confirm_remove(request: Request, name: str, _principal: Admin) -> Response:
    channel = alerts(request).get_channel(name)
    return render(request, "channel_remove.html", {"nav": "alerts", "channel": channel})


@router.post("/channels/{name}/remove")
def remove_channel(request: Request, name: str, principal: Admin) -> Response:
    alerts(request).remove_channel(name, by=principal.name, via=client_address(request))
    return see_other(request, "/alerts")
