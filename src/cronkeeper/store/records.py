"""The plain values the read contracts of :mod:`cronkeeper.store.base` take and return: pages of jobs with the
health of their recent runs, figures over a window of runs, nodes, audit filters.  Faces may import these
(they hold no database code)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cronkeeper.models import JobSpec, RunStatus
from cronkeeper.serialize import iso

# A verdict on whether the job works: these count towards the success rate.  Cancelled, missed and skipped
# runs say something about the schedule or an operator, not about the job, so they count neither way.
VERDICT_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST})
# Runs that ended on their own: only their durations say how long the job takes (a lost run's "duration"
# is when it was noticed, a cancelled one's when someone lost patience).
TIMED_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT})
# The verdicts against the job: what "last failure" and the failure counts mean.
FAILURE_STATUSES = VERDICT_STATUSES - {RunStatus.SUCCEEDED}


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
    next_fire_at: datetime | None = None

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
class RunWindow:
    """The runs a timeline may draw: the newest ``limit`` of those that overlap ``[since, until)`` (scheduled
    in it, scheduled up to six hours before it and running into it, or still going), of the jobs whose id
    contains ``job_contains``."""

    since: datetime
    until: datetime
    limit: int
    job_contains: str | None = None


@dataclass(frozen=True, slots=True)
class SpanRun:
    """A run as a timeline draws it: from its start (else the instant it was for) to its end (else now)."""

    id: int
    job_id: str
    status: RunStatus
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunRelations:
    """Where a run stands among its job's runs: the run before and after it (by id), and every attempt at the
    same fire (the first try and its retries, oldest first, the run itself included)."""

    previous_id: int | None
    next_id: int | None
    attempts: tuple[RecentRun, ...]


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
class RunMark:
    """One run that a figure points at: when it ended (as far as is known), and for a failure the start of
    its error, enough for a report line or an alert."""

    run_id: int
    at: datetime
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobStats:
    """How a job did over runs whose ``scheduled_for`` is in ``[since, until)`` (an open end when None).

    ``runs`` counts every status, zeros included.  ``success_rate`` and the failure count cover the verdicts
    only (VERDICT_STATUSES); durations (seconds, to the microsecond) only runs that ended on their own
    (TIMED_STATUSES).  ``median_seconds`` and ``p95_seconds`` are percentiles by linear interpolation between
    closest ranks (PostgreSQL's ``percentile_cont``, NumPy's default): for the sorted durations ``d[0..n-1]``
    the p-quantile is ``d[k] + f * (d[k+1] - d[k])`` where ``k + f = p * (n - 1)``.
    """

    job_id: str
    since: datetime | None
    until: datetime | None
    runs: dict[str, int]
    median_seconds: float | None = None
    p95_seconds: float | None = None
    max_seconds: float | None = None
    last_success: RunMark | None = None
    last_failure: RunMark | None = None

    @property
    def total(self) -> int:
        """Every run in the window, whatever its status."""
        return sum(self.runs.values())

    @property
    def finished(self) -> int:
        """Runs that have ended (every status but queued and running), records of fires that never ran
        (missed, skipped) included."""
        return sum(count for status, count in self.runs.items() if not RunStatus(status).is_active)

    @property
    def succeeded(self) -> int:
        return self.runs.get(RunStatus.SUCCEEDED.value, 0)

    @property
    def failures(self) -> int:
        """Verdicts against the job: failed, timed out or lost."""
        return sum(self.runs.get(status.value, 0) for status in FAILURE_STATUSES)

    @property
    def success_rate(self) -> float | None:
        """Succeeded over every verdict (succeeded, failed, timed out, lost); None without a verdict."""
        verdicts = self.succeeded + self.failures
        return self.succeeded / verdicts if verdicts else None


def stats_to_json(stats: JobStats) -> dict[str, Any]:
    """The JSON form of a job's figures, shared by ``jobs stats --json`` and the API (instants in UTC
    ISO-8601, durations in seconds); fields are only ever added."""
    return {
        "job_id": stats.job_id,
        "since": iso(stats.since),
        "until": iso(stats.until),
        "runs": stats.runs,
        "total": stats.total,
        "finished": stats.finished,
        "succeeded": stats.succeeded,
        "failures": stats.failures,
        "success_rate": stats.success_rate,
        "median_seconds": stats.median_seconds,
        "p95_seconds": stats.p95_seconds,
        "max_seconds": stats.max_seconds,
        "last_success": _mark_to_json(stats.last_success),
        "last_failure": _mark_to_json(stats.last_failure),
    }


def stats_report_to_json(
    found: Iterable[JobStats], since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Several jobs' figures over one window, as ``GET /api/stats`` and ``jobs stats --json`` give them."""
    return {"since": iso(since), "until": iso(until), "jobs": [stats_to_json(stats) for stats in found]}


def _mark_to_json(mark: RunMark | None) -> dict[str, Any] | None:
    if mark is None:
        return None
    return {"run_id": mark.run_id, "at": iso(mark.at), "error": mark.error}


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
class ChannelRecord:
    """A stored channel.  ``url`` holds credentials: faces show :func:`cronkeeper.alerts.channels.mask`ed
    forms only, never this."""

    name: str
    url: str
    origin: str
    created_at: datetime
    updated_at: datetime
    last_sent_at: datetime | None = None


class AlertStatus(StrEnum):
    """Where an alert is: waiting (or waiting for a retry), being sent by one node, delivered, or given up."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """A job's streak of bad outcomes: since when, how many in a row, and whether it was alerted yet (it is
    once ``notify_after`` bad outcomes are counted)."""

    id: int
    job_id: str
    opened_at: datetime
    failures: int
    alerted: bool
    first_run_id: int | None
    last_run_id: int | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert to one channel, as the outbox keeps it; ``facts`` is what its message says."""

    id: int
    kind: str
    channel: str
    job_id: str | None
    run_id: int | None
    status: AlertStatus
    created_at: datetime
    due_at: datetime
    attempts: int
    facts: dict[str, Any]
    delivered_at: datetime | None = None
    last_error: str | None = None
    attempt_log: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts to list, newest first; ``before_id`` pages on."""

    status: AlertStatus | None = None
    job_id: str | None = None
    channel: str | None = None
    limit: int = 50
    before_id: int | None = None


@dataclass(frozen=True, slots=True)
class Parcel:
    """Alerts a node claimed to send to one channel as one message; ``url`` is None when no channel of that
    name exists (the alerts then fail with that reason)."""

    channel: str
    url: str | None
    alerts: tuple[AlertRecord, ...]


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How sending one parcel went: ``error`` None when delivered; ``retry_at`` None gives up."""

    alert_ids: tuple[int, ...]
    error: str | None = None
    retry_at: datetime | None = None


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
    alerts: int = 0
    incidents: int = 0
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
            "alerts": self.alerts,
            "incidents": self.incidents,
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
