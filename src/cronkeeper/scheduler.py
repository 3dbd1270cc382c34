"""The library's faces: :class:`Scheduler` runs the engine in a background thread; :class:`AsyncScheduler`
does the same and runs coroutine jobs on the caller's event loop.  Both share every other method: only
starting and stopping differ, so there are no ``x``/``x_async`` twins.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

from cronkeeper.alerts.courier import Courier
from cronkeeper.clock import Clock, SystemClock
from cronkeeper.engine.loop import SchedulerLoop
from cronkeeper.events import EventKind, Listener, Listeners
from cronkeeper.exceptions import SchedulerStateError, ValidationError
from cronkeeper.models import (
    CallableTarget,
    Job,
    JobSpec,
    LoopHealth,
    Run,
    RunStatus,
    TriggerSource,
)
from cronkeeper.registry import Registry
from cronkeeper.services.accounts import AccountService
from cronkeeper.services.alerts import AlertService
from cronkeeper.services.builtin_jobs import Builtins, serving
from cronkeeper.services.changes import ChangeLog
from cronkeeper.services.jobs import JobService, SyncReport
from cronkeeper.services.maintenance import MaintenanceService
from cronkeeper.services.runs import RunService
from cronkeeper.settings import DeliverySettings, SchedulerSettings
from cronkeeper.store.base import AuditLog, DashboardView, JobStore, StatusView
from cronkeeper.store.database import Database
from cronkeeper.store.records import JobStats

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_DB = "sqlite:///cronkeeper.db"


def database_exists(url: str | Path) -> bool:
    """False for a SQLite file that is not there (opening it would create it); other databases exist."""
    return Database.exists(url)


class SchedulerBase:
    """Everything but start and stop."""

    # The scheduler objects of this process that are not closed, by instance_id.  Process-wide by nature: a
    # job declared without an id by a second object of one class (each with its own bound method) must not
    # take the first object's job over, while an object closed and made again may take its jobs back.
    _open: ClassVar[weakref.WeakValueDictionary[str, SchedulerBase]] = weakref.WeakValueDictionary()

    def __init__(
        self,
        db: str | Path = DEFAULT_DB,
        *,
        timezone: str = "UTC",
        clock: Clock | None = None,
        settings: SchedulerSettings | None = None,
        delivery: DeliverySettings | None = None,
        migrate: bool = True,
    ) -> None:
        self.clock = clock or SystemClock()
        # Names this object in the jobs only it can run (Job.runs_on): host, pid and a random part.
        self.instance_id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._open[self.instance_id] = self
        self._database = Database(db, migrate=migrate)
        self.store: JobStore = self._database.jobs
        self.registry = Registry()
        self.listeners = Listeners()
        self.settings = settings or SchedulerSettings()
        self.loop: SchedulerLoop | None = None
        # The services and read views every face uses; none of them is handed the database itself.
        self.audit: AuditLog = self._database.audit
        self.status: StatusView = self._database.status
        self.dashboard: DashboardView = self._database.dashboard
        changes = ChangeLog(self.store, self.clock, audit=self.audit, on_change=self._wake)
        self.service = JobService(
            self.store,
            self.clock,
            changes,
            default_timezone=timezone,
            placement=self._runs_on,
            registry=self.registry,
        )
        self.run_service = RunService(
            self.store,
            self.clock,
            changes,
            stats=self._database.stats,
            idempotency=self._database.idempotency,
            on_cancel=self._cancel_local,
        )
        self.accounts = AccountService(
            self._database.accounts, self._database.settings, self.audit, self.clock
        )
        self.delivery = delivery or DeliverySettings()
        self.alerts = AlertService(self._database.alerts, self.clock, changes, delivery=self.delivery)
        self._courier: Courier | None = None
        self.maintenance = MaintenanceService(
            self._database.maintenance, self.status, self.clock, lease=self.settings.lease
        )

    def _runs_on(self, spec: JobSpec) -> str | None:
        """This object, for a job whose target only its registry holds; None when any process can run it."""
        target = spec.target
        if not isinstance(target, CallableTarget) or not self.registry.is_local(target.ref):
            return None
        if target.isolate:
            raise ValidationError(
                "isolate",
                f"{target.ref} exists only in this process (a bound method, lambda or local function), so a "
                "child process cannot import it; pass an importable function",
            )
        return self.instance_id

    def _unclaimed_id(self, job_id: str) -> str:
        """``job_id``, or ``job_id-2``, ``-3``…: the first not held by another open scheduler object of this
        process for a target of its own (for jobs declared without an id)."""
        candidate, count = job_id, 1
        while True:
            job = self.service.find_job(candidate)
            home = None if job is None else job.runs_on
            if home is None or home == self.instance_id or home not in self._open:
                return candidate
            count += 1
            candidate = f"{job_id}-{count}"

    @classmethod
    def is_open_instance(cls, instance_id: str) -> bool:
        """Whether ``instance_id`` is a scheduler object of this process that is not closed."""
        return instance_id in cls._open

    def _leave_open(self) -> None:
        """This object is done: another one of this process may take over its jobs."""
        self._open.pop(self.instance_id, None)

    def _wake(self) -> None:
        if self.loop is not None:
            self.loop.wake()

    def _cancel_local(self, run_ids: list[int]) -> None:
        """Runs of this process stop at once, without waiting for the next heartbeat to hear of it."""
        if self.loop is not None:
            for run_id in run_ids:
                self.loop.cancel_local(run_id, "cancelled on request")

    def _start_courier(self, owner: str) -> None:
        """Alerts are delivered by every started scheduler (each alert once): a thread of its own, so that
        a slow channel never holds up a run."""
        if self.delivery.enabled and self._courier is None:
            self._courier = Courier(
                self._database.alerts,
                self.clock,
                owner=owner,
                settings=self.delivery,
                wake=self.store.alerts_written,
            )
            self._courier.start()

    def _stop_courier(self) -> None:
        courier, self._courier = self._courier, None
        if courier is not None:
            courier.stop()

    def _new_loop(self, event_loop: asyncio.AbstractEventLoop | None) -> SchedulerLoop:
        if self.loop is not None and self.loop.running:
            raise SchedulerStateError("the scheduler is already running")
        self._open[self.instance_id] = self
        self.loop = SchedulerLoop(
            self.store,
            registry=self.registry,
            clock=self.clock,
            listeners=self.listeners,
            settings=self.settings,
            event_loop=event_loop,
            instance_id=self.instance_id,
            # The built-in jobs find this scheduler's services through it.
            around_job=partial(
                serving, Builtins(self.maintenance, self.run_service, self.alerts, self.service)
            ),
        )
        return self.loop

    @property
    def running(self) -> bool:
        return self.loop is not None and self.loop.running

    @property
    def stopping(self) -> bool:
        """Whether a stop is under way (running jobs are being waited for or cancelled)."""
        loop = self.loop
        return loop is not None and loop.stopping

    def hurry(self) -> None:
        """During a :meth:`stop` that waits for running jobs (from another thread): stop waiting and cancel
        them now, killing their process groups; they are recorded ``cancelled``.  What a second Ctrl-C
        does in ``serve``."""
        loop = self.loop
        if loop is not None:
            loop.hurry()

    # ---- defining jobs ---------------------------------------------------------------------------------

    def job(self, *, id: str | None = None, **options: Any) -> Callable[[F], F]:
        """Decorator: schedule the function it wraps (``cron=``, ``every=`` or ``at=`` plus options)."""

        def register(func: F) -> F:
            self.add_job(func, id=id, **options)
            return func

        return register

    def add_job(
        self,
        func: Callable[..., Any] | str | None = None,
        *,
        id: str | None = None,
        by: str | None = None,
        replace: bool = True,
        **options: Any,
    ) -> Job:
        """Schedule a function, an import path ``"pkg.module:func"``, or a ``command=``.

        Jobs defined in code are declarations: with ``replace`` (the default) adding an existing id brings
        the stored job in line instead of failing, and an unchanged job keeps its schedule and history.
        """
        data = dict(options)
        if func is not None:
            data["call"] = func if isinstance(func, str) else self.registry.register(func)
            if id is None:
                id = data["call"].rpartition(":")[2].replace("<", "").replace(">", "")
                if self.registry.is_local(data["call"]):
                    id = self._unclaimed_id(id)
        data["id"] = id
        if replace:
            return self.service.upsert_job(data, by=by, origin="code")[0]
        return self.service.add_job(data, by=by, origin="code")

    def add_jobs(self, definitions: Iterable[Mapping[str, Any]], *, by: str | None = None) -> int:
        """Create many jobs at once (each a mapping of the options ``add_job`` takes, with ``call`` or
        ``command``): one transaction, all or nothing; far faster than one ``add_job`` each."""
        return self.service.add_jobs(definitions, by=by, origin="code")

    def sync_jobs(
        self, definitions: Iterable[Mapping[str, Any]], *, origin: str = "code", by: str | None = None
    ) -> SyncReport:
        """Make the jobs declared under ``origin`` exactly ``definitions``: add the new ones, update the
        changed ones, and disable (keeping their history) those no longer declared.  All are validated before
        any is written, so one bad definition changes nothing."""
        return self.service.sync_jobs(definitions, origin=origin, by=by)

    def validate(self, definition: Mapping[str, Any]) -> JobSpec:
        """Check a job definition as adding it would, without saving it; raises ValidationError naming the
        field."""
        return self.service.validate(definition)

    def register(self, func: Callable[..., Any]) -> str:
        """Make an in-process function runnable by its import path without scheduling it."""
        return self.registry.register(func)

    def edit(self, job_id: str, *, by: str | None = None, **changes: Any) -> Job:
        """Change options of a job (timeout, retries, overlap, schedule…)."""
        return self.service.edit_job(job_id, changes, by=by)

    def reschedule(self, job_id: str, *, by: str | None = None, **schedule: Any) -> Job:
        """Replace a job's schedule: ``reschedule("backup", cron="30 2 * * *")``."""
        return self.service.reschedule(job_id, by=by, **schedule)

    def pause(self, job_id: str, *, by: str | None = None) -> Job:
        return self.service.pause(job_id, by=by)

    def resume(self, job_id: str, *, by: str | None = None) -> Job:
        return self.service.resume(job_id, by=by)

    def remove_job(self, job_id: str, *, by: str | None = None) -> None:
        """Delete a job and its history."""
        self.service.remove(job_id, by=by)

    def get_job(self, job_id: str) -> Job:
        return self.service.get_job(job_id)

    def jobs(self) -> list[Job]:
        return self.service.list_jobs()

    # ---- runs ------------------------------------------------------------------------------------------

    def trigger(
        self,
        job_id: str,
        *,
        triggered_by: str | None = None,
        trigger_source: TriggerSource = TriggerSource.MANUAL,
    ) -> int:
        """Run a job now, outside its schedule; returns the run id."""
        return self.run_service.trigger(job_id, triggered_by=triggered_by, trigger_source=trigger_source)

    def cancel(self, run_id: int, *, by: str | None = None, via: str | None = None) -> None:
        """Cancel a queued or running run (a thread cannot be killed: its result is then discarded).

        A run of this process stops at once; one of another process at that process's next heartbeat.
        """
        self.run_service.cancel([run_id], by=by, via=via)

    def runs(
        self,
        *,
        job_id: str | None = None,
        status: RunStatus | str | Iterable[RunStatus | str] | None = None,
        limit: int = 50,
        before_id: int | None = None,
        sources: TriggerSource | str | Iterable[TriggerSource | str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Run]:
        """Run history, newest first; continue with ``before_id=`` the last id of the previous page.
        ``since``/``until`` (aware datetimes) keep runs whose ``scheduled_for``, the instant they were for,
        is in ``[since, until)``."""
        return self.run_service.list_runs(
            job_id=job_id,
            status=status,
            limit=limit,
            before_id=before_id,
            sources=sources,
            since=since,
            until=until,
        )

    def stats(
        self,
        job_id: str | Iterable[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, JobStats]:
        """Per job: runs by status, success rate, median, p95 and longest duration, last success and last
        failure, over runs whose ``scheduled_for`` is in ``[since, until)`` (aware datetimes; None leaves an
        end open).  Keyed by job id, in the order asked, or every job's in id order when ``job_id`` is None;
        jobs without runs in the window have zeros.  See :class:`JobStats` for what each figure covers."""
        return self.run_service.stats(job_id, since=since, until=until)

    def get_run(self, run_id: int) -> Run:
        return self.run_service.get_run(run_id)

    def add_listener(self, callback: Listener, kinds: Iterable[EventKind | str] | None = None) -> None:
        """Call ``callback(event)`` when runs start, succeed, fail, time out, are cancelled, missed,
        skipped or lost (all kinds unless ``kinds`` says which)."""
        self.listeners.add(callback, kinds)

    def remove_listener(self, callback: Listener) -> None:
        self.listeners.remove(callback)

    # ---- stepping, for tests and tools -----------------------------------------------------------------

    def run_pending(self, *, wait: bool = True, timeout: float = 30.0) -> int:
        """Fire what is due at the clock's now in the calling thread; with ``wait``, also let those runs
        finish and record them.  Used with a FakeClock to step through schedules without a thread."""
        loop = self.loop or self._new_loop(None)
        started = loop.run_once()
        if wait:
            loop.drain(timeout)
        return started

    def deliver_alerts(self) -> int:
        """Deliver the alerts due at the clock's now in the calling thread; returns how many were delivered.
        Used with a FakeClock, as :meth:`run_pending` is; a started scheduler delivers on its own."""
        owner = self.loop.owner if self.loop is not None else f"{self.instance_id}:deliver"
        courier = Courier(self._database.alerts, self.clock, owner=owner, settings=self.delivery)
        return courier.deliver_due()

    def health(self) -> LoopHealth:
        """Whether this process's loop runs, its node id, when it last completed a pass and how many passes
        failed on the database (for /metrics and /api/status)."""
        return LoopHealth() if self.loop is None else self.loop.health()

    @property
    def database_url(self) -> str:
        """The database's URL as logs may show it: without its password."""
        return self._database.display_url

    def schema_revision(self) -> str | None:
        """The schema revision of the database; None when it has no cronkeeper tables yet."""
        return self._database.schema_revision()

    def check_database(self) -> None:
        """Raise StoreError unless the database answers (for health checks)."""
        self.store.next_due_at()

    def disconnect(self) -> None:
        """Release the database's connections; they are opened again when next needed."""
        self._database.close()

    def next_due_at(self) -> datetime | None:
        """When the next fire, queued run or run claimed ahead of time this object can run is due."""
        pending = self.loop.next_pending_at() if self.loop else None
        candidates = [self.store.next_due_at(instance_id=self.instance_id), pending]
        return min((instant for instant in candidates if instant is not None), default=None)


class Scheduler(SchedulerBase):
    """A persistent scheduler running in a background thread of this process."""

    def start(self) -> None:
        """Start firing jobs in a background thread; coroutine jobs get an event loop thread of their own."""
        loop = self._new_loop(None)
        loop.start()
        self._start_courier(loop.owner)

    def stop(self, *, wait: bool = True, timeout: float = 30.0) -> None:
        """Stop; with ``wait``, running jobs get ``timeout`` seconds to finish before they are cancelled.

        Without ``wait`` the jobs are cancelled at once and this returns without waiting for them; a run
        whose end is not recorded by then is marked ``lost`` by the next scheduler on the database."""
        if self.loop is not None:
            self.loop.stop(wait=wait, timeout=timeout)
            self.loop = None
        self._stop_courier()

    def close(self) -> None:
        """Stop and release the database."""
        self.stop()
        self.disconnect()
        self._leave_open()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncScheduler(SchedulerBase):
    """A persistent scheduler whose coroutine jobs run on the event loop that started it."""

    async def start(self) -> None:
        """Start firing jobs; call from the event loop that should run coroutine jobs."""
        loop = self._new_loop(asyncio.get_running_loop())
        loop.start()
        self._start_courier(loop.owner)

    async def stop(self, *, wait: bool = True, timeout: float = 30.0) -> None:
        """Stop without blocking the loop (coroutine jobs still running on it can finish)."""
        loop, self.loop = self.loop, None
        if loop is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: loop.stop(wait=wait, timeout=timeout)
            )
        self._stop_courier()

    async def close(self) -> None:
        await self.stop()
        self.disconnect()
        self._leave_open()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
