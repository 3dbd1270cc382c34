"""``cronkeeper serve``: run the scheduler, and the dashboard beside it, until SIGTERM or SIGINT."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.config import Config, WebConfig, located
from cronkeeper.demo import DEMO_INBOX, demo_jobs
from cronkeeper.exceptions import CronkeeperError, ValidationError
from cronkeeper.models import NotifyOptions
from cronkeeper.scheduler import Scheduler, database_exists
from cronkeeper.services.builtin_jobs import ORIGIN as BUILTIN_ORIGIN
from cronkeeper.services.builtin_jobs import builtin_jobs
from cronkeeper.specs import build_spec, check_not_past

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
    configure_logging(log_level)
    # Like ``python -m``: jobs given as ``myproject.tasks:func`` import from the directory serve runs in.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    # Everything that can fail is checked before anything is written: the file and its jobs, then the port.
    declarations = declared_jobs(app, demo=demo, inbox=not no_web)
    settings = dataclasses.replace(web_settings(app.config.web, host, port), demo_inbox=demo)
    dashboard = None if no_web else Dashboard.listen(settings)
    scheduler = open_and_sync(app, declarations, dashboard)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not stop.is_set():
            log.info("received %s; stopping (running jobs get %ss; again to cancel them)", name, stop_timeout)
            stop.set()
            return
        log.info("received %s again; cancelling the running jobs now", name)
        # From a thread: the handler may have interrupted the very wait that hurry() ends.
        threading.Thread(target=scheduler.hurry, name="cronkeeper-hurry", daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    web: WebServer | None = None
    try:
        if dashboard is not None:
            web = start_web(app, scheduler, dashboard, log_level)
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
        # The dashboard stays up while running jobs finish, its /healthz answering "stopping".
        scheduler.stop(wait=True, timeout=stop_timeout)
        if web is not None:
            web.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")


def configure_logging(log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # At debug, Apprise and urllib3 log the URLs they post to, tokens and all: channel secrets stay out.
    for talkative in ("apprise", "urllib3"):
        logging.getLogger(talkative).setLevel(max(logging.INFO, logging.getLevelName(log_level.upper())))


def web_settings(web: WebConfig, host: str | None, port: int | None) -> WebSettings:
    """The defaults, overridden by the file's ``[web]``, overridden by the command line."""
    from cronkeeper.web.settings import WebSettings

    accepted = {item.name for item in dataclasses.fields(WebSettings)}
    # [web] public_url is for links in alerts, not for how the dashboard is served.
    chosen: dict[str, Any] = {
        key: value for key, value in dataclasses.asdict(web).items() if value is not None and key in accepted
    }
    chosen.update({key: value for key, value in (("host", host), ("port", port)) if value is not None})
    return dataclasses.replace(WebSettings(), **chosen)


@dataclasses.dataclass(frozen=True, slots=True)
class Dashboard:
    """The dashboard's settings and its port, taken before anything is written."""

    settings: WebSettings
    listener: socket.socket

    @classmethod
    def listen(cls, settings: WebSettings) -> Dashboard:
        """Take the port, or raise CronkeeperError saying why not.  The web stack is imported here, not at
        the top, so that every other command starts without it."""
        from cronkeeper.web.server import listen

        return cls(settings, listen(settings.host, settings.port))

    @property
    def inbox_url(self) -> str:
        """The demo inbox as a channel: this dashboard on its own port, over the loopback interface."""
        host = "[::1]" if ":" in self.settings.host else "127.0.0.1"
        return f"json://{host}:{self.listener.getsockname()[1]}/demo/inbox"


def open_and_sync(app: AppContext, declarations: list[Declaration], dashboard: Dashboard | None) -> Scheduler:
    """Open the database (made if need be, upgraded) and sync the declared jobs into it; the port is let go
    if that fails."""
    try:
        scheduler = app.scheduler()
        sync_notify(scheduler, app.config)
        if dashboard is not None and dashboard.settings.demo_inbox:
            scheduler.alerts.add_channel(
                DEMO_INBOX, dashboard.inbox_url, origin="demo", by="demo", via="demo"
            )
        sync_declared_jobs(scheduler, [*declarations, maintenance_declaration(app, scheduler)])
    except BaseException:
        if dashboard is not None:
            dashboard.listener.close()
        raise
    return scheduler


