"""``cronkeeper serve``: run the scheduler, and the dashboard beside it, until SIGTERM or SIGINT."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.config import WebConfig, located
from cronkeeper.demo import DEMO_JOBS
from cronkeeper.exceptions import CronkeeperError, ValidationError
from cronkeeper.scheduler import Scheduler

if TYPE_CHECKING:
    from cronkeeper.web.server import WebServer
    from cronkeeper.web.settings import WebSettings

log = logging.getLogger("cronkeeper.serve")
ADMIN_PASSWORD_VARIABLE = "CRONKEEPER_ADMIN_PASSWORD"


@click.command()
@click.option("--demo", is_flag=True, help="Install the demo jobs (ids starting with demo-).")
@click.option("--host", metavar="ADDRESS", help="Dashboard address [default: [web] host, else 127.0.0.1].")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Dashboard port [default: [web] port, else 8787]."
)
@click.option("--no-web", is_flag=True, help="Run the scheduler only: no dashboard, no API.")
@click.option("--stop-timeout", default=30.0, show_default=True, help="Seconds running jobs get at shutdown.")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@pass_app
def serve(
    app: AppContext,
    demo: bool,
    host: str | None,
    port: int | None,
    no_web: bool,
    stop_timeout: float,
    log_level: str,
) -> None:
    """Run the scheduler and the dashboard: fire jobs, record runs, until SIGTERM or SIGINT (a graceful
    stop)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Like ``python -m``: jobs given as ``myproject.tasks:func`` import from the directory serve runs in.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    scheduler = app.scheduler()
    sync_declared_jobs(app, scheduler, demo=demo)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping (running jobs get %ss)", signal.Signals(signum).name, stop_timeout)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    web: WebServer | None = None
    try:
        if not no_web:
            web = start_web(app, scheduler, web_settings(app.config.web, host, port), log_level)
        # Everything loaded so far lives as long as the service: keep it out of the collector's full passes,
        # which otherwise pause every thread for tens of milliseconds and make a burst of fires late.
        gc.collect()
        gc.freeze()
        scheduler.start()
        log.info(
            "cronkeeper serving %s with %d job(s); node %s",
            scheduler.database_url,
            len(scheduler.jobs()),
            scheduler.loop.owner if scheduler.loop else "?",
        )
        if web is not None:
            log.info("dashboard at %s", web.url)
        while not stop.wait(1.0):
            if web is not None and not web.running:
                raise CronkeeperError("the dashboard's web server stopped unexpectedly; see the log above")
    finally:
        if web is not None:
            web.stop()
        scheduler.stop(wait=True, timeout=stop_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")


def web_settings(web: WebConfig, host: str | None, port: int | None) -> WebSettings:
    """The defaults, overridden by the file's ``[web]``, overridden by the command line."""
    from cronkeeper.web.settings import WebSettings

    chosen: dict[str, Any] = {
        key: value for key, value in dataclasses.asdict(web).items() if value is not None
    }
    chosen.update({key: value for key, value in (("host", host), ("port", port)) if value is not None})
    return dataclasses.replace(WebSettings(), **chosen)


def start_web(app: AppContext, scheduler: Scheduler, settings: WebSettings, log_level: str) -> WebServer:
    """The dashboard listening, then its first user if it has none.  The web stack is imported here, not
    at the top, so that every other command starts without it."""
    from cronkeeper.web.app import create_app
    from cronkeeper.web.server import WebServer

    web = WebServer(
        create_app(scheduler, settings),
        settings.host,
        settings.port,
        # uvicorn's start-up chatter at info would repeat what serve logs; debug shows it, and every request.
        log_level="warning" if log_level == "info" else log_level,
        access_log=log_level == "debug",
        trust_proxy=settings.trust_proxy,
    )
    # Listening first: if the port is taken, no admin is created whose only showing of a password is lost.
    web.start()
    bootstrap_admin(app)
    return web


def bootstrap_admin(app: AppContext) -> None:
    """Give a new database its first dashboard user, so that the dashboard can be used at all; a generated
    password is shown this once (only its hash is stored), on stderr, apart from the log."""
    given = os.environ.get(ADMIN_PASSWORD_VARIABLE) or None
    try:
        created = app.accounts().bootstrap_admin(given)
    except ValidationError as exc:
        raise ValidationError(ADMIN_PASSWORD_VARIABLE, exc.reason) from None
    if created is None:
        return
    username, password = created
    if given is not None:
        log.info("created the dashboard user %s with the password from %s", username, ADMIN_PASSWORD_VARIABLE)
        return
    rule = "=" * 78
    click.echo(
        f"\n{rule}\n  dashboard login: {username} / {password}\n"
        f"  shown once; change it with `cronkeeper users passwd {username}`\n{rule}\n",
        err=True,
    )


def sync_declared_jobs(app: AppContext, scheduler: Scheduler, *, demo: bool) -> None:
    """Bring the database in line with the jobs of the configuration file (and the demo jobs if asked)."""
    config = app.config
    # (what errors and the log call it, the origin of its jobs, who the audit log says made the change)
    sources = [(f"{config.path}", config.origin, "config", config.jobs())] if config.path is not None else []
    if demo:
        sources.append(("demo", "demo", "demo", DEMO_JOBS))
    for where, origin, by, declared in sources:
        for index, data in enumerate(declared):
            try:
                scheduler.service.build(data)
            except ValidationError as exc:
                raise located(exc, f"{where}: jobs[{index}]") from None
        via = by if where == by else f"{by} {where}"
        report = scheduler.service.sync_jobs(declared, origin=origin, by=by, via=via)
        log.info(
            "%s: %d added, %d updated, %d unchanged, %d disabled",
            where,
            len(report.added),
            len(report.updated),
            len(report.unchanged),
            len(report.disabled),
        )
