"""Job definitions: adding, editing, declaring, pausing, disabling and removing jobs, for every face.

Validation goes through :mod:`cronkeeper.specs`; the store is the only thing written, and every change is
announced and audited through a :class:`~cronkeeper.services.changes.ChangeLog`.  Runs on request and the
history are :mod:`cronkeeper.services.runs`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronkeeper.clock import Clock
from cronkeeper.exceptions import (
    ConflictError,
    CronComputationError,
    InvalidScheduleError,
    JobExistsError,
    TargetImportError,
    ValidationError,
)
from cronkeeper.models import EXTERNAL, CallableTarget, Job, JobSpec
from cronkeeper.planning import next_due
from cronkeeper.registry import Registry
from cronkeeper.serialize import redact_env
from cronkeeper.services.changes import ChangeLog
from cronkeeper.specs import (
    SCHEDULE_KEYS,
    SpecBatch,
    build_spec,
    build_trigger,
    check_not_past,
    spec_to_dict,
)
from cronkeeper.store.base import JobStore, NewJob
from cronkeeper.triggers import CronTrigger, DateTrigger, IntervalTrigger

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulePreview:
    """What a schedule means and when it fires next, shown before it is saved."""

    description: str
    next_fires: list[datetime]


@dataclass(slots=True)
class SyncReport:
    """What a synchronisation of declared jobs changed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)


_SCHEDULE_OPTIONS = (*SCHEDULE_KEYS, "seconds", "start", "end")
_TARGET_OPTIONS = ("command", "shell", "env", "cwd", "call", "args", "kwargs", "isolate")
_REPLACED_TOGETHER = ((SCHEDULE_KEYS, _SCHEDULE_OPTIONS), (("command", "call"), _TARGET_OPTIONS))
# A job edited between reading it and writing what follows from it is read again; this many edits in a row
# give up with a ConflictError.
_FENCED_TRIES = 5


Placement = Callable[[JobSpec], "str | None"]


def _anywhere(spec: JobSpec) -> str | None:
    return None


