"""The storage contracts.  Each method's docstring is the contract every implementation must keep; the
contract test suites (tests/contract) run the same tests against every database.  The engine and the services
see the database only through these; the faces never see it at all.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cronkeeper.exceptions import JobNotFoundError
from cronkeeper.models import (
    NO_OUTCOME,
    ApiToken,
    AuditEvent,
    Job,
    JobSpec,
    NotifyOptions,
    Role,
    Run,
    RunOutcome,
    RunStatus,
    TriggerSource,
    User,
)
from cronkeeper.store.records import (
    AlertFilter,
    AlertRecord,
    AuditFilter,
    ChannelRecord,
    DeliveryResult,
    Housekeeping,
    IncidentRecord,
    JobPage,
    JobPageFilter,
    JobRow,
    JobStats,
    Node,
    Parcel,
    PruneReport,
    RecentRun,
    Retention,
    RunRelations,
    RunWindow,
    SpanRun,
)


# Not frozen: one is made per run, and a frozen dataclass's __init__ costs three times as much.
@dataclass(slots=True)
class StartOrder:
    """A claimed run the caller must now execute."""

    run_id: int
    spec: JobSpec
    scheduled_for: datetime
    due_at: datetime
    attempt: int
    trigger_source: TriggerSource
    triggered_by: str | None = None
    # The job's version when the run was claimed (None: not known, as for a queued run taken up): a run held
    # until due is checked against its job only if the version moved since.
    version: int | None = None
    # When it was claimed: one claimed once due was read with its job in that claim, and starts as claimed.
    claimed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What one claim wrote: runs to execute, records of fires that did not run, runs to cancel."""

    to_start: list[StartOrder] = field(default_factory=list)
    recorded: list[Run] = field(default_factory=list)
    to_cancel: list[int] = field(default_factory=list)


# Not frozen: one is made per run, and a frozen dataclass's __init__ costs three times as much.
@dataclass(slots=True)
class Completion:
    """The end of a run, reported by its owner: its status, times and ``outcome`` (written as they are);
    ``retry_at`` asks for another attempt at that instant."""

    run_id: int
    status: RunStatus
    started_at: datetime | None
    finished_at: datetime
    outcome: RunOutcome = NO_OUTCOME
    retry_at: datetime | None = None
    # The job asked to hear of runs that are not trouble (successes, runs with output): the store then reads
    # its notification policy, which it does not for other successes (they only close an open incident).
    reports_every_run: bool = False


@dataclass(frozen=True, slots=True)
class Checkin:
    """A run reported by a job that runs elsewhere.  ``status`` ``running`` starts a run (ended later by a
    check-in naming its ``run_id``); ``succeeded`` or ``failed`` ends that run, or is a whole run by itself
    (that took ``duration``, if known).  A new run moves the job's expectation to ``next_fire_at`` /
    ``next_due_at`` when ``moves_expectation``.  ``owner`` is the node of a ``cronkeeper exec`` that
    heartbeats while its command runs (its run is lost if it dies); None for an HTTP check-in."""

    job_id: str
    status: RunStatus
    run_id: int | None = None
    exit_code: int | None = None
    output: str | None = None
    error: str | None = None
    duration: timedelta | None = None
    by: str | None = None
    owner: str | None = None
    moves_expectation: bool = False
    next_fire_at: datetime | None = None
    next_due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs to list: newest first, ``before_id`` continues a page (keyset pagination).  ``since`` and
    ``until`` (aware UTC) bound ``scheduled_for``, the instant a run is for, to ``[since, until)``: a run
    belongs to the day it was meant for, whenever it actually ran."""

    job_id: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    sources: tuple[TriggerSource, ...] = ()
    before_id: int | None = None
    limit: int = 50
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job to insert, with its first fire already computed.

    ``spec`` is the stored form (:func:`cronkeeper.specs.spec_to_dict`), or that form already as JSON text.
    """

    id: str
    name: str
    spec: dict[str, Any] | str
    next_fire_at: datetime | None
    next_due_at: datetime | None
    paused: bool = False
    runs_on: str | None = None


