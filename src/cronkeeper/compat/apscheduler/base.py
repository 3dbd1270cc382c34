"""The job API of APScheduler 3's schedulers (adding, changing, listing and removing jobs, listeners), on a
cronkeeper scheduler.  Starting and stopping differ per scheduler class: see :mod:`.schedulers`.

Each APScheduler call becomes one cronkeeper service call, so what it does is validated, stored, audited
and visible to every other face (CLI, dashboard) at once.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import IO, Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from cronkeeper.compat.apscheduler.config import FacadeConfig, Undefined, read_config, undefined
from cronkeeper.compat.apscheduler.errors import (
    ConflictingIdError,
    JobLookupError,
    NotATriggerError,
    UnknownJobStoreError,
)
from cronkeeper.compat.apscheduler.events import (
    EVENT_ALL,
    EVENT_ALL_JOBS_REMOVED,
    EVENT_JOB_ADDED,
    EVENT_JOB_MODIFIED,
    EVENT_JOB_REMOVED,
    APSListener,
    JobEvent,
    ListenerSet,
    SchedulerEvent,
    job_events,
)
from cronkeeper.compat.apscheduler.jobs import (
    EXTRA_OPTIONS,
    Job,
    JobNaming,
    callable_name,
    first_run,
    job_edits,
    json_arguments,
    policy_options,
)
from cronkeeper.compat.apscheduler.lineage import Lineage, is_facade_origin
from cronkeeper.compat.apscheduler.triggers import (
    BaseTrigger,
    create_trigger,
)
from cronkeeper.compat.apscheduler.views import JobViews
from cronkeeper.events import RunEvent
from cronkeeper.exceptions import JobExistsError, JobNotFoundError, ValidationError
from cronkeeper.models import Job as StoredJob
from cronkeeper.scheduler import Scheduler, SchedulerBase

F = TypeVar("F", bound=Callable[..., Any])

STATE_STOPPED = 0
STATE_RUNNING = 1
STATE_PAUSED = 2

# The origin of the jobs cronkeeper's Scheduler adds in code; a facade object's: "code INSTANCE" (.lineage).
ORIGIN = "code"

MODIFIABLE = frozenset(
    {
        "name",
        "func",
        "args",
        "kwargs",
        "trigger",
        "executor",
        "coalesce",
        "max_instances",
        "misfire_grace_time",
        "next_run_time",
        *EXTRA_OPTIONS,
    }
)


class JobsFacade:
    """The job half of APScheduler's schedulers, on a cronkeeper scheduler (``core``); starting and stopping
    are :class:`~cronkeeper.compat.apscheduler.schedulers.BaseScheduler`'s."""

    _core_class: ClassVar[type[SchedulerBase]] = Scheduler
    _extra_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, gconfig: Mapping[str, Any] | None = None, **options: Any) -> None:
        config = read_config(gconfig, options, extra=self._extra_options, owner=type(self).__name__)
        self._config: FacadeConfig = config
        self.timezone = ZoneInfo(config.timezone)
        self.state = STATE_STOPPED
        self._core = self._core_class(
            config.db,
            timezone=config.timezone,
            clock=config.clock,
            settings=config.settings,
            migrate=config.migrate,
        )
        self._log = config.logger
        self._listeners = ListenerSet(config.logger)
        self._naming = JobNaming(self._core.registry)
        self._lock = threading.RLock()
        self._added: set[str] = set()  # ids added by this scheduler: a second add is a conflict
        self._lineage = Lineage(self._core, config.logger)
        self._views = JobViews(self, self._core, config.timezone)
        self._executor_aliases = set(config.executors)
        self._jobstore_aliases = set(config.jobstores)
        self._core.add_listener(self._on_run_event)

    @property
    def core(self) -> SchedulerBase:
        """The cronkeeper scheduler underneath: run history (``core.runs(job_id=...)``), manual triggers,
        cancelling runs, and every option APScheduler has no words for."""
        return self._core

    @property
    def running(self) -> bool:
        return self.state != STATE_STOPPED

    # ---- adding jobs -----------------------------------------------------------------------------------

    def add_job(
        self,
        func: Callable[..., Any] | str,
        trigger: object = None,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        id: str | None = None,
        name: str | None = None,
        misfire_grace_time: float | Undefined | None = undefined,
        coalesce: bool | Undefined = undefined,
        max_instances: int | Undefined = undefined,
        next_run_time: datetime | str | Undefined | None = undefined,
        jobstore: str = "default",
        executor: str = "default",
        replace_existing: bool = False,
        **trigger_args: Any,
    ) -> Job:
        """Schedule ``func``.  Adding a job whose id is already stored (by an earlier run of the program) is
        a declaration: the stored job is brought in line and keeps its history.  Only a second add of one
        id by this scheduler, without ``replace_existing``, raises :class:`ConflictingIdError`."""
        extras = {key: trigger_args.pop(key) for key in list(trigger_args) if key in EXTRA_OPTIONS}
        self._check_jobstore(jobstore)
        self._check_alias("executor", executor, self._executor_aliases)
        if "catchup" in extras and not isinstance(coalesce, Undefined):
            raise ValidationError("catchup", "give coalesce or catchup, not both")
        bound = self._bind(create_trigger(trigger, trigger_args))
        policies = policy_options(
            self._config.job_defaults,
            coalesce=coalesce,
            max_instances=max_instances,
            misfire_grace_time=misfire_grace_time,
        )
        data = {**self._target(func, args, kwargs, id, name), **bound.schedule(), **policies, **extras}
        job_id = data["id"]
        run_now = self._first_run(bound, data, next_run_time)
        with self._lock:
            if not replace_existing and job_id in self._added and self._views.find(job_id) is not None:
                raise ConflictingIdError(job_id)
            self._declare(data, paused=next_run_time is None)
            self._added.add(job_id)
            self._views.remember(job_id, trigger=bound, executor=executor)
        if run_now:
            self._core.trigger(job_id)
        self._dispatch(JobEvent(EVENT_JOB_ADDED, job_id, jobstore))
        return self._added_view(job_id)

    def scheduled_job(
        self,
        trigger: object,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        id: str | None = None,
        name: str | None = None,
        misfire_grace_time: float | Undefined | None = undefined,
        coalesce: bool | Undefined = undefined,
        max_instances: int | Undefined = undefined,
        next_run_time: datetime | str | Undefined | None = undefined,
        jobstore: str = "default",
        executor: str = "default",
        **trigger_args: Any,
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`add_job` (with ``replace_existing``); returns the function unchanged."""

        def inner(func: F) -> F:
            self.add_job(
                func,
                trigger,
                args,
                kwargs,
                id,
                name,
                misfire_grace_time,
                coalesce,
                max_instances,
                next_run_time,
                jobstore,
                executor,
                True,
                **trigger_args,
            )
            return func

        return inner

    def _target(
        self,
        func: Callable[..., Any] | str,
        args: object,
        kwargs: object,
        job_id: str | None,
        name: str | None,
    ) -> dict[str, Any]:
        """The job's identity and target: its id (given, or derived), name, reference and JSON arguments."""
        ref = self._naming.ref_for(func)
        call_args, call_kwargs = json_arguments(args, kwargs)
        if job_id is None:
            job_id = self._naming.auto_id(ref, call_args, call_kwargs)
            if self._core.registry.is_local(ref):  # not the job of another scheduler object's own method
                job_id = self._core._unclaimed_id(job_id)
        name = name or callable_name(func, ref)
        return {"id": job_id, "name": name, "call": ref, "args": call_args, "kwargs": call_kwargs}

    def _bind(self, trigger: BaseTrigger) -> BaseTrigger:
        return trigger.bind(self._config.timezone, self._core.clock.now())

    def _check_alias(self, kind: str, alias: str, known: set[str]) -> None:
        if alias not in known:
            raise ValidationError(kind, f"no {kind} named {alias!r} (configured: {', '.join(sorted(known))})")

    def _check_jobstore(self, alias: str | None) -> None:
        """Refuse a job store alias the scheduler was not configured with (None: any store)."""
        if alias is not None and alias not in self._jobstore_aliases:
            known = ", ".join(repr(name) for name in sorted(self._jobstore_aliases))
            raise UnknownJobStoreError("jobstore", f"No such job store: {alias!r} (configured: {known})")

    def _declare(self, data: dict[str, Any], *, paused: bool) -> StoredJob:
        """Add the job, or bring the stored one in line (a job paused elsewhere stays paused)."""
        try:
            job = self._add_or_update(data, paused=paused)
        except ValidationError as exc:
            if exc.field == "at":  # APScheduler's name for it
                raise ValidationError("run_date", exc.reason) from None
            raise
        return self._core.pause(job.id) if paused and not job.paused else job

    def _add_or_update(self, data: dict[str, Any], *, paused: bool) -> StoredJob:
        service = self._core.service
        existing = service.find_job(data["id"])
        if existing is None:
            try:
                return service.add_job(data, origin=self._lineage.origin, paused=paused)
            except JobExistsError:
                pass  # another process or scheduler declared it in between: update theirs
        else:
            self._lineage.declaring(existing)
        return service.upsert_job(data, origin=self._lineage.origin)[0]

    def _retire_undeclared(self) -> None:
        """At start, unless a persistent job store was configured: see :mod:`.lineage`."""
        if not self._config.keeps_undeclared:
            self._lineage.retire_undeclared(self._added)

    def _first_run(self, trigger: BaseTrigger, data: dict[str, Any], next_run_time: object) -> bool:
        # A naive next_run_time is the host's wall time (datetime.now()) unless a timezone was configured.
        zone = self._config.timezone if self._config.timezone_given else None
        return first_run(trigger, data, next_run_time, zone=zone, now=self._core.clock.now())

    # ---- changing jobs ---------------------------------------------------------------------------------

    def modify_job(self, job_id: str, jobstore: str | None = None, **changes: Any) -> Job:
        """Change a job's options: name, func, args, kwargs, trigger, executor, coalesce, max_instances,
        misfire_grace_time, next_run_time (None pauses), and cronkeeper's own (timeout, max_retries…)."""
        unknown = sorted(set(changes) - MODIFIABLE)
        if unknown:
            reason = "cannot be changed" if unknown[0] == "id" else "is not a job option"
            raise ValidationError(unknown[0], reason)
        self._check_jobstore(jobstore)
        if "trigger" in changes:
            _check_trigger_object(changes["trigger"])
        stored = self._views.stored(job_id)
        if "executor" in changes:
            self._check_alias("executor", changes["executor"], self._executor_aliases)
        edits = self._edits(stored, changes)
        if edits:
            self._call(self._core.edit, job_id, **edits)
        trigger = self._bind(create_trigger(changes["trigger"], {})) if "trigger" in changes else None
        self._views.remember(job_id, trigger=trigger, executor=changes.get("executor"))
        if "next_run_time" in changes:
            self._set_next_run_time(job_id, changes["next_run_time"])
        self._dispatch(JobEvent(EVENT_JOB_MODIFIED, job_id, "default"))
        return self._get(job_id)

    def _edits(self, stored: StoredJob, changes: Mapping[str, Any]) -> dict[str, Any]:
        trigger = self._bind(create_trigger(changes["trigger"], {})) if "trigger" in changes else None
        return job_edits(stored.spec, changes, naming=self._naming, trigger=trigger)

    def _set_next_run_time(self, job_id: str, value: object) -> None:
        if value is None:
            self._core.pause(job_id)
            return
        stored = self._views.stored(job_id)
        if stored.paused:
            self._core.resume(job_id)
        data: dict[str, Any] = {}
        if self._first_run(self._views.trigger_of(stored, self._core.clock.now()), data, value):
            self._core.trigger(job_id)
        if data:
            self._call(self._core.edit, job_id, **data)

    def reschedule_job(
        self, job_id: str, jobstore: str | None = None, trigger: object = None, **trigger_args: Any
    ) -> Job:
        """Give a job a new trigger, counted from now; like APScheduler, this also resumes a paused job."""
        self._check_jobstore(jobstore)
        stored = self._views.stored(job_id)
        bound = self._bind(create_trigger(trigger, trigger_args))
        self._call(self._core.reschedule, job_id, **bound.schedule())
        self._views.remember(job_id, trigger=bound)
        if stored.paused:
            self._core.resume(job_id)
        self._dispatch(JobEvent(EVENT_JOB_MODIFIED, job_id, "default"))
        return self._get(job_id)

    def pause_job(self, job_id: str, jobstore: str | None = None) -> Job:
        self._check_jobstore(jobstore)
        self._views.stored(job_id)
        self._call(self._core.pause, job_id)
        self._dispatch(JobEvent(EVENT_JOB_MODIFIED, job_id, "default"))
        return self._get(job_id)

    def resume_job(self, job_id: str, jobstore: str | None = None) -> Job | None:
        """Fire again from the next fire after now; None (and a ``EVENT_JOB_REMOVED``) when the schedule has
        no fire left.  The job's history is kept."""
        self._check_jobstore(jobstore)
        self._views.stored(job_id)
        resumed = self._call(self._core.resume, job_id)
        if resumed.next_due_at is None:
            self._dispatch(JobEvent(EVENT_JOB_REMOVED, job_id, "default"))
            return None
        self._dispatch(JobEvent(EVENT_JOB_MODIFIED, job_id, "default"))
        return self._views.view(resumed)

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        """Delete the job (and, in cronkeeper, its run history)."""
        self._check_jobstore(jobstore)
        self._views.stored(job_id)
        self._call(self._core.remove_job, job_id)
        self._forget(job_id)
        self._dispatch(JobEvent(EVENT_JOB_REMOVED, job_id, "default"))

    def remove_all_jobs(self, jobstore: str | None = None) -> None:
        """Delete, with their history, the jobs added from code (by this facade or cronkeeper's ``Scheduler``,
        in any run of any program on the database): the jobs of the configuration file, the CLI, the dashboard
        or an import from APScheduler's table are kept, as are command jobs."""
        self._check_jobstore(jobstore)
        for job in self._views.visible():
            if job.origin != ORIGIN and not is_facade_origin(job.origin):
                continue
            self._call(self._core.remove_job, job.id)
            self._forget(job.id)
        self._dispatch(SchedulerEvent(EVENT_ALL_JOBS_REMOVED, jobstore))

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._added.discard(job_id)
        self._views.forget(job_id)

    # ---- reading jobs ----------------------------------------------------------------------------------

    def get_jobs(self, jobstore: str | None = None, pending: bool | None = None) -> list[Job]:
        """Every scheduled Python-function job of the database, soonest first, paused ones last."""
        self._check_jobstore(jobstore)
        jobs = [self._views.view(job) for job in self._views.visible()]
        return sorted(jobs, key=lambda job: (job.next_run_time is None, job.next_run_time or 0, job.id))

    def get_job(self, job_id: str, jobstore: str | None = None) -> Job | None:
        self._check_jobstore(jobstore)
        stored = self._views.find(job_id)
        return None if stored is None else self._views.view(stored)

    def print_jobs(self, jobstore: str | None = None, out: IO[str] | None = None) -> None:
        """APScheduler's listing of the jobs, written to ``out`` (standard output by default)."""
        self._check_jobstore(jobstore)
        out = out or sys.stdout
        jobs = self.get_jobs()
        lines = ["Jobstore default:", *(f"    {job}" for job in jobs)] if jobs else ["Jobstore default:"]
        if not jobs:
            lines.append("    No scheduled jobs")
        out.write("\n".join(lines) + "\n")

    def resolve(self, func_ref: str) -> Callable[..., Any]:
        """The callable behind a job's ``func_ref``."""
        return self._core.registry.resolve(func_ref)

    def _added_view(self, job_id: str) -> Job:
        """The job just added, even when its schedule has no fire left (an ``end_date`` in the past): as
        APScheduler, it is returned with ``next_run_time`` None (and, stored, stays out of ``get_jobs``)."""
        stored = self._core.service.find_job(job_id)
        if stored is None:  # another process removed it meanwhile
            raise JobLookupError(job_id)
        return self._views.view(stored)

    def _get(self, job_id: str) -> Job:
        return self._views.view(self._views.stored(job_id))

    def _call(self, method: Callable[..., StoredJob | None], job_id: str, **options: Any) -> Any:
        """A core call on a job, its disappearance (another process removed it) reported as APScheduler's."""
        try:
            return method(job_id, **options)
        except JobNotFoundError:
            raise JobLookupError(job_id) from None

    # ---- events ----------------------------------------------------------------------------------------

    def add_listener(self, callback: APSListener, mask: int = EVENT_ALL) -> None:
        """Call ``callback(event)`` for events whose code is in ``mask``; a failing callback is logged."""
        self._listeners.add(callback, mask)

    def remove_listener(self, callback: APSListener) -> None:
        self._listeners.remove(callback)

    def _dispatch(self, event: SchedulerEvent) -> None:
        self._listeners.dispatch(event)

    def _on_run_event(self, event: RunEvent) -> None:
        if self._listeners:
            self._deliver(job_events(event, self.timezone))

    def _deliver(self, events: list[SchedulerEvent]) -> None:
        """Hand run events to the listeners (in the engine's thread; the asyncio scheduler overrides it)."""
        self._listeners.dispatch_all(events)


def _check_trigger_object(trigger: object) -> None:
    """``modify_job`` takes trigger objects, as APScheduler (an alias and its options: reschedule_job)."""
    if trigger is None or isinstance(trigger, str):
        raise NotATriggerError(
            "trigger",
            f"modify_job takes a trigger object, not {trigger!r}; to give the job a new trigger from an "
            "alias and its options, use reschedule_job(job_id, trigger='cron', hour=3, ...)",
        )
