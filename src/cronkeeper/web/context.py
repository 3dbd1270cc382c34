"""What every request handler reaches: the scheduler, accounts, settings and templates of this app."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from itsdangerous import TimestampSigner
from starlette.responses import Response

from cronkeeper.services.accounts import AccountService
from cronkeeper.web.settings import WebSettings
from cronkeeper.web.zones import reading_zone

if TYPE_CHECKING:
    from cronkeeper.scheduler import SchedulerBase
    from cronkeeper.web.metrics import Metrics

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")


@dataclass(slots=True)
class WebContext:
    scheduler: SchedulerBase
    accounts: AccountService
    settings: WebSettings
    templates: Jinja2Templates
    signer: TimestampSigner
    metrics: Metrics
    # The demo inbox's messages, newest last (``serve --demo`` only).
    inbox: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.cronkeeper
    return context


def base_path(request: Request) -> str:
    """The prefix the app is mounted under ('' at the root): every link in a page starts with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def relative_path(request: Request) -> str:
    """The request path inside this app, whatever prefix it is mounted under."""
    path = request.url.path
    base = base_path(request)
    return path[len(base) :] if base and path.startswith(base) else path


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    """A page or fragment, with what every template uses: the user, the CSRF token and the base path."""
    principal = getattr(request.state, "principal", None)
    reading = reading_zone(request, principal.time_zone if principal is not None else None)
    values = {
        "base": base_path(request),
        "principal": principal,
        "csrf_token": principal.csrf_token if principal is not None else None,
        "is_admin": principal is not None and principal.is_admin,
        "now": web_context(request).scheduler.clock.now(),
        "zone": reading.zone,
        "per_job_zone": reading.per_job,
        "reading": reading,
        **(context or {}),
    }
    return web_context(request).templates.TemplateResponse(request, template, values, status_code=status_code)
