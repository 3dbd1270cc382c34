"""``cronkeeper serve``: run the scheduler until SIGTERM or SIGINT."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from types import FrameType

import click
from sqlalchemy.engine import make_url

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.config import located
from cronkeeper.demo import DEMO_JOBS
from cronkeeper.exceptions import ValidationError
from cronkeeper.scheduler import Scheduler

log = logging.getLogger("cronkeeper.serve")


@click.command()
@click.option("--demo", is_flag=True, help="Install the demo jobs (ids starting with demo-).")
@click.option("--stop-timeout", default=30.0, show_default=True, help="Seconds running jobs get at shutdown.")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@pass_app
def serve(app: AppContext, demo: bool, stop_timeout: float, log_level: str) -> None:
    """Run the scheduler: fire jobs, record runs, until SIGTERM or SIGINT (a graceful stop)."""
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
    try:
        # Everything loaded so far lives as long as the service: keep it out of the collector's full passes,
        # which otherwise pause every thread for tens of milliseconds and make a burst of fires late.
        gc.collect()
        gc.freeze()
        scheduler.start()
        log.info(
            "cronkeeper serving %s with %d job(s); node %s",
            make_url(app.db_url).render_as_string(hide_password=True),
            len(scheduler.jobs()),
            scheduler.engine.owner if scheduler.engine else "?",
        )
        while not stop.wait(1.0):
            pass
    finally:
        scheduler.stop(wait=True, timeout=stop_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")


def sync_declared_jobs(app: AppContext, scheduler: Scheduler, *, demo: bool) -> None:
    """Bring the database in line with the jobs of the configuration file (and the demo jobs if asked)."""
    config = app.config
    sources = [(f"{config.path}", "config", config.jobs)] if config.path is not None else []
    if demo:
        sources.append(("demo", "demo", DEMO_JOBS))
    for where, origin, declared in sources:
        for index, data in enumerate(declared):
            try:
                scheduler.service.build(data)
            except ValidationError as exc:
                raise located(exc, f"{where}: jobs[{index}]") from None
        report = scheduler.service.sync_jobs(declared, origin=origin, by=origin)
        log.info(
            "%s: %d added, %d updated, %d unchanged, %d disabled",
            where,
            len(report.added),
            len(report.updated),
            len(report.unchanged),
            len(report.disabled),
        )
