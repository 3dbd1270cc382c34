"""The web app: dashboard pages, the JSON API, /healthz and /metrics, as one ASGI application.

``cronkeeper serve`` runs it beside the scheduler.  An application of your own can mount it under a prefix
(``host.mount("/cron", create_app(scheduler))``) or, for a WSGI host such as Flask, take :func:`wsgi_app`.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING, cast

from a2wsgi import ASGIMiddleware
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import TimestampSigner
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from cronkeeper.exceptions import StoreError
from cronkeeper.web import api, api_alerts, login, pages
from cronkeeper.web.context import STATIC, TEMPLATES, WebContext
from cronkeeper.web.errors import install_error_handlers
from cronkeeper.web.filters import install_filters
from cronkeeper.web.metrics import Metrics
from cronkeeper.web.pages import demo
from cronkeeper.web.security import SecurityHeaders
from cronkeeper.web.settings import WebSettings

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from cronkeeper.scheduler import SchedulerBase


def create_app(scheduler: SchedulerBase, settings: WebSettings | None = None) -> FastAPI:
    """The dashboard and API over ``scheduler`` (which need not be running in this process: the database is
    the truth, so a web-only process shows what the scheduling processes do)."""
    settings = settings or WebSettings()
    accounts = scheduler.accounts
    signing_key = accounts.session_signing_key()
    templates = Jinja2Templates(directory=TEMPLATES)
    install_filters(templates.env)
    app = FastAPI(
        title="cronkeeper",
        version=version("cronkeeper"),
        summary="Scheduled jobs with a memory: jobs, runs and their history.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.cronkeeper = WebContext(
        scheduler=scheduler,
        accounts=accounts,
        settings=settings,
        templates=templates,
        signer=TimestampSigner(signing_key, salt="cronkeeper.session"),
        metrics=Metrics(scheduler, public=settings.public_metrics),
    )
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(login.router)
    app.include_router(api.router)
    app.include_router(api_alerts.router)
    app.include_router(pages.router)
    if settings.demo_inbox:
        app.include_router(demo.router)
    app.include_router(app.state.cronkeeper.metrics.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """For load balancers: 200 when the database answers, 503 when not or while the scheduler stops; no
        details either way."""
        if scheduler.stopping:
            return JSONResponse({"status": "stopping"}, status_code=503)
        try:
            await run_in_threadpool(scheduler.check_database)
        except StoreError:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app


def wsgi_app(scheduler: SchedulerBase, settings: WebSettings | None = None) -> WSGIApplication:
    """The same app for a WSGI host: ``DispatcherMiddleware(flask_app.wsgi_app, {"/cron": wsgi_app(s)})``."""
    middleware = ASGIMiddleware(create_app(scheduler, settings))  # type: ignore[arg-type]
    # a2wsgi types its own environ and start_response; the standard library's are what WSGI hosts take.
    return cast("WSGIApplication", middleware)
