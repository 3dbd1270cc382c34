"""How a scheduler runs: worker count, batch sizes, heartbeats and leases, polling and flush intervals.

Plain values, read by the engine and filled from ``[scheduler]`` in cronkeeper.toml; kept apart from the
engine so that reading a configuration file does not import the machinery that runs jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


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