def start_web(app: AppContext, scheduler: Scheduler, dashboard: Dashboard, log_level: str) -> WebServer:
    """The dashboard serving on its port, then its first user if it has none."""
    from cronkeeper.web.app import create_app
    from cronkeeper.web.server import WebServer

    settings = dashboard.settings
    web = WebServer(
        create_app(scheduler, settings),
        dashboard.listener,
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


@dataclasses.dataclass(frozen=True, slots=True)
class Declaration:
    """A set of jobs ``serve`` keeps the database in line with: the file's, or the demo's."""

    where: str  # what errors and the log call it
    origin: str  # the origin of its jobs: only those are disabled when no longer declared
    by: str  # who the audit log says made the change
    jobs: list[dict[str, Any]]


def declared_jobs(app: AppContext, *, demo: bool, inbox: bool = False) -> list[Declaration]:
    """The jobs of the configuration file (and the demo jobs if asked), each one validated, with nothing
    opened or written yet: a bad job is reported naming it, before the database even exists."""
    config = app.config
    declarations = []
    if config.path is not None:
        declarations.append(Declaration(f"{config.path}", config.origin, "config", config.jobs()))
    if demo:
        declarations.append(Declaration("demo", "demo", "demo", demo_jobs(inbox=inbox)))
    now = datetime.now(UTC)
    # With no database yet every job is new, so a one-off already past is refused here too, before the
    # database is made (with one, a past one-off may be a job that ran: the sync decides).
    new_database = not database_exists(app.db_url)
    for declaration in declarations:
        for index, data in enumerate(declaration.jobs):
            try:
                spec = build_spec(data, default_timezone=config.timezone or "UTC", now=now)
                if new_database:
                    check_not_past(spec, now)
            except ValidationError as exc:
                raise located(exc, f"{declaration.where}: jobs[{index}]") from None
    return declarations


def sync_notify(scheduler: Scheduler, config: Config) -> None:
    """The file's channels (and the ``email`` channel of ``SMTP_*``) and its defaults for every job, before
    its jobs, which may name them."""
    where = str(config.path) if config.path is not None else "environment"
    via = f"config {where}"
    notify = config.notify
    synced = scheduler.alerts.sync_channels(notify.channels, origin=config.origin, by="config", via=via)
    if notify.defaults is not None:
        scheduler.alerts.set_defaults(notify.defaults, origin=config.origin, by="config", via=via)
        for name in scheduler.alerts.missing_channels(notify.defaults):
            log.warning("%s: notify.to: there is no channel named %r: alerts to it will fail", where, name)
    else:
        scheduler.alerts.clear_defaults(origin=config.origin, by="config", via=via)
    report = notify.report
    if report is not None and scheduler.alerts.missing_channels(NotifyOptions(channels=(report.channel,))):
        log.warning(
            "%s: notify.report: there is no channel named %r: the report will fail", where, report.channel
        )
    if synced.added or synced.updated or synced.removed:
        log.info(
            "%s: channels: %s added, %s updated, %s removed",
            where,
            ", ".join(synced.added) or "none",
            ", ".join(synced.updated) or "none",
            ", ".join(synced.removed) or "none",
        )


def maintenance_declaration(app: AppContext, scheduler: Scheduler) -> Declaration:
    """The built-in maintenance jobs ``[maintenance]`` asks for (checked with the file), declared at every
    start like the file's jobs: a job turned off there is disabled, keeping its history."""
    config = app.config
    jobs = builtin_jobs(config.maintenance, sqlite=scheduler.maintenance.sqlite, report=config.notify.report)
    return Declaration("maintenance", BUILTIN_ORIGIN, "cronkeeper", jobs)


def sync_declared_jobs(scheduler: Scheduler, declarations: list[Declaration]) -> None:
    """Bring the database in line with the declared jobs."""
    for declaration in declarations:
        where, origin, by = declaration.where, declaration.origin, declaration.by
        via = by if where == by else f"{by} {where}"
        report = scheduler.service.sync_jobs(declaration.jobs, origin=origin, by=by, via=via)
        declared = scheduler.service.find_jobs([*report.added, *report.updated, *report.unchanged])
        for job in declared:
            problem = scheduler.service.target_problem(job.spec)
            if problem is not None:
                log.warning("%s: job %s: %s", where, job.id, problem)
        gaps = scheduler.alerts.channel_gaps({job.id: job.spec.notify for job in declared})
        for job_id, names in gaps.items():
            log.warning("%s: job %s: notify: no channel named %s", where, job_id, ", ".join(map(repr, names)))
        log.info(
            "%s: %d added, %d updated, %d unchanged, %d disabled",
            where,
            len(report.added),
            len(report.updated),
            len(report.unchanged),
            len(report.disabled),
        )
