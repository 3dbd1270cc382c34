"""The JSON API of alerts: channels (admins change them; anyone signed in sees them, URLs masked) and the
outbox (what each alert said and what became of it)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from cronkeeper.services.alerts import AlertService, alert_to_dict
from cronkeeper.web.api import ROUTER_OPTIONS, Admin, Viewer
from cronkeeper.web.api_models import (
    NOT_FOUND,
    AlertPage,
    BeforeId,
    ChannelIn,
    ChannelList,
    ChannelName,
    ChannelOut,
    ChannelTestOut,
    Limit,
)
from cronkeeper.web.auth import client_address
from cronkeeper.web.context import web_context

router = APIRouter(**ROUTER_OPTIONS)


def alerts(request: Request) -> AlertService:
    return web_context(request).scheduler.alerts


@router.get("/channels", tags=["alerts"], summary="List channels", response_model=ChannelList)
def list_channels(request: Request, _principal: Viewer) -> JSONResponse:
    return JSONResponse({"channels": [channel.to_dict() for channel in alerts(request).list_channels()]})


@router.put(
    "/channels/{name}", tags=["alerts"], summary="Add or replace a channel", response_model=ChannelOut
)
def put_channel(request: Request, name: ChannelName, body: ChannelIn, principal: Admin) -> JSONResponse:
    channel = alerts(request).add_channel(name, body.url, by=principal.name, via=client_address(request))
    return JSONResponse(channel.to_dict())


@router.delete(
    "/channels/{name}",
    tags=["alerts"],
    summary="Remove a channel",
    status_code=204,
    response_class=Response,
    responses=NOT_FOUND,
)
def delete_channel(request: Request, name: ChannelName, principal: Admin) -> Response:
    alerts(request).remove_channel(name, by=principal.name, via=client_address(request))
    return Response(status_code=204)


@router.post(
    "/channels/{name}/test",
    tags=["alerts"],
    summary="Send a test message",
    response_model=ChannelTestOut,
    responses=NOT_FOUND,
)
def test_channel(request: Request, name: ChannelName, principal: Admin) -> JSONResponse:
    """Sent at once, outside the outbox; the answer says whether the service took it, in its own words."""
    error = alerts(request).test_channel(name, by=principal.name, via=client_address(request))
    return JSONResponse({"delivered": error is None, "error": error})


@router.get("/alerts", tags=["alerts"], summary="Alerts, newest first", response_model=AlertPage)
def list_alerts(
    request: Request,
    _principal: Viewer,
    status: str | None = Query(None, description="pending, sending, delivered or failed."),
    job_id: str | None = Query(None, description="Only this job's."),
    channel: str | None = Query(None, description="Only this channel's."),
    limit: Limit = 50,
    before_id: BeforeId = None,
) -> JSONResponse:
    page = alerts(request).list_alerts(
        status=status, job_id=job_id, channel=channel, limit=limit, before_id=before_id
    )
    # A full page may have more after it (the next is then possibly empty); a short one is the last.
    after = page[-1].id if len(page) == limit else None
    return JSONResponse({"alerts": [alert_to_dict(alert) for alert in page], "next_before_id": after})
