"""A service that reads which jobs to run, and how often, from its own TOML file, and never crashes on a bad
job.

Each ``[jobs.NAME]`` table switches one of the service's functions (``TASKS``) on or off, and says when it
runs::

    [jobs.cleanup]
    enabled = true
    every = "10m"                # or cron = "*/10 * * * *"; any cronkeeper job option works (timeout...)
    kwargs = { directory = "tmp", max_age_hours = 24 }

- An entry that cannot be used (a job the service does not have, an unknown option, an interval such as
  ``"10 minutes"``) is logged and reported with the field at fault, and skipped; the other jobs still run.
  Entries are checked by cronkeeper's own validation, so its messages are the ones you get.
- A job that raises is a failed run, recorded with its error and traceback and logged by cronkeeper; its next
  fire goes ahead as usual, and so do the other jobs.
- A job switched off (``enabled = false``), left out of the file, or skipped as invalid is disabled, not
  deleted, so its history stays.  A file that is not valid TOML stops the start with the parser's message.

Run it (``service.toml`` or ``$SERVICE_CONFIG``; history in ``toml_service.db`` or ``$CRONKEEPER_DB``)::

    cd examples/toml_service
    python app.py
    cronkeeper --db sqlite:///toml_service.db runs list --status failed     # from another terminal
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cronkeeper import Clock, Scheduler, ValidationError

log = logging.getLogger("toml_service")
ORIGIN = "service.toml"  # the jobs this file owns: those it no longer declares are disabled

# ---- the tasks the file can switch on ----------------------------------------------------------------------


def cleanup(directory: str = "tmp", max_age_hours: float = 24) -> dict[str, int]:
    """Delete the files in ``directory`` not modified for ``max_age_hours``."""
    cutoff = time.time() - max_age_hours * 3600
    old = [path for path in Path(directory).glob("*") if path.is_file() and path.stat().st_mtime < cutoff]
    for path in old:
        path.unlink()
    return {"removed": len(old)}


def import_feed(path: str = "inbox/feed.csv") -> dict[str, int]:
    """Import a partner's feed.  No try/except here: a missing file fails the run, never the service."""
    rows = Path(path).read_text(encoding="utf-8").splitlines()
    return {"items_processed": len(rows)}


def heartbeat() -> None:
    log.info("still alive")


def send_report(recipients: list[str] | None = None) -> dict[str, int]:
    """Stand-in for e-mailing a summary."""
    return {"sent": len(recipients or [])}


TASKS: dict[str, Callable[..., Any]] = {
    "cleanup": cleanup,
    "import_feed": import_feed,
    "heartbeat": heartbeat,
    "send_report": send_report,
}

# ---- reading the file --------------------------------------------------------------------------------------

Definition = dict[str, Any]  # a job as add_job, a [[jobs]] table of cronkeeper.toml or the JSON API take it


@dataclass(frozen=True, slots=True)
class Problem:
    """A skipped entry: ``field`` is where in the file (``jobs.cleanup.every``), ``reason`` what is wrong."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def job_definition(name: str, table: Any, scheduler: Scheduler) -> Definition | None:
    """The cronkeeper job an entry declares, or None when it is switched off; raises ValidationError naming
    the field at fault (relative to the entry)."""
    if not isinstance(table, dict):
        raise ValidationError("", "must be a table")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled", "must be true or false")
    task = TASKS.get(name)
    if task is None:
        raise ValidationError("", f"no such job (this service has {', '.join(sorted(TASKS))})")
    if not enabled:
        return None
    options = {key: value for key, value in table.items() if key != "enabled"}
    # The function is registered under its import path, which is how cronkeeper stores a job's target.
    data = {**options, "id": name, "call": scheduler.register(task)}
    scheduler.validate(data)  # validate this entry alone, so that it cannot fail the others
    return data


def declared_jobs(
    settings: Mapping[str, Any], scheduler: Scheduler
) -> tuple[list[Definition], list[Problem]]:
    """The usable, switched-on jobs of the file, and a problem for each entry that cannot be used."""
    tables = settings.get("jobs", {})
    if not isinstance(tables, dict):  # [[jobs]], as in cronkeeper.toml: the whole file is misread, stop
        raise ValidationError("jobs", "must be [jobs.NAME] tables, one per job")
    declared: list[Definition] = []
    problems: list[Problem] = []
    for name, table in tables.items():
        try:
            data = job_definition(name, table, scheduler)
        except ValidationError as exc:
            problem = Problem(".".join(part for part in ("jobs", name, exc.field) if part), exc.reason)
            log.error("skipped %s", problem)
            problems.append(problem)
            continue
        if data is not None:
            declared.append(data)
    return declared, problems


def build(
    config: Path | None = None, db_url: str | None = None, *, clock: Clock | None = None
) -> tuple[Scheduler, list[Problem]]:
    """The scheduler with the jobs of ``config`` in place (not started), and the entries it had to skip."""
    config = config or Path(os.environ.get("SERVICE_CONFIG", "service.toml"))
    settings = tomllib.loads(config.read_text(encoding="utf-8"))  # before opening anything: may raise
    scheduler = Scheduler(db_url or os.environ.get("CRONKEEPER_DB", "sqlite:///toml_service.db"), clock=clock)
    declared, problems = declared_jobs(settings, scheduler)
    # Adds new jobs, updates changed ones, disables those the file switched off or no longer declares.
    scheduler.sync_jobs(declared, origin=ORIGIN)
    return scheduler, problems


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check's chatter at each start
    scheduler, problems = build()
    if problems:
        print(f"{len(problems)} job(s) skipped; fix them in the file and restart:")
        for problem in problems:
            print(f"  {problem}")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    scheduler.start()
    stop.wait()
    scheduler.close()  # running jobs get up to 30 s to finish


if __name__ == "__main__":
    main()