class JobStore(ABC):
    """Jobs, runs and nodes in a database, whose constraints are what make double fires impossible."""

    # Set when recording outcomes wrote alerts (the incidents and the alerts are written in the same
    # transaction as the outcomes): this process's courier then delivers them without waiting for its poll.
    alerts_written: threading.Event

    # ---- jobs -------------------------------------------------------------------------------------------

    @abstractmethod
    def add_job(
        self,
        spec: JobSpec,
        *,
        next_fire_at: datetime | None,
        next_due_at: datetime | None,
        now: datetime,
        by: str | None,
        origin: str,
        paused: bool = False,
        runs_on: str | None = None,
    ) -> Job:
        """Insert a new job; raises ``JobExistsError`` if the id is taken, writing nothing."""

    @abstractmethod
    def add_jobs(self, new_jobs: Sequence[NewJob], *, now: datetime, by: str | None, origin: str) -> None:
        """Insert many jobs in one transaction: all or, if any id is taken (``JobExistsError``), none."""

    @abstractmethod
    def update_job(
        self,
        spec: JobSpec,
        *,
        next_fire_at: datetime | None,
        next_due_at: datetime | None,
        now: datetime,
        by: str | None,
        expected_version: int | None = None,
        enabled: bool | None = None,
    ) -> Job:
        """Replace a job's spec and next fire, bumping its version.

        Raises ``JobNotFoundError``, or ``ConflictError`` when ``expected_version`` is given and differs.
        """

    @abstractmethod
    def set_paused(
        self,
        job_id: str,
        paused: bool,
        *,
        next_fire_at: datetime | None,
        next_due_at: datetime | None,
        now: datetime,
        by: str | None,
        expected_version: int | None = None,
    ) -> Job:
        """Pause (the caller passes no next fire) or resume (the caller passes one computed from now), bumping
        the version.  Raises ``JobNotFoundError``, or ``ConflictError`` when ``expected_version`` is given and
        differs (compared in the same statement that writes)."""

    @abstractmethod
    def set_declared(self, job_id: str, *, origin: str, runs_on: str | None) -> Job:
        """Record which declaration holds a job (``origin``) and the scheduler object that alone can run it
        (``runs_on``; None: every node).  Not an edit of the definition: the version stays, so that a program
        declaring its jobs at every start (each time from a new object) does not count as changing them.
        Raises ``JobNotFoundError``."""

    @abstractmethod
    def find_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """The jobs with these ids, in the order given, in one read; ids with no job are left out."""

    @abstractmethod
    def job_versions(self, job_ids: Sequence[str]) -> dict[str, int]:
        """The version of each of these jobs that exists, in one light read (no specs)."""

    @abstractmethod
    def find_job(self, job_id: str) -> Job | None:
        """The job, or None."""

    def get_job(self, job_id: str) -> Job:
        """The job; raises ``JobNotFoundError``."""
        job = self.find_job(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    @abstractmethod
    def list_jobs(self, *, include_disabled: bool = True) -> list[Job]:
        """Every job ordered by id."""

    @abstractmethod
    def delete_job(self, job_id: str, *, expected_version: int | None = None) -> None:
        """Delete a job and its history; raises ``JobNotFoundError``, or ``ConflictError`` when
        ``expected_version`` is given and differs (compared in the same statement that deletes)."""

    # ---- the loop --------------------------------------------------------------------------------------

    @abstractmethod
    def claim_due(
        self,
        *,
        now: datetime,
        owner: str,
        limit: int,
        horizon: datetime | None = None,
        instance_id: str | None = None,
    ) -> ClaimResult:
        """In one transaction: for up to ``limit`` jobs whose ``next_due_at <= now`` ask
        :func:`cronkeeper.planning.plan_fires` what to do (so the misfire, catch-up and overlap rules are the
        same for every store), insert the run rows it plans (owned by ``owner``), advance each job's next
        fire, and take up to ``limit`` unowned queued runs (manual triggers, retries) whose
        ``due_at <= now``, subject to the job's overlap policy.  Jobs locked by another claimer are passed
        over, never waited for.  Each run row is unique on (job, scheduled_for, attempt), so a fire can be
        claimed once only.

        With ``horizon`` later than ``now``, jobs due by then are claimed ahead of time too, so the caller can
        start them on the dot; a job the overlap policy would hold back is left for its due time instead.

        Jobs with a ``runs_on`` (and their queued runs) are claimed only by the scheduler object of that
        ``instance_id``: their target exists nowhere else."""

    @abstractmethod
    def next_due_at(self, *, instance_id: str | None = None) -> datetime | None:
        """The earliest instant at which :meth:`claim_due` with this ``instance_id`` would find work."""

    @abstractmethod
    def count_due(self, *, until: datetime, limit: int, instance_id: str | None = None) -> int:
        """How many jobs this ``instance_id`` would claim are due by ``until``, counted up to ``limit``."""

    @abstractmethod
    def release_runs(self, run_ids: Sequence[int], *, owner: str) -> None:
        """Give back runs claimed ahead of time and not started: unowned and queued, any node takes them."""

    @abstractmethod
    def settle_claimed(
        self, skipped: Sequence[tuple[int, str]], dropped: Sequence[int], *, owner: str, now: datetime
    ) -> list[Run]:
        """End runs ``owner`` claimed ahead of time and will not start, because their job changed before they
        were due: record ``skipped`` ones (id, why) as such and delete ``dropped`` ones, in one transaction;
        runs no longer queued and owned by ``owner`` are left alone.  Returns the skipped runs recorded."""

    @abstractmethod
    def record_started(self, started: Sequence[tuple[int, datetime]], *, owner: str) -> None:
        """Mark queued runs of ``owner`` as running from the given instants."""

    @abstractmethod
    def record_finished(self, completions: Sequence[Completion], *, owner: str, now: datetime) -> list[int]:
        """Write outcomes of runs still active and owned by ``owner`` (fencing), insert the retries they ask
        for, and return the ids accepted.  An outcome for a run already declared lost, cancelled or timed out
        by someone else is refused, not written over the verdict."""

    @abstractmethod
    def record_progress(self, progress: Sequence[tuple[int, str]], *, owner: str) -> None:
        """Set the output of runs still ``running`` and owned by ``owner`` to the (run id, output) given, so
        that whoever follows a run sees its output while it runs.  Fenced like an outcome, and more: a run
        queued, ended (even if this write comes after its outcome), declared lost or owned by another node
        keeps the output it has."""

    @abstractmethod
    def heartbeat(self, *, owner: str, now: datetime, hostname: str, pid: int) -> list[int]:
        """Record that ``owner`` is alive; return ids of its active runs whose cancellation was requested."""

    @abstractmethod
    def database_time(self) -> datetime | None:
        """The database server's clock (aware UTC), for a cluster's leases; None for an embedded database,
        which shares its only node's clock."""

    @abstractmethod
    def retire_node(self, *, owner: str, now: datetime) -> None:
        """Note that ``owner`` stopped cleanly."""

    @abstractmethod
    def reap_lost(self, *, now: datetime, lease: timedelta) -> list[Run]:
        """Mark ``lost`` every active run whose owner has not heartbeated within ``lease`` (or never did and
        claimed it longer ago than ``lease``); return them."""

    # ---- runs ------------------------------------------------------------------------------------------

    @abstractmethod
    def flag_long_runs(self, *, now: datetime, owner: str) -> int:
        """Alert, once per run, the runs ``owner`` holds that are still going past their job's
        ``long_running``; returns how many alerts were written.  Cheap when no run is long."""

    @abstractmethod
    def flag_overdue(self, *, now: datetime, margin: timedelta) -> int:
        """Count as missed the fires of enabled, unpaused jobs that no scheduler started within their misfire
        grace plus ``margin``, each fire once whichever node looks, in the jobs' incidents, with the alerts
        that calls for; and end as ``timed_out`` the check-in runs whose end was not reported within their
        job's timeout.  Returns how many alerts were written.  Cheap when nothing is overdue."""

    @abstractmethod
    def enqueue_run(
        self, job_id: str, *, now: datetime, trigger_source: TriggerSource, triggered_by: str | None
    ) -> int:
        """Insert an unowned queued run due now (a manual trigger); raises ``JobNotFoundError``."""

    @abstractmethod
    def record_checkin(self, checkin: Checkin, *, now: datetime) -> Run:
        """Write a check-in (see :class:`Checkin`) and, for an ending, its incident and alerts, in one
        transaction.  Raises ``JobNotFoundError``, ``RunNotFoundError`` (no such run of the job) or
        ``ConflictError`` (the run is not a check-in still running)."""

    @abstractmethod
    def request_cancel(self, run_ids: Sequence[int], *, now: datetime) -> None:
        """Cancel queued runs nobody owns yet; ask the owners of the others to cancel theirs."""

    @abstractmethod
    def get_run(self, run_id: int) -> Run:
        """The run; raises ``RunNotFoundError``."""

    @abstractmethod
    def list_runs(self, run_filter: RunFilter) -> list[Run]:
        """Runs matching the filter, newest first."""

    @abstractmethod
    def announce_change(self) -> None:
        """Tell schedulers in other processes that jobs or queued runs changed (no-op where they poll)."""

    @abstractmethod
    def watch_changes(self, on_change: Callable[[], None], stop: threading.Event) -> threading.Thread | None:
        """Call ``on_change`` whenever another process announces a change, until ``stop`` is set; returns the
        watching thread, or None where changes are only noticed by polling."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class AccountStore(ABC):
    """Users, API tokens and sessions.  Only hashes of secrets are ever handed to it."""

    @abstractmethod
    def count_login_attempt(
        self, name_key: str, *, now: datetime, window: timedelta, limit: int
    ) -> datetime | None:
        """Count a login attempt for ``name_key`` at ``now``, unless it has ``limit`` attempts within
        ``window`` already: then count nothing and return when the oldest of them expires.  Atomic across
        every process on the database: concurrent attempts never let more than ``limit`` through."""

    @abstractmethod
    def clear_login_attempts(self, name_key: str) -> None:
        """Forget the attempts of ``name_key`` (a login succeeded)."""

    @abstractmethod
    def add_user(self, username: str, password_hash: str, role: Role, *, now: datetime) -> User:
        """Insert a user; raises ``ValidationError`` naming ``username`` if the name is taken."""

    @abstractmethod
    def find_user(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash, or None."""

    @abstractmethod
    def get_user_by_id(self, user_id: int) -> User | None:
        """The user with this id, or None."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Every user, by name."""

    @abstractmethod
    def count_users(self) -> int:
        """Zero when there is no user at all, else a positive number (not necessarily the exact count)."""

    @abstractmethod
    def set_password(self, username: str, password_hash: str, *, now: datetime) -> User:
        """Change the hash and end every session of the user; raises ``AccountNotFoundError``."""

    @abstractmethod
    def set_role(self, username: str, role: Role) -> User:
        """Change a user's role; raises ``AccountNotFoundError``."""

    @abstractmethod
    def set_time_zone(self, username: str, zone: str | None) -> User:
        """Keep the zone the user reads times in (checked by the caller); raises ``AccountNotFoundError``."""

    @abstractmethod
    def remove_user(self, username: str) -> None:
        """Delete the user and their sessions; raises ``AccountNotFoundError``."""

    @abstractmethod
    def add_token(self, name: str, token_hash: str, role: Role, *, by: str | None, now: datetime) -> ApiToken:
        """Insert a token; raises ``ValidationError`` naming ``name`` if the name is taken."""

    @abstractmethod
    def use_token(self, token_hash: str, *, now: datetime) -> ApiToken | None:
        """The token with this hash (None if there is none), its last use set to about ``now``."""

    @abstractmethod
    def list_tokens(self) -> list[ApiToken]:
        """Every token, by name."""

    @abstractmethod
    def remove_token(self, name: str) -> None:
        """Delete a token; raises ``AccountNotFoundError``."""

    @abstractmethod
    def add_session(
        self, id_hash: str, user_id: int, csrf_token: str, *, now: datetime, expires_at: datetime
    ) -> None:
        """Store a session (and drop the sessions expired by ``now``)."""

    @abstractmethod
    def find_session(self, id_hash: str, *, now: datetime) -> tuple[User, str] | None:
        """The user of a session still live at ``now``, and its CSRF token."""

    @abstractmethod
    def end_session(self, id_hash: str) -> None:
        """Delete a session (no error if it is gone already)."""


class SettingStore(ABC):
    """Values every node of a cluster must share, such as the key that signs session cookies."""

    @abstractmethod
    def setting(self, key: str, default: str) -> str:
        """The stored value of ``key``, storing ``default`` first if there is none.  The first writer wins, so
        every node ends up with the same value however many ask at once."""


class IdempotencyStore(ABC):
    """Idempotency keys of requests that queue runs: one run per key, however often the request is sent."""

    @abstractmethod
    def reserve_key(
        self,
        actor: str,
        key: str,
        job_id: str,
        *,
        now: datetime,
        forget_before: datetime,
        abandoned_before: datetime,
    ) -> tuple[str, int | None] | None:
        """Reserve ``key`` of ``actor``; None if it is new, else the job and run it already named (the run
        None while the first request is still in flight).  Keys reserved before ``forget_before`` are
        forgotten; a reservation without a run made before ``abandoned_before`` is taken over as if absent.
        Of concurrent reservations of one key exactly one wins."""

    @abstractmethod
    def settle_key(self, actor: str, key: str, run_id: int | None, *, reserved_at: datetime) -> None:
        """Record the run a reserved key produced, or give the key back (None) when the request failed.
        ``reserved_at`` identifies this request's reservation, which a later takeover replaced."""


class AuditLog(ABC):
    """The append-only record of who changed what, when and from where."""

    @abstractmethod
    def record(self, event: AuditEvent) -> None:
        """Append an event (over-long ids and sources are cut, never refused)."""

    @abstractmethod
    def list(self, audit_filter: AuditFilter) -> list[AuditEvent]:
        """Events matching the filter, newest first."""


class StatusView(ABC):
    """The cluster's state as the status page, /api/status and /metrics show it; each read is one indexed
    query whatever the size of the history."""

    @abstractmethod
    def nodes(self, *, now: datetime, lease: timedelta, since: timedelta = timedelta(days=1)) -> list[Node]:
        """Live nodes, and those stopped or silent within ``since``, most recent heartbeat first."""

    @abstractmethod
    def count_live_nodes(self, *, now: datetime, lease: timedelta) -> int:
        """How many schedulers heartbeated within ``lease`` and have not stopped."""

    @abstractmethod
    def active_runs(self, *, limit: int = 200) -> list[Run]:
        """Running and queued runs, oldest first."""

    @abstractmethod
    def count_active(self) -> dict[str, int]:
        """Queued and running runs in the cluster, by status."""

    @abstractmethod
    def recent_failures(self, *, limit: int = 20) -> list[Run]:
        """The latest failed, timed-out and lost runs, newest first."""

    @abstractmethod
    def counts_by_status(self) -> dict[str, int]:
        """How many runs are in each status over the whole history (zero for statuses with none)."""


class DashboardView(ABC):
    """The dashboard's busiest reads: a page of jobs and the health of their recent runs, in a fixed number of
    queries whatever the number of jobs or runs."""

    @abstractmethod
    def job_page(self, page: JobPageFilter) -> JobPage:
        """A page of jobs in id order, filtered; ``JobPage.next_after`` continues it."""

    @abstractmethod
    def recent_runs(self, job_ids: Iterable[str], per_job: int = 20) -> dict[str, list[RecentRun]]:
        """The latest ``per_job`` runs of each job, newest first."""

    @abstractmethod
    def existing(self, job_ids: Iterable[str], run_ids: Iterable[int]) -> tuple[set[str], set[int]]:
        """Which of these jobs and runs still exist."""

    @abstractmethod
    def outcome_counts(self, job_id: str, windows: Sequence[datetime]) -> list[dict[RunStatus, int]]:
        """For each instant of ``windows``: the job's runs scheduled since then, by status (none left out
        but zeros)."""

    @abstractmethod
    def busy_jobs(self, window: RunWindow) -> tuple[dict[str, int], bool]:
        """How many of the window's runs each job has, and whether the window holds more than its limit:
        what a timeline picks its lanes by, counted without reading the runs."""

    @abstractmethod
    def runs_in_window(self, window: RunWindow, job_ids: Collection[str]) -> list[SpanRun]:
        """The window's runs (the same ones :meth:`busy_jobs` counts) of these jobs: the few lanes a timeline
        draws, so that only their runs are read."""

    @abstractmethod
    def jobs_by_id(self, job_ids: Iterable[str]) -> dict[str, JobRow]:
        """These jobs, those that exist, by id."""

    @abstractmethod
    def next_up(self, limit: int) -> list[JobRow]:
        """The ``limit`` active jobs due soonest, soonest first (``JobRow.next_fire_at`` set)."""

    @abstractmethod
    def run_relations(self, run: Run) -> RunRelations:
        """The run's neighbours in its job's history and the attempts at its fire (a run page's links)."""


class AlertStore(ABC):
    """Channels, the notification defaults and the outbox of alerts.

    Alerts are written by :meth:`JobStore.record_finished` and :meth:`JobStore.reap_lost` with the outcomes
    they report; this contract hands them out for delivery, to one node at a time, and keeps what became of
    each attempt.
    """

    @abstractmethod
    def put_channel(self, name: str, url: str, *, origin: str, now: datetime) -> bool:
        """Add the channel or replace its URL and origin; True when it was new."""

    @abstractmethod
    def remove_channel(self, name: str) -> None:
        """Remove it; raises ``NotFoundError`` when there is none of that name.  Pending alerts to it stay,
        and fail when their turn comes (the channel is gone)."""

    @abstractmethod
    def find_channel(self, name: str) -> ChannelRecord | None: ...

    @abstractmethod
    def list_channels(self) -> list[ChannelRecord]: ...

    @abstractmethod
    def retire_channels(self, origin: str, keep: Sequence[str]) -> list[str]:
        """Remove the channels of ``origin`` not in ``keep`` (a configuration file no longer declares them);
        returns their names."""

    @abstractmethod
    def notify_defaults(self) -> NotifyOptions:
        """The options jobs take when they leave one unset (all None when never set)."""

    @abstractmethod
    def set_notify_defaults(self, options: NotifyOptions, *, origin: str) -> None:
        """Replace the defaults; ``origin`` says who set them (a configuration file, ``api``, ``cli``)."""

    @abstractmethod
    def clear_notify_defaults(self, *, origin: str | None = None) -> bool:
        """Forget the defaults (only if ``origin`` set them, when given); True when there were some."""

    @abstractmethod
    def claim_alerts(
        self,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        window: timedelta,
        limit: int = 1000,
        channels_at_once: int = 1,
    ) -> list[Parcel]:
        """Take, for ``lease``, every alert due for up to ``channels_at_once`` channels (at most ``limit``
        each), one parcel per channel: each alert goes to one node, and what waited for a channel goes out as
        one message.  A channel sent to less than ``window`` ago is passed over (its alerts wait), never
        holding up another; alerts whose sender died (lease past) are taken again."""

    @abstractmethod
    def record_deliveries(self, results: Sequence[DeliveryResult], *, owner: str, now: datetime) -> None:
        """Write how each parcel went: delivered, to be retried at ``retry_at``, or failed for good.  Only
        alerts ``owner`` still holds are written (a late sender whose lease passed changes nothing)."""

    @abstractmethod
    def enqueue_alert(self, kind: str, channel: str, facts: dict[str, Any], *, now: datetime) -> int:
        """Queue an alert that no outcome wrote (a test message); returns its id."""

    @abstractmethod
    def get_alert(self, alert_id: int) -> AlertRecord:
        """Raises ``NotFoundError`` when there is none."""

    @abstractmethod
    def list_alerts(self, alert_filter: AlertFilter) -> list[AlertRecord]: ...

    @abstractmethod
    def count_alerts(self) -> dict[str, int]:
        """Alerts by status (for /metrics)."""

    @abstractmethod
    def open_incident(self, job_id: str) -> IncidentRecord | None:
        """The job's open incident, if it is in one."""


class StatsView(ABC):
    """Figures about jobs over a window of their history, computed by the database (counts grouped, durations
    ranked) so that a report or an alert never reads the runs themselves."""

    @abstractmethod
    def job_stats(
        self, job_ids: Sequence[str] | None, *, since: datetime | None, until: datetime | None
    ) -> dict[str, JobStats]:
        """:class:`JobStats` of each job asked (every job when ``job_ids`` is None) that exists, in id order,
        over its runs whose ``scheduled_for`` is in ``[since, until)`` (aware UTC; None leaves that end
        open).  A job without runs there has zeros; ids with no job are left out."""


class MaintenanceStore(ABC):
    """Keeping the database itself bounded and safe: pruning, backups and housekeeping.  Schedulers keep
    running through all of it, so none of it may hold SQLite's write lock long enough to delay a fire."""

    @property
    @abstractmethod
    def file(self) -> Path | None:
        """The SQLite file the database lives in; None for a database on a server."""

    @property
    @abstractmethod
    def backup_suffix(self) -> str:
        """How the backups of this database end (``.sqlite3``, ``.dump``)."""

    @abstractmethod
    def prune(self, retention: Retention, *, batch_size: int, dry_run: bool = False) -> PruneReport:
        """Delete the rows ``retention`` lets go and count them by table; with ``dry_run`` only count them.

        Never a queued or running run, and never the latest run of a job (whatever its age: it is what the
        job's page shows as its last outcome).  Rows are deleted by id in transactions of at most
        ``batch_size`` rows, each chosen first by an index outside the transaction, with a pause after each
        that lets a scheduler waiting for the write lock take it: the lock is never held for long."""

    @abstractmethod
    def backup(self, destination: Path) -> int:
        """Write a consistent copy of the database to ``destination`` while schedulers go on writing, check
        it, and return its size in bytes.  The copy is written under another name and renamed once checked:
        on any failure (a full disk, a copy that does not pass) nothing is left at ``destination`` and
        ``StoreError`` says why.  Raises ``StoreError`` naming what to install when the tool a server
        database needs is missing."""

    @abstractmethod
    def check_backup(self, source: Path) -> None:
        """Raise ``StoreError`` unless ``source`` is a sound backup of a cronkeeper database that this version
        can open (not damaged, not from a newer version)."""

    @abstractmethod
    def restore(self, source: Path) -> None:
        """Replace the whole database with the backup ``source``, checked first, in one step: a reader sees
        the database before or after, never a mix.  The schema is then brought to this version's.  The caller
        makes sure that no scheduler is running on the database."""

    @abstractmethod
    def housekeep(self) -> Housekeeping:
        """Let the database refresh the planner statistics it finds stale and fold the write-ahead log back
        into the database file, never holding the write lock while waiting on a reader for longer than a few
        milliseconds."""
