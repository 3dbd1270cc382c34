"""The audit log: who changed what, when and from where, newest first, filtered and paged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cronkeeper.models import AuditEvent
from cronkeeper.store.records import AuditFilter
from cronkeeper.web.api_models import BeforeId
from cronkeeper.web.context import render, web_context
from cronkeeper.web.pages.common import PAGE_SIZE, Viewer, dashboard, paged, query_string, text

router = APIRouter()


@dataclass(frozen=True, slots=True)
class AuditLine:
    """An event as a row: ``link`` is the object's page, when it has one and still exists."""

    event: AuditEvent
    link: str | None
    details: list[tuple[str, str]]


def detail_rows(details: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Details as ``key: value`` text; an edit's ``{"from": a, "to": b}`` reads ``a → b``."""
    rows = []
    for key, value in (details or {}).items():
        if isinstance(value, dict) and value.keys() == {"from", "to"}:
            shown = f"{_compact(value['from'])} → {_compact(value['to'])}"
        else:
            shown = _compact(value)
        rows.append((str(key), shown))
    return rows


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _run_id(event: AuditEvent) -> int | None:
    if event.object_type != "run" or not event.object_id.isdigit():
        return None
    return int(event.object_id)


def _lines(request: Request, events: list[AuditEvent]) -> list[AuditLine]:
    """Links only to objects that still exist, found in two queries for the whole page."""
    job_ids = [event.object_id for event in events if event.object_type == "job"]
    run_ids = [run_id for run_id in map(_run_id, events) if run_id is not None]
    jobs, runs = dashboard(request).existing(job_ids, run_ids)
    lines = []
    for event in events:
        link = None
        if event.object_type == "job" and event.object_id in jobs:
            link = f"/jobs/{event.object_id}"
        elif _run_id(event) in runs:
            link = f"/runs/{event.object_id}"
        lines.append(AuditLine(event, link, detail_rows(event.details)))
    return lines


@router.get("/audit")
def audit_page(
    request: Request,
    _principal: Viewer,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    before_id: BeforeId = None,
) -> Response:
    audit_filter = AuditFilter(
        object_type=text(object_type),
        object_id=text(object_id),
        actor=text(actor),
        limit=PAGE_SIZE + 1,
        before_id=before_id,
    )
    events, more = paged(web_context(request).scheduler.audit.list(audit_filter))
    more = more and events[-1].id is not None
    filters = {"object_type": object_type or "", "object_id": object_id or "", "actor": actor or ""}
    context = {
        "nav": "audit",
        "lines": _lines(request, events),
        "filters": filters,
        "next_query": query_string(filters, before_id=events[-1].id) if more else None,
        "first_query": query_string(filters) if before_id is not None else None,
    }
    return render(request, "audit.html", context)