class JobService:
    """Adding, editing, pausing, disabling and reading jobs.

    ``placement`` says which scheduler object alone can run a declared job (``Job.runs_on``): the one whose
    registry holds its target, when no other process could import it.  Faces without such callables (the
    CLI, the web app) leave it out, and their edits keep a job where it is.
    """

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        changes: ChangeLog,
        *,
        default_timezone: str = "UTC",
        placement: Placement = _anywhere,
        registry: Registry | None = None,
    ) -> None:
        self._store = store
        self.clock = clock
        self.default_timezone = default_timezone
        self._changes = changes
        self._placement = placement
        self._registry = registry or Registry()

    # ---- definitions -----------------------------------------------------------------------------------

    def _home(self, spec: JobSpec) -> str | None:
        """Where a job runs (``Job.runs_on``): nowhere for a check-in job (``EXTERNAL``: no scheduler claims
        it), else where ``placement`` says."""
        return EXTERNAL if spec.runs_elsewhere else self._placement(spec)

    def build(self, data: Mapping[str, Any]) -> JobSpec:
        """Validate a job definition without saving it."""
        return build_spec(data, default_timezone=self.default_timezone, now=self.clock.now())

    def validate(self, data: Mapping[str, Any]) -> JobSpec:
        """Everything adding the job would check, without saving it: also that a one-off is not past."""
        spec = self.build(data)
        self._first_due(spec)
        return spec

    def preview_schedule(self, data: Mapping[str, Any], *, count: int = 5) -> SchedulePreview:
        """Validate a schedule (``cron``/``every``/``at`` with ``timezone``, ``start``, ``end``, ``seconds``)
        and list its next ``count`` fires after now; raises ValidationError naming the field."""
        now = self.clock.now()
        trigger = build_trigger(data, default_timezone=self.default_timezone, now=now)
        with _computable():
            fires = list(itertools.islice(trigger.fires_after(now), count))
        return SchedulePreview(trigger.describe(), fires)

    def add_job(
        self,
        data: Mapping[str, Any],
        *,
        by: str | None = None,
        origin: str = "api",
        paused: bool = False,
        via: str | None = None,
    ) -> Job:
        """Create a job; raises ValidationError or JobExistsError and writes nothing on error."""
        spec = self.build(data)
        fire, run = (None, None) if paused else self._first_due(spec)
        job = self._store.add_job(
            spec,
            next_fire_at=fire,
            next_due_at=run,
            now=self.clock.now(),
            by=by,
            origin=origin,
            paused=paused,
            runs_on=self._home(spec),
        )
        self._changes.announce()
        self._changes.record("create", job.id, by=by, via=via, details=redact_env(spec_to_dict(spec)))
        return job

    def add_jobs(
        self, definitions: Iterable[Mapping[str, Any]], *, by: str | None = None, origin: str = "api"
    ) -> int:
        """Create many jobs in one transaction (all validated first); returns how many were added."""
        new_jobs = []
        batch = SpecBatch(default_timezone=self.default_timezone, now=self.clock.now())
        # Jobs of one shape share a trigger: their first fire is computed once (unless jittered).
        first_due: dict[int, tuple[datetime | None, datetime | None]] = {}
        for data in definitions:
            job = batch.build(data)
            shape = job.shape
            if shape.jitter:
                due = self._first_due(shape)
            else:
                due = first_due.get(id(shape)) or first_due.setdefault(id(shape), self._first_due(shape))
            runs_on = self._home(shape)
            new_jobs.append(NewJob(job.id, job.name, job.stored_json, *due, runs_on=runs_on))
        self._store.add_jobs(new_jobs, now=self.clock.now(), by=by, origin=origin)
        self._changes.announce()
        ids = [job.id for job in new_jobs]
        self._changes.record(
            "create", f"{len(ids)} jobs", by=by, object_type="jobs", details={"first_ids": ids[:100]}
        )
        return len(new_jobs)

    def edit_job(
        self,
        job_id: str,
        changes: Mapping[str, Any],
        *,
        by: str | None = None,
        expected_version: int | None = None,
        via: str | None = None,
    ) -> Job:
        """Change some options of a job (None puts an option back to its default); a new schedule replaces the
        old one and restarts from now.  An edit that changes nothing is not saved: same version, no audit.

        With ``expected_version`` the edit is refused with ``ConflictError`` if the job is at another version:
        checked first (a stale edit is reported before its options are validated) and again by the write."""
        job = self._store.get_job(job_id)
        _check_version(job, expected_version)
        if "id" in changes and changes["id"] != job_id:
            raise ValidationError("id", "cannot be changed; create a new job instead")
        data = spec_to_dict(job.spec)
        # A new schedule or target replaces the old one with its options, rather than clashing with it.
        for given, replaced in _REPLACED_TOGETHER:
            if any(key in changes for key in given):
                for key in replaced:
                    data.pop(key, None)
        data.update(changes)
        spec = self.build({key: value for key, value in data.items() if value is not None})
        if spec == job.spec and expected_version in (None, job.version):
            return job
        # A new target: where it can run is asked anew.  The same one keeps its home, which it can still
        # refuse (a callable only one object holds cannot run isolated in a child process).
        new_target = _target_ref(spec) != _target_ref(job.spec)
        runs_on = self._home(spec) if new_target else job.runs_on
        if runs_on is not None and _isolated(spec):
            raise ValidationError(
                "isolate", "the job's function exists only in one scheduler object; a child cannot import it"
            )
        saved = self._save(job, spec, by=by, expected_version=expected_version)
        if new_target:
            saved = self._place(saved, runs_on, job.origin)
        self._changes.record("edit", job_id, by=by, via=via, details=_changed_options(job.spec, saved.spec))
        return saved

    def reschedule(self, job_id: str, *, by: str | None = None, **schedule: Any) -> Job:
        """Give a job a new schedule: ``cron=``, ``every=`` or ``at=``, ``timezone``, ``start``, ``end``."""
        return self.edit_job(job_id, schedule, by=by)

    def upsert_job(
        self, data: Mapping[str, Any], *, by: str | None = None, origin: str, via: str | None = None
    ) -> tuple[Job, str]:
        """Add the job or bring it in line with ``data``; returns the job and "added"/"updated"/"unchanged".

        An interval job declared without a ``start`` keeps the anchor it got when first added, so that
        restarting an application does not shift its schedule.
        """
        existing, spec = self._declared(data)
        if existing is None:
            try:
                return self.add_job(data, by=by, origin=origin, via=via), "added"
            except JobExistsError:
                # Another process (several workers of one app start together) declared it in between.
                existing, spec = self._declared(data)
                if existing is None:
                    raise
        runs_on = self._home(spec)  # before anything is written: it may refuse the declaration
        if spec == existing.spec and existing.enabled:
            return self._place(existing, runs_on, origin), "unchanged"
        saved = self._place(self._save(existing, spec, by=by, enabled=True), runs_on, origin)
        changed = _changed_options(existing.spec, spec)
        self._changes.record("edit", saved.id, by=by or origin, via=via, details=changed)
        return saved, "updated"

    def _place(self, job: Job, runs_on: str | None, origin: str) -> Job:
        """Record that ``origin`` declares ``job`` now, and where it can run (not an edit: no version)."""
        if (job.origin, job.runs_on) == (origin, runs_on):
            return job
        if runs_on is not None and job.runs_on is not None:
            log.info("job %s now runs on %s (was %s)", job.id, runs_on, job.runs_on)
        placed = self._store.set_declared(job.id, origin=origin, runs_on=runs_on)
        self._changes.announce()
        return placed

    def _declared(self, data: Mapping[str, Any]) -> tuple[Job | None, JobSpec]:
        """The stored job of a declaration (if any) and the validated spec the declaration asks for."""
        existing = self._store.find_job(str(data.get("id")))
        keeps_anchor = "start" not in data and "every" in data
        if existing is not None and keeps_anchor and isinstance(existing.spec.trigger, IntervalTrigger):
            data = {**data, "start": existing.spec.trigger.anchor}
        return existing, self.build(data)

    def sync_jobs(
        self,
        declared: Iterable[Mapping[str, Any]],
        *,
        origin: str,
        by: str | None = None,
        via: str | None = None,
    ) -> SyncReport:
        """Make the jobs of ``origin`` match ``declared``: add new ones, update changed ones, and disable (not
        delete, so history stays) those that are no longer declared.  Validates all before writing any."""
        declared = list(declared)
        for data in declared:  # every check that could fail, before anything is written
            existing, spec = self._declared(data)
            if existing is None:
                self._first_due(spec)
            elif spec != existing.spec or not existing.enabled:
                self._next_fire(existing, spec, enabled=True)
        report = SyncReport()
        seen = set()
        for data in declared:
            job, change = self.upsert_job(data, by=by, origin=origin, via=via)
            seen.add(job.id)
            getattr(report, change).append(job.id)
            if change != "unchanged":
                log.info("%s job %s from %s", change, job.id, origin)
        for job in self._store.list_jobs(include_disabled=False):
            if job.origin == origin and job.id not in seen:
                self.disable(job.id, reason=f"not declared in {origin}", by=by or origin, via=via)
                report.disabled.append(job.id)
                log.info("disabled job %s: no longer declared in %s", job.id, origin)
        self._changes.announce()
        return report

    def disable(self, job_id: str, *, reason: str, by: str | None = None, via: str | None = None) -> Job:
        """Stop a job without deleting it or its history (a declaration that no longer lists it); declaring
        it again enables it.  A job disabled already is left as it is, with no audit event."""

        def write(job: Job) -> Job:
            if not job.enabled:
                return job
            disabled = self._store.update_job(
                job.spec,
                next_fire_at=None,
                next_due_at=None,
                now=self.clock.now(),
                by=by,
                enabled=False,
                expected_version=job.version,
            )
            self._changes.announce()
            self._changes.record("disable", job_id, by=by, via=via, details={"reason": reason})
            return disabled

        return self._from_fresh_read(job_id, None, write, "disabled")

    def _from_fresh_read(
        self, job_id: str, expected_version: int | None, write: Callable[[Job], Job], done: str
    ) -> Job:
        """Read the job and ``write`` what follows from it, fenced by the version read: an edit landing in
        between is kept and the write is tried again on top of it.  With ``expected_version`` the caller
        asked for that version only, so such an edit is its ``ConflictError`` instead."""
        for _ in range(_FENCED_TRIES):
            job = self._store.get_job(job_id)
            _check_version(job, expected_version)
            try:
                return write(job)
            except ConflictError:
                if expected_version is not None:
                    raise
        raise ConflictError(f"job {job_id!r} keeps changing; it was not {done}, try again")

    def _save(
        self,
        job: Job,
        spec: JobSpec,
        *,
        by: str | None,
        expected_version: int | None = None,
        enabled: bool | None = None,
    ) -> Job:
        fire, run = self._next_fire(job, spec, enabled=job.enabled if enabled is None else enabled)
        saved = self._store.update_job(
            spec,
            next_fire_at=fire,
            next_due_at=run,
            now=self.clock.now(),
            by=by,
            expected_version=expected_version,
            enabled=enabled,
        )
        self._changes.announce()
        return saved

    def _next_fire(
        self, job: Job, spec: JobSpec, *, enabled: bool
    ) -> tuple[datetime | None, datetime | None]:
        """Where a changed job's schedule goes: nowhere if disabled or paused, on as before if its trigger did
        not change (a one-off that already ran stays done), else from now."""
        if not enabled or job.paused:
            return None, None
        if spec.trigger == job.spec.trigger and job.enabled:
            return job.next_fire_at, job.next_due_at
        return self._first_due(spec)

    def _first_due(self, spec: JobSpec) -> tuple[datetime | None, datetime | None]:
        now = self.clock.now()
        if isinstance(spec.trigger, DateTrigger):
            check_not_past(spec, now)
            return next_due(spec, min(now, spec.trigger.at) - timedelta(microseconds=1))
        with _computable():
            due = next_due(spec, now)
        trigger = spec.trigger
        if due[0] is None and isinstance(trigger, CronTrigger) and trigger.end_at is None:
            # The expression passed its own check (it matches some wall-clock time), but in this zone every
            # time it names is one the clock skips (a wildcard job in the hour clocks jump over, say).
            raise InvalidScheduleError(
                "cron",
                f"{trigger.cron.expression!r} never fires in {trigger.timezone.key}: the clock skips every "
                "time it names",
            )
        return due

    def pause(
        self,
        job_id: str,
        *,
        by: str | None = None,
        via: str | None = None,
        expected_version: int | None = None,
    ) -> Job:
        """Stop firing a job until it is resumed; runs already going are not touched.  With
        ``expected_version``, a job at another version is left alone (``ConflictError``)."""
        job = self._store.set_paused(
            job_id,
            True,
            next_fire_at=None,
            next_due_at=None,
            now=self.clock.now(),
            by=by,
            expected_version=expected_version,
        )
        self._changes.announce()
        self._changes.record("pause", job_id, by=by, via=via)
        return job

    def resume(
        self,
        job_id: str,
        *,
        by: str | None = None,
        via: str | None = None,
        expected_version: int | None = None,
    ) -> Job:
        """Fire again from the next fire after now: a resumed job never bursts through what it missed.  With
        ``expected_version``, a job at another version is left alone (``ConflictError``)."""

        def write(job: Job) -> Job:
            with _computable():
                fire, run = next_due(job.spec, self.clock.now()) if job.enabled else (None, None)
            resumed = self._store.set_paused(
                job_id,
                False,
                next_fire_at=fire,
                next_due_at=run,
                now=self.clock.now(),
                by=by,
                expected_version=job.version,
            )
            self._changes.announce()
            self._changes.record("resume", job_id, by=by, via=via)
            return resumed

        return self._from_fresh_read(job_id, expected_version, write, "resumed")

    def remove(
        self,
        job_id: str,
        *,
        by: str | None = None,
        via: str | None = None,
        expected_version: int | None = None,
    ) -> None:
        """Delete a job and its history.  With ``expected_version``, a job at another version is left alone
        (``ConflictError``)."""
        self._store.delete_job(job_id, expected_version=expected_version)
        self._changes.announce()
        self._changes.record("delete", job_id, by=by, via=via)

    def target_problem(self, spec: JobSpec, *, import_now: bool = True) -> str | None:
        """Why this process cannot import the job's function (None: it can, it was not tried, or the job
        runs a command or in a child process, which imports it there).

        A job whose function does not import is still accepted, since the process that runs it may differ
        (another virtualenv, another node); faces warn when the job is saved (``import_now``: the module's
        code runs, once) and pages show what the last try found (``import_now=False``: nothing runs)."""
        target = spec.target
        if not isinstance(target, CallableTarget) or target.isolate:
            return None
        if not import_now:
            problem = self._registry.known_problem(target.ref)
        else:
            try:
                self._registry.resolve(target.ref)
            except TargetImportError as exc:
                problem = str(exc)
            else:
                problem = None
        if problem is None:
            return None
        return f"{problem}; saved all the same: a scheduler that can import it runs it"

    # ---- reading ---------------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job:
        """The job; raises ``JobNotFoundError``."""
        return self._store.get_job(job_id)

    def find_job(self, job_id: str) -> Job | None:
        return self._store.find_job(job_id)

    def find_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """The jobs with these ids, in the order given; ids with no job are left out."""
        return self._store.find_jobs(job_ids)

    def list_jobs(self, *, include_disabled: bool = True) -> list[Job]:
        return self._store.list_jobs(include_disabled=include_disabled)


@contextlib.contextmanager
def _computable() -> Iterator[None]:
    """A schedule whose next fire cannot be computed is refused like any unusable schedule, naming it."""
    try:
        yield
    except CronComputationError as exc:
        raise InvalidScheduleError("cron", str(exc)) from exc


def _target_ref(spec: JobSpec) -> str | None:
    return spec.target.ref if isinstance(spec.target, CallableTarget) else None


def _isolated(spec: JobSpec) -> bool:
    return isinstance(spec.target, CallableTarget) and spec.target.isolate


def _check_version(job: Job, expected_version: int | None) -> None:
    if expected_version is not None and job.version != expected_version:
        raise ConflictError(f"job {job.id!r} was changed by someone else; reload and try again")


def _changed_options(before: JobSpec, after: JobSpec) -> dict[str, Any]:
    """The options an edit changed, old and new, for the audit log."""
    old, new = redact_env(spec_to_dict(before)), redact_env(spec_to_dict(after))
    return {
        key: {"from": old.get(key), "to": new.get(key)}
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }
