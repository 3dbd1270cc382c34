"""How stored cronkeeper jobs look to APScheduler code: which of them a scheduler holds, and as what ``Job``.

APScheduler knows a job by the trigger object it was given and the executor alias it was sent to; cronkeeper
stores neither.  :class:`JobViews` remembers both for the jobs this scheduler added and, for the others
(added by another process, or changed since from the CLI or the dashboard), shows the stored schedule.
"""

from __future__ import annotations

import threading
from datetime import datetime

from cronkeeper.compat.apscheduler.errors import JobLookupError
from cronkeeper.compat.apscheduler.jobs import Job, JobHost, grace_time_of
from cronkeeper.compat.apscheduler.time import in_zone
from cronkeeper.compat.apscheduler.triggers import BaseTrigger, same_schedule, stored_trigger
from cronkeeper.models import CallableTarget, Catchup
from cronkeeper.models import Job as StoredJob
from cronkeeper.scheduler import SchedulerBase


def is_visible(job: StoredJob) -> bool:
    """Jobs an APScheduler scheduler would hold: Python functions, enabled, with a fire to come or paused.
    (APScheduler deletes a job after its last fire; cronkeeper keeps it, with its history, out of sight.)"""
    return (
        job.enabled
        and isinstance(job.spec.target, CallableTarget)
        and (job.paused or job.next_due_at is not None)
    )


class JobViews:
    """Stored jobs as APScheduler ``Job`` objects of ``host``, with the triggers and executors it gave."""

    def __init__(self, host: JobHost, core: SchedulerBase, zone: str) -> None:
        self._host = host
        self._core = core
        self._zone = zone
        self._triggers: dict[str, BaseTrigger] = {}
        self._executors: dict[str, str] = {}
        self._lock = threading.Lock()

    def remember(
        self, job_id: str, *, trigger: BaseTrigger | None = None, executor: str | None = None
    ) -> None:
        with self._lock:
            if trigger is not None:
                self._triggers[job_id] = trigger
            if executor is not None:
                self._executors[job_id] = executor

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._triggers.pop(job_id, None)
            self._executors.pop(job_id, None)

    def visible(self) -> list[StoredJob]:
        return [job for job in self._core.jobs() if is_visible(job)]

    def find(self, job_id: str) -> StoredJob | None:
        job = self._core.service.find_job(job_id)
        return job if job is not None and is_visible(job) else None

    def stored(self, job_id: str) -> StoredJob:
        """The stored job, or APScheduler's JobLookupError."""
        job = self.find(job_id)
        if job is None:
            raise JobLookupError(job_id)
        return job

    def trigger_of(self, stored: StoredJob, now: datetime) -> BaseTrigger:
        """The trigger this scheduler gave the job, while it still describes the stored schedule."""
        known = self._triggers.get(stored.id)
        if known is not None and same_schedule(known, stored.spec.trigger, now):
            return known
        return stored_trigger(stored.spec.trigger, self._zone, stored.spec.jitter)

    def view(self, stored: StoredJob) -> Job:
        spec = stored.spec
        target = spec.target
        assert isinstance(target, CallableTarget)
        return Job(
            self._host,
            id=spec.id,
            name=spec.name or target.ref.rpartition(":")[2],
            func_ref=target.ref,
            args=tuple(target.args),
            kwargs=dict(target.kwargs),
            trigger=self.trigger_of(stored, self._core.clock.now()),
            executor=self._executors.get(spec.id, "default"),
            coalesce=spec.catchup is not Catchup.ALL,
            max_instances=spec.max_instances,
            misfire_grace_time=grace_time_of(spec.misfire_grace),
            next_run_time=None if stored.paused else in_zone(stored.next_due_at, self._zone),
        )
