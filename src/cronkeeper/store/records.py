"""The plain values the read contracts of :mod:`cronkeeper.store.base` take and return: pages of jobs with the
health of their recent runs, nodes, audit filters.  Faces may import these (they hold no database code)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cronkeeper.models import JobSpec, RunStatus

# A verdict on whether the job works: these count towards the success rate.  Cancelled, missed and skipped
# runs say something about the schedule or an operator, not about the job, so they count neither way.
VERDICT_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST})
# Runs that ended on their own: only their durations say how long the job takes (a lost run's "duration"
# is when it was noticed, a cancelled one's when someone lost patience).
TIMED_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT})


class JobState(StrEnum):
    """What the jobs page filters on: disabled wins over paused (a disabled job fires whatever else)."""

    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class JobPageFilter:
    """Which jobs to list, by id; ``after_id`` is the last id of the previous page (keyset pagination)."""

    state: JobState | None = None
    search: str | None = None
    tag: str | None = None
    after_id: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job as the jobs page shows it."""

    id: str
    name: str
    spec: JobSpec
    enabled: bool
    paused: bool
    next_due_at: datetime | None

    @property
    def state(self) -> JobState:
        if not self.enabled:
            return JobState.DISABLED
        return JobState.PAUSED if self.paused else JobState.ACTIVE


@dataclass(frozen=True, slots=True)
class JobPage:
    """A page of jobs and where the next one starts (None on the last page)."""

    rows: list[JobRow]
    next_after: str | None


@dataclass(frozen=True, slots=True)
class RecentRun:
    """The little of a run that summaries and charts need: its duration comes computed by the database, and
    ``at`` is when it happened as far as is known (finished, else started, else the instant it was for)."""

    id: int
    job_id: str
    status: RunStatus
    at: datetime
    seconds: float | None

    @property
    def duration(self) -> timedelta | None:
        return None if self.seconds is None else timedelta(seconds=self.seconds)


@dataclass(frozen=True, slots=True)
class RunHealth:
    """How a job has been doing over its latest runs (see VERDICT_STATUSES and TIMED_STATUSES)."""

    last: RecentRun | None
    verdicts: int
    success_rate: float | None
    median_duration: timedelta | None
    durations: list[float]

    @classmethod
    def of(cls, recent: Sequence[RecentRun]) -> RunHealth:
        """From runs newest first; ``durations`` (seconds) come oldest first, as a chart reads them."""
        judged = [run for run in recent if run.status in VERDICT_STATUSES]
        succeeded = sum(run.status is RunStatus.SUCCEEDED for run in judged)
        timed = (run.seconds for run in reversed(recent) if run.status in TIMED_STATUSES)
        durations = [seconds for seconds in timed if seconds is not None]
        return cls(
            last=recent[0] if recent else None,
            verdicts=len(judged),
            success_rate=succeeded / len(judged) if judged else None,
            median_duration=timedelta(seconds=statistics.median(durations)) if durations else None,
            durations=durations,
        )


@dataclass(frozen=True, slots=True)
class Node:
    """A scheduler process that has heartbeated on this database."""

    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    live: bool


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events to list, newest first; ``before_id`` pages on."""

    object_type: str | None = None
    object_id: str | None = None
    actor: str | None = None
    limit: int = 50
    before_id: int | None = None


@dataclass(frozen=True, slots=True)
class Retention:
    """What pruning may delete, as instants and counts (None: that rule is off).

    Runs go when older than ``runs_before`` (by ``scheduled_for``) or beyond the newest ``runs_per_job`` of
    their job; the other tables hold bookkeeping that has no use past its instant.
    """

    runs_before: datetime | None
    runs_per_job: int | None
    audit_before: datetime | None
    sessions_expired_by: datetime
    idempotency_before: datetime
    login_attempts_before: datetime
    nodes_silent_since: datetime


@dataclass(frozen=True, slots=True)
class PruneReport:
    """How many rows pruning deleted (or, on a dry run, would delete), by what they were."""

    runs: int = 0
    audit_events: int = 0
    sessions: int = 0
    idempotency_keys: int = 0
    login_attempts: int = 0
    nodes: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts().values())

    def counts(self) -> dict[str, int]:
        """The counts by name: what a prune job returns as its result, and ``db prune --json`` prints."""
        return {
            "runs": self.runs,
            "audit_events": self.audit_events,
            "sessions": self.sessions,
            "idempotency_keys": self.idempotency_keys,
            "login_attempts": self.login_attempts,
            "nodes": self.nodes,
        }


@dataclass(frozen=True, slots=True)
class Housekeeping:
    """What housekeeping did: how far the write-ahead log was folded back into the database and whether it
    was emptied (SQLite; PostgreSQL's autovacuum does this itself, and ``done`` is False)."""

    done: bool
    wal_frames: int = 0
    checkpointed_frames: int = 0
    wal_truncated: bool = False
