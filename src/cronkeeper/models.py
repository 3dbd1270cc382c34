"""The domain's values: statuses and policies as StrEnums, jobs, targets and runs as frozen dataclasses.

Everything here is plain data.  Validation of user input happens once, in :mod:`cronkeeper.specs`; the store
turns rows into these objects; every face (library, CLI, web) reads them.
"""

from __future__ import annotations

import math
import random
import signal
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cronkeeper.triggers import Trigger

JSONDict = dict[str, Any]


class RunStatus(StrEnum):
    """Where a run is in its life; the last four never change once written."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"
    MISSED = "missed"
    SKIPPED = "skipped"

    @property
    def is_active(self) -> bool:
        """Queued or running: the run still has an owner who must finish it."""
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def is_retryable(self) -> bool:
        """Outcomes that a retry policy answers with another attempt."""
        return self in (RunStatus.FAILED, RunStatus.TIMED_OUT)


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class TriggerSource(StrEnum):
    """Why a run exists."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    CATCHUP = "catchup"
    API = "api"
    # Reported by the job itself, run outside cronkeeper (a check-in).
    CHECKIN = "checkin"


class Overlap(StrEnum):
    """What happens when a job is due while earlier runs of it are still active."""

    ALLOW = "allow"
    FORBID = "forbid"
    REPLACE = "replace"


class Catchup(StrEnum):
    """What happens to fires that were missed by more than the misfire grace."""

    ONCE = "once"
    SKIP = "skip"
    ALL = "all"


CATCHUP_ALL_CAP = 100


class AlertKind(StrEnum):
    """What an alert is about."""

    FAILED = "failed"
    TIMED_OUT = "timed_out"
    LOST = "lost"
    MISSED = "missed"
    LONG_RUNNING = "long_running"
    SUCCEEDED = "succeeded"
    RECOVERED = "recovered"
    # A run that printed something, whatever its status: what cron's MAILTO mailed.
    OUTPUT = "output"
    TEST = "test"
    # The scheduled report (not about one job).
    REPORT = "report"


@dataclass(frozen=True, slots=True)
class NotifyOptions:
    """A job's own notification options; each one left None is taken from the ``[notify]`` defaults, so that
    changing the defaults reaches every job that did not choose for itself."""

    channels: tuple[str, ...] | None = None
    on: frozenset[AlertKind] | None = None
    after: int | None = None
    every_failure: bool | None = None


@dataclass(frozen=True, slots=True)
class CallableTarget:
    """A Python function: an import path ``package.module:function`` with JSON arguments, never a pickle."""

    ref: str
    args: tuple[Any, ...] = ()
    kwargs: JSONDict = field(default_factory=dict)
    isolate: bool = False


@dataclass(frozen=True, slots=True)
class CommandTarget:
    """A program run as an argv list; ``shell`` is true only when the user asked for a shell explicitly."""

    argv: tuple[str, ...]
    shell: bool = False
    env: JSONDict = field(default_factory=dict)
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class CheckinTarget:
    """Nothing to run: the job runs elsewhere (system cron, a Kubernetes CronJob, CI) and reports its runs
    (``cronkeeper exec``, ``POST /api/jobs/{id}/checkins``); cronkeeper only expects them on schedule."""


Target = CallableTarget | CommandTarget | CheckinTarget

