"""How a scheduler runs: worker count, batch sizes, heartbeats and leases, polling and flush intervals; and
how its built-in maintenance jobs keep the database bounded.

Plain values, read by the engine and filled from ``[scheduler]`` and ``[maintenance]`` in cronkeeper.toml;
kept apart from the engine so that reading a configuration file does not import the machinery that runs jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cronkeeper.exceptions import ValidationError


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """Tuning knobs; the defaults suit one process on SQLite."""

    workers: int = 20
    batch_size: int = 500
    heartbeat_interval: timedelta = timedelta(seconds=5)
    lease: timedelta = timedelta(seconds=30)
    # How often to look for changes made by other processes (a CLI trigger, another node's edit) on SQLite.
    poll_interval: float = 5.0
    # How long to back off after the database failed before trying again.
    retry_store_after: float = 1.0
    # Fires due this soon are claimed ahead of time and started on the dot from memory, so the claim's
    # database work never makes a run late.
    lookahead: timedelta = timedelta(seconds=0.5)
    # Outcomes are written in batches at most this far apart (seconds): one transaction for many runs.
    flush_interval: float = 0.05
    # How often the output of running commands and isolated callables is written, to be followed live.
    progress_interval: timedelta = timedelta(seconds=1)
    # On PostgreSQL, a node whose clock is further than this from the database's claims nothing (it would
    # fire early or late) until its clock is set right; leases are judged by the database's clock anyway.
    max_clock_skew: timedelta = timedelta(seconds=5)
    # While a burst of runs due together is made ready and handed to the workers (100 ms at most), hold the
    # garbage collector's automatic passes off, so that a full one does not make every run of it late
    # (see cronkeeper.engine.collector).
    hold_gc_for_bursts: bool = True

    def __post_init__(self) -> None:
        # A live node's heartbeat is up to one interval old, and one may be put off a little while runs start:
        # a lease shorter than two intervals would let other nodes declare a live node's runs lost.
        if self.lease < 2 * self.heartbeat_interval:
            raise ValidationError("lease", "must be at least twice heartbeat_interval")


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How alerts are delivered: filled from ``[notify]`` and ``[web] public_url`` in cronkeeper.toml."""

    # Deliver alerts from this process.  Every live node delivers by default, each alert once; turning it off
    # leaves the outbox to the others.
    enabled: bool = True
    # At most one message per channel this often; what comes in between goes out as one grouped message.
    window: timedelta = timedelta(seconds=60)
    # A send that takes longer is abandoned and retried: a hung service costs a courier no more.
    send_timeout: float = 20.0
    # First retry of a failed delivery after this, doubling up to retry_cap; given up after give_up_after.
    retry_base: timedelta = timedelta(seconds=30)
    retry_cap: timedelta = timedelta(minutes=30)
    give_up_after: timedelta = timedelta(hours=24)
    # How often the outbox is looked at for alerts other nodes wrote (this node's own wake it at once).
    poll_interval: float = 2.0
    # A folder with title.txt, body.txt or body.html to use instead of the built-in templates.
    templates: Path | None = None
    # The dashboard's address as people reach it, for links to runs in messages.
    public_url: str | None = None


# What a run row costs in SQLite, measured (BENCHMARKS.md, retention; every index of ck_runs included): about
# 650 bytes with 200 bytes of output, about 1.5 KB with 1 KB.  A job firing every minute makes 525,600 runs a
# year, some 340 MB if nothing were deleted.  Kept for 90 days but never more than 10,000 runs, that job holds
# 10,000 runs (a week): about 6.5 MB, 15 MB with 1 KB outputs.  A job firing every quarter of an hour reaches
# 90 days (8,640 runs) before the count: ~5.6 MB.  So a database of a hundred minutely jobs stays under a
# gigabyte, and one of a few stays at tens of MB.  (The output limit, 64 KB by default, bounds the worst
# case: 10,000 runs of 64 KB each is 640 MB for one job.)
DEFAULT_KEEP_RUNS_FOR = timedelta(days=90)
DEFAULT_KEEP_RUNS_PER_JOB = 10_000
# The audit log answers "who changed this job last spring?": a year of it, which is small (one row a change).
DEFAULT_KEEP_AUDIT_FOR = timedelta(days=365)
DEFAULT_BACKUP_DIR = "backups"


@dataclass(frozen=True, slots=True)
class MaintenanceSettings:
    """The built-in maintenance jobs (``[maintenance]`` in cronkeeper.toml): on by default, each schedule a
    cron expression in UTC, or None to leave that job out.

    The times sit off the hour (03:17, 03:47, :23) so that they do not share a second with the many jobs
    people schedule on the hour.
    """

    enabled: bool = True
    prune: str | None = "17 3 * * *"
    backup: str | None = "47 3 * * *"
    housekeeping: str | None = "23 * * * *"
    keep_runs_for: timedelta = DEFAULT_KEEP_RUNS_FOR
    keep_runs_per_job: int = DEFAULT_KEEP_RUNS_PER_JOB
    keep_audit_for: timedelta = DEFAULT_KEEP_AUDIT_FOR
    keep_backups: int = 7
    # Where the backup job writes: relative to the database file's folder, or absolute.
    backup_dir: str = DEFAULT_BACKUP_DIR


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """The scheduled report (``[notify] report = "CHANNEL"``): every job's figures over the last ``period``,
    sent to ``channel`` as one message on ``schedule`` (a cron expression in UTC; Monday 08:00 by default)."""

    channel: str
    schedule: str = "0 8 * * 1"
    period: timedelta = timedelta(days=7)
