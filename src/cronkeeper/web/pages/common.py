"""What the page modules share: who may call them, the dashboard's read model, and reading filter input."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Request
from starlette.responses import RedirectResponse

from cronkeeper.exceptions import ValidationError
from cronkeeper.services.alerts import AlertService
from cronkeeper.services.jobs import JobService
from cronkeeper.services.runs import RunService
from cronkeeper.store.base import DashboardView
from cronkeeper.web.auth import Principal, admin, viewer
from cronkeeper.web.context import base_path, web_context

Viewer = Annotated[Principal, Depends(viewer)]
Admin = Annotated[Principal, Depends(admin)]
PAGE_SIZE = 50

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def service(request: Request) -> JobService:
    return web_context(request).scheduler.service


def run_service(request: Request) -> RunService:
    return web_context(request).scheduler.run_service


def alerts(request: Request) -> AlertService:
    return web_context(request).scheduler.alerts


def dashboard(request: Request) -> DashboardView:
    """The scheduler's view, which keeps parsed specs across requests (by job version)."""
    return web_context(request).scheduler.dashboard


def choice(kind: type[E], value: str | None, field: str) -> E | None:
    """A filter from a GET form: empty means "any"; anything else must be one of ``kind``'s values."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValidationError(field, f"must be one of {allowed}") from None


def text(value: str | None) -> str | None:
    """Trimmed form text, None when blank; NUL characters dropped (no database searches for them, and
    PostgreSQL refuses them in a query)."""
    value = (value or "").replace("\x00", "").strip()
    return value or None


def paged(rows: list[T]) -> tuple[list[T], bool]:
    """A page of rows read ``PAGE_SIZE + 1`` at a time: the page, and whether there is another after it (so
    that a page exactly full does not offer a link to an empty one)."""
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def query_string(filters: Mapping[str, str | int | None], **more: str | int | None) -> str:
    """The query of a pager link: the filters in force (blank ones left out) and where the page starts."""
    values = {**filters, **more}
    return urlencode({key: value for key, value in values.items() if value not in (None, "")})


def see_other(request: Request, path: str) -> RedirectResponse:
    """After a POST: 303, so that reloading the next page does not repeat the action."""
    return RedirectResponse(base_path(request) + path, status_code=303)
