"""The operations every face calls: the library, the CLI, the config sync and (later) the web layer.

Validation goes through :mod:`cronkeeper.specs`; the store is the only thing written.  ``on_change`` is how a
running engine in this process hears about a change at once instead of at its next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronkeeper.clock import Clock
from cronkeeper.exceptions import JobExistsError, ValidationError
from cronkeeper.models import AuditEvent, Job, JobSpec, Run, RunStatus, TriggerSource
from cronkeeper.planning import next_due
from cronkeeper.serialize import redact_env
from cronkeeper.specs import SCHEDULE_KEYS, SpecBatch, build_spec, build_trigger, spec_to_dict
from cronkeeper.store.audit import SqlAuditLog
from cronkeeper.store.base import JobStore, NewJob, RunFilter
from cronkeeper.triggers import DateTrigger, IntervalTrigger

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


class JobService:
    """Adding, editing, pausing, triggering and reading jobs and runs."""

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        *,
        default_timezone: str = "UTC",
        on_change: Callable[[], None] | None = None,
        audit: SqlAuditLog | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.default_timezone = default_timezone
        self._on_change = on_change or (lambda: None)
        self._audit = audit

    def _record(
        self,
        action: str,
        object_id: str,
        *,
        by: str | None,
        via: str | None = None,
        object_type: str = "job",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Write the audit event of a change that has been made."""
        if self._audit is not None:
            event = AuditEvent(
                self.clock.now(), by or "library", action, object_type, object_id, details, via
            )
            self._audit.record(event)

    def _changed(self) -> None:
        """After a write that can make something due sooner: wake this process's engine, and the others."""
        self._on_change()
        self.store.announce_change()

    # ---- definitions -----------------------------------------------------------------------------------

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
        fires: list[datetime] = []
        instant: datetime | None = now
        while instant is not None and len(fires) < count:
            instant = trigger.next_after(instant)
            if instant is not None:
                fires.append(instant)
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
        job = self.store.add_job(
            spec,
            next_fire_at=fire,
            next_due_at=run,
            now=self.clock.now(),
            by=by,
            origin=origin,
            paused=paused,
        )
        self._changed()
        self._record("create", job.id, by=by, via=via, details=redact_env(spec_to_dict(spec)))
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
            new_jobs.append(NewJob(job.id, job.name, job.stored_json, *due))
        self.store.add_jobs(new_jobs, now=self.clock.now(), by=by, origin=origin)
        self._changed()
        ids = [job.id for job in new_jobs]
        self._record(
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
        old one and restarts from now.  An edit that changes nothing is not saved: same version, no audit."""
        job = self.store.get_job(job_id)
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
        saved = self._save(job, spec, by=by, expected_version=expected_version)
        self._record("edit", job_id, by=by, via=via, details=_changed_options(job.spec, saved.spec))
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
        if spec == existing.spec and existing.enabled:
            return existing, "unchanged"
        saved = self._save(existing, spec, by=by, origin=origin, enabled=True)
        changed = _changed_options(existing.spec, spec)
        self._record("edit", saved.id, by=by or origin, via=via, details=changed)
        return saved, "updated"

    def _declared(self, data: Mapping[str, Any]) -> tuple[Job | None, JobSpec]:
        """The stored job of a declaration (if any) and the validated spec the declaration asks for."""
        existing = self.store.find_job(str(data.get("id")))
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
        for job in self.store.list_jobs():
            if job.origin == origin and job.enabled and job.id not in seen:
                self.store.update_job(
                    job.spec, next_fire_at=None, next_due_at=None, now=self.clock.now(), by=by, enabled=False
                )
                report.disabled.append(job.id)
                reason = {"reason": f"not declared in {origin}"}
                self._record("disable", job.id, by=by or origin, via=via, details=reason)
                log.info("disabled job %s: no longer declared in %s", job.id, origin)
        self._changed()
        return report

    def _save(
        self,
        job: Job,
        spec: JobSpec,
        *,
        by: str | None,
        expected_version: int | None = None,
        origin: str | None = None,
        enabled: bool | None = None,
    ) -> Job:
        fire, run = self._next_fire(job, spec, enabled=job.enabled if enabled is None else enabled)
        saved = self.store.update_job(
            spec,
            next_fire_at=fire,
            next_due_at=run,
            now=self.clock.now(),
            by=by,
            expected_version=expected_version,
            enabled=enabled,
            origin=origin,
        )
        self._changed()
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
            if spec.trigger.at < now - spec.misfire_grace:
                raise ValidationError("at", f"{spec.trigger.at.isoformat()} is in the past")
            return next_due(spec, min(now, spec.trigger.at) - timedelta(microseconds=1))
        return next_due(spec, now)

    def pause(self, job_id: str, *, by: str | None = None, via: str | None = None) -> Job:
        """Stop firing a job until it is resumed; runs already going are not touched."""
        job = self.store.set_paused(
            job_id, True, next_fire_at=None, next_due_at=None, now=self.clock.now(), by=by
        )
        self._changed()
        self._record("pause", job_id, by=by, via=via)
        return job

    def resume(self, job_id: str, *, by: str | None = None, via: str | None = None) -> Job:
        """Fire again from the next fire after now: a resumed job never bursts through what it missed."""
        job = self.store.get_job(job_id)
        fire, run = next_due(job.spec, self.clock.now()) if job.enabled else (None, None)
        resumed = self.store.set_paused(
            job_id, False, next_fire_at=fire, next_due_at=run, now=self.clock.now(), by=by
        )
        self._changed()
        self._record("resume", job_id, by=by, via=via)
        return resumed

    def remove(self, job_id: str, *, by: str | None = None, via: str | None = None) -> None:
        """Delete a job and its history."""
        self.store.delete_job(job_id)
        self._changed()
        self._record("delete", job_id, by=by, via=via)

    # ---- runs ------------------------------------------------------------------------------------------

    def trigger(
        self,
        job_id: str,
        *,
        triggered_by: str | None = None,
        trigger_source: TriggerSource = TriggerSource.MANUAL,
        via: str | None = None,
    ) -> int:
        """Queue a run now, recorded with who asked (``via`` is where the request came from); any live
        scheduler on the database picks it up."""
        run_id = self.store.enqueue_run(
            job_id, now=self.clock.now(), trigger_source=trigger_source, triggered_by=triggered_by
        )
        self._changed()
        self._record("trigger", job_id, by=triggered_by, via=via, details={"run_id": run_id})
        return run_id

    def cancel(self, run_ids: Iterable[int], *, by: str | None = None, via: str | None = None) -> None:
        """Ask for runs to be cancelled; their owner kills them at its next heartbeat."""
        ids = list(run_ids)
        self.store.request_cancel(ids, now=self.clock.now())
        self._changed()
        for run_id in ids:
            self._record("cancel", str(run_id), by=by, via=via, object_type="run")

    def get_job(self, job_id: str) -> Job:
        return self.store.get_job(job_id)

    def list_jobs(self) -> list[Job]:
        return self.store.list_jobs()

    def get_run(self, run_id: int) -> Run:
        return self.store.get_run(run_id)

    def list_runs(
        self,
        *,
        job_id: str | None = None,
        status: RunStatus | str | Iterable[RunStatus | str] | None = None,
        limit: int = 50,
        before_id: int | None = None,
        sources: TriggerSource | str | Iterable[TriggerSource | str] | None = None,
    ) -> list[Run]:
        """History, newest first; pass the last id of a page as ``before_id`` for the next page."""
        if limit < 1 or limit > 1000:
            raise ValidationError("limit", "must be between 1 and 1000")
        statuses = _statuses(status)
        run_filter = RunFilter(
            job_id=job_id, statuses=statuses, sources=_sources(sources), limit=limit, before_id=before_id
        )
        return self.store.list_runs(run_filter)


def _changed_options(before: JobSpec, after: JobSpec) -> dict[str, Any]:
    """The options an edit changed, old and new, for the audit log."""
    old, new = redact_env(spec_to_dict(before)), redact_env(spec_to_dict(after))
    return {
        key: {"from": old.get(key), "to": new.get(key)}
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }


def _statuses(status: RunStatus | str | Iterable[RunStatus | str] | None) -> tuple[RunStatus, ...]:
    if status is None:
        return ()
    items = [status] if isinstance(status, str) else list(status)
    try:
        return tuple(RunStatus(item) for item in items)
    except ValueError:
        allowed = ", ".join(member.value for member in RunStatus)
        raise ValidationError("status", f"must be one of {allowed}") from None


def _sources(source: TriggerSource | str | Iterable[TriggerSource | str] | None) -> tuple[TriggerSource, ...]:
    if source is None:
        return ()
    items = [source] if isinstance(source, str) else list(source)
    try:
        return tuple(TriggerSource(item) for item in items)
    except ValueError:
        allowed = ", ".join(member.value for member in TriggerSource)
        raise ValidationError("source", f"must be one of {allowed}") from None
