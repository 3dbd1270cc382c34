"""What every side of every scenario reports, and the few rules both sides measure by: one module with no
scheduler imported, so that a side run in another interpreter (another APScheduler) can use it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

#: Same worker count as cronkeeper's default pool, so neither side wins by having more threads.
WORKER_THREADS = 20
#: A run that starts at most this late counts as "on time".
ON_TIME_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class FireResult:
    """Figures for one firing scenario; all times are wall-clock, lateness is start minus scheduled time."""

    jobs: int
    interval_seconds: float
    seconds: float
    expected_fires: int
    executed_fires: int
    #: Runs APScheduler reported as EVENT_JOB_MISSED (started later than misfire_grace_time).
    missed_fires: int
    #: Runs dropped with EVENT_JOB_MAX_INSTANCES because the job's previous run had not finished.
    skipped_fires: int
    errored_fires: int
    percent_executed: float
    #: Runs that started at most ON_TIME_SECONDS late, as a percentage of expected fires.
    percent_on_time: float
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float
    #: Process CPU time (all threads) from scheduler start to the end of the drain, per executed fire.
    cpu_us_per_fire: float
    #: Rows in the ``runs`` table at the end; should equal executed + errored fires.
    history_rows: int
    #: Processes that executed runs (in-process sides: 1, or 0 if none ran).
    processes_executing: int = 1


@dataclass(frozen=True, slots=True)
class BulkResult:
    """Figures for adding many far-future jobs, idling with them, and restarting on the same file."""

    jobs: int
    jobs_added: int
    #: Wall seconds to add all ``jobs``; extrapolated linearly from ``jobs_added`` when ``extrapolated``.
    add_seconds: float
    add_seconds_measured: float
    extrapolated: bool
    #: Process CPU over the idle window as a percentage of one core, with nothing due.
    idle_cpu_percent: float
    #: From building a new engine and scheduler on the same file to ``get_jobs()`` answering.
    restart_ready_seconds: float
    restart_jobs_loaded: int
    #: Resident memory of the whole process while it idles with every job loaded.
    idle_rss_mb: float


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def percentile(ordered: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of an already sorted sequence; NaN when there is nothing to rank."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
    return ordered[rank - 1]