# ``Job.runs_on`` of a check-in job: no scheduler claims it; its fires are only watched for.
EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries after a failure or timeout: retry n waits ``base * factor**(n-1)``, capped, ± jitter."""

    max_retries: int = 0
    base: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    cap: timedelta = timedelta(seconds=30)
    jitter: float = 0.1

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """The wait before retry number ``attempt`` (1 for the first retry)."""
        try:
            grown = self.base.total_seconds() * self.factor ** (attempt - 1)
        except OverflowError:  # many retries of a steep backoff: the cap applies
            grown = math.inf
        seconds = min(grown, self.cap.total_seconds())
        if self.jitter:
            spread = seconds * self.jitter
            seconds += (rng or random).uniform(-spread, spread)
        return timedelta(seconds=max(seconds, 0.0))


@dataclass(frozen=True, slots=True)
class LongRunning:
    """When a run counts as running long: past a fixed duration, or past a multiple of the job's median
    duration (of its recent successful runs; not before it has any)."""

    after: timedelta | None = None
    times_median: float | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a user defines about a job; validated before it is built (see :mod:`cronkeeper.specs`)."""

    id: str
    target: Target
    trigger: Trigger
    name: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    timeout: timedelta | None = None
    retry: RetryPolicy = RetryPolicy()
    overlap: Overlap = Overlap.ALLOW
    max_instances: int = 1
    misfire_grace: timedelta = timedelta(seconds=60)
    catchup: Catchup = Catchup.ONCE
    jitter: timedelta = timedelta(0)
    output_limit: int = 64 * 1024
    notify: NotifyOptions = NotifyOptions()
    long_running: LongRunning | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def runs_elsewhere(self) -> bool:
        """A check-in job: it runs elsewhere and reports its runs; cronkeeper never starts it."""
        return isinstance(self.target, CheckinTarget)


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job: its spec plus the state the scheduler keeps about it."""

    spec: JobSpec
    enabled: bool
    paused: bool
    next_fire_at: datetime | None
    next_due_at: datetime | None
    version: int
    origin: str
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    updated_by: str | None = None
    # The scheduler object that alone can run the job (its ``instance_id``), when the target is a callable
    # only that object holds (a bound method, a lambda); None when any process can import it.
    runs_on: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """What a run left behind when it ended, besides its status and times: the one declaration of these
    fields.

    A runner's :class:`~cronkeeper.executors.Execution` and the store's ``Completion`` hold one, a
    :class:`Run` is one (so ``run.output`` and the rest stay plain attributes), and the columns an outcome
    writes are :data:`OUTCOME_FIELDS`; a new field is added here and in the schema (with its migration), and
    travels from the runner to the database and back without another copy by hand.  Keyword-only, so that
    :class:`Run`'s own fields keep their positions.
    """

    exit_code: int | None = None
    output: str | None = None
    error: str | None = None
    traceback: str | None = None
    result: JSONDict | None = None
    peak_memory_bytes: int | None = None
    cpu_time: float | None = None


# The names of RunOutcome's fields, once: outcomes are written thousands per second, by getattr over these
# names, where dataclasses.asdict would deep-copy every result.
OUTCOME_FIELDS: tuple[str, ...] = tuple(item.name for item in fields(RunOutcome))

# No outcome (yet): what an Execution or Completion holds unless given one; frozen, so one instance is shared.
NO_OUTCOME = RunOutcome()


@dataclass(frozen=True, slots=True)
class Run(RunOutcome):
    """One record of history: a run that happened, is happening, or was missed or skipped; its outcome
    fields (:class:`RunOutcome`) are empty until it ends."""

    id: int
    job_id: str
    scheduled_for: datetime
    attempt: int
    status: RunStatus
    trigger_source: TriggerSource
    due_at: datetime
    queued_at: datetime
    parent_run_id: int | None = None
    triggered_by: str | None = None
    owner: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def lateness(self) -> timedelta | None:
        """How long after it was due the run started."""
        return None if self.started_at is None else self.started_at - self.due_at


def exit_code_text(code: int) -> str:
    """An exit code as people read it: a negative one is the signal that ended the process
    (``-15 (SIGTERM)``); one above 128 is how a shell reports a command a signal ended
    (``137 (128 + SIGKILL)``)."""
    if code < 0:
        return f"{code} ({_signal_name(-code)})"
    if 128 < code < 128 + 65:
        return f"{code} (128 + {_signal_name(code - 128)})"
    return str(code)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True, slots=True)
class LoopHealth:
    """How a process's scheduler loop is doing (for /metrics and /api/status); ``node`` is None where no loop
    was ever started in the process."""

    running: bool = False
    node: str | None = None
    last_loop_at: datetime | None = None
    loop_errors: int = 0
    # How far the database's clock is ahead of this process's (PostgreSQL; None where not measured), and
    # whether that is too far to claim by (``SchedulerSettings.max_clock_skew``).
    clock_skew: float | None = None
    clock_too_far: bool = False


class Role(StrEnum):
    """What a user or API token may do: viewers read, admins also change; a check-in token may only report
    runs of check-in jobs (what a crontab line or a CI step is given, so that it can do nothing else)."""

    ADMIN = "admin"
    VIEWER = "viewer"
    CHECKIN = "checkin"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    created_at: datetime
    password_changed_at: datetime
    # The zone the user reads times in on the dashboard: an IANA name, JOB_ZONE, or None for the browser's.
    time_zone: str | None = None


# A user's choice to read each instant in the zone of the job it belongs to.
JOB_ZONE = "job"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's record; the secret itself is shown once at creation and only its hash is kept."""

    id: int
    name: str
    role: Role
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what to which object, when, and from where (an address, ``cli``, ``config``…)."""

    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: JSONDict | None = None
    via: str | None = None
    id: int | None = None
