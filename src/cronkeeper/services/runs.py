"""Runs on request and the history: queueing a run now (once per idempotency key), cancelling, listing, and
the figures of jobs over a window of their history."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from cronkeeper.clock import Clock
from cronkeeper.durations import aware_utc
from cronkeeper.exceptions import ConflictError, JobNotFoundError, StoreError, ValidationError
from cronkeeper.executors.output import TailBuffer
from cronkeeper.models import Job, Run, RunStatus, TriggerSource
from cronkeeper.planning import next_due
from cronkeeper.services.changes import ChangeLog
from cronkeeper.store.base import Checkin, IdempotencyStore, JobStore, RunFilter, StatsView
from cronkeeper.store.records import JobStats
from cronkeeper.triggers import IntervalTrigger

# How long an idempotency key is remembered.
IDEMPOTENCY_WINDOW = timedelta(hours=24)
# A key reserved this long ago without a run belongs to a request that died before giving it back (its
# trigger and then its cleanup failed, or its process was killed): a retry takes it over.  Well above the time
# a trigger takes, even one that queues behind SQLite's 30 s busy timeout.
ABANDONED_AFTER = timedelta(minutes=1)
MAX_PAGE = 1000

E = TypeVar("E", bound=StrEnum)


class RunService:
    """Triggering, cancelling and reading runs."""

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        changes: ChangeLog,
        *,
        stats: StatsView,
        idempotency: IdempotencyStore | None = None,
        on_cancel: Callable[[list[int]], None] | None = None,
    ) -> None:
        self._store = store
        self.clock = clock
        self._changes = changes
        self._stats = stats
        self._idempotency = idempotency
        self._on_cancel = on_cancel or (lambda run_ids: None)

    def trigger(
        self,
        job_id: str,
        *,
        triggered_by: str | None = None,
        trigger_source: TriggerSource = TriggerSource.MANUAL,
        via: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Queue a run now, recorded with who asked (``via`` is where the request came from); any live
        scheduler on the database picks it up.  With ``idempotency_key`` a repeated request (same key, same
        ``triggered_by``) returns the run the first one queued instead of queueing another."""
        if idempotency_key is None:
            return self._trigger(job_id, triggered_by, trigger_source, via)
        return self._trigger_once(job_id, triggered_by, trigger_source, via, idempotency_key)

    def _trigger(
        self, job_id: str, triggered_by: str | None, trigger_source: TriggerSource, via: str | None
    ) -> int:
        if self._store.get_job(job_id).spec.runs_elsewhere:
            raise ConflictError(
                f"job {job_id!r} runs elsewhere and reports its runs: cronkeeper cannot run it"
            )
        run_id = self._store.enqueue_run(
            job_id, now=self.clock.now(), trigger_source=trigger_source, triggered_by=triggered_by
        )
        self._changes.announce()
        self._changes.record("trigger", job_id, by=triggered_by, via=via, details={"run_id": run_id})
        return run_id

    def _trigger_once(
        self, job_id: str, triggered_by: str | None, trigger_source: TriggerSource, via: str | None, key: str
    ) -> int:
        """The key is reserved before the run is queued, so that a retry racing the first request cannot queue
        a second run; a failed request gives its key back so that it can be retried."""
        if self._idempotency is None:
            raise ValidationError("idempotency_key", "is not supported by this scheduler")
        keys, actor, now = self._idempotency, triggered_by or "library", self.clock.now()
        found = keys.reserve_key(
            actor,
            key,
            job_id,
            now=now,
            forget_before=now - IDEMPOTENCY_WINDOW,
            abandoned_before=now - ABANDONED_AFTER,
        )
        if found is not None:
            first_job, run_id = found
            if first_job != job_id:
                raise ValidationError("Idempotency-Key", f"was already used for job {first_job!r}")
            if run_id is None:
                raise ConflictError("a request with this Idempotency-Key is still in progress; retry shortly")
            return run_id
        try:
            run_id = self._trigger(job_id, triggered_by, trigger_source, via)
        except BaseException:
            # If the key cannot be given back either, the error to report is still the first one: the
            # reservation is abandoned, and a retry takes it over after ABANDONED_AFTER.
            with contextlib.suppress(StoreError):
                keys.settle_key(actor, key, None, reserved_at=now)
            raise
        keys.settle_key(actor, key, run_id, reserved_at=now)
        return run_id

    def check_in(
        self,
        job_id: str,
        event: str,
        *,
        run_id: int | None = None,
        exit_code: int | None = None,
        output: str | None = None,
        duration: timedelta | None = None,
        by: str | None = None,
        owner: str | None = None,
    ) -> Run:
        """Record a run of a check-in job, which runs elsewhere: ``start`` (returns the run, to end later by
        its id), ``success`` or ``fail`` (the end of that run, or a whole run by itself).  A new run answers
        the fire the job was expected for (or, far ahead of it, none) and moves the expectation on."""
        status = CHECKIN_EVENTS.get(event)
        if status is None:
            raise ValidationError("event", f"must be one of {', '.join(CHECKIN_EVENTS)}")
        if exit_code is not None and not -(2**31) <= exit_code < 2**31:
            raise ValidationError("exit_code", "must be a whole number that fits an exit status")
        if duration is not None and duration < timedelta(0):
            raise ValidationError("duration", "must not be negative")
        if run_id is not None and status is RunStatus.RUNNING:
            raise ValidationError("run_id", "is given with success or fail, to end the run a start began")
        job = self._store.get_job(job_id)
        spec = job.spec
        if not spec.runs_elsewhere:
            raise ConflictError(
                f"job {job_id!r} is run by cronkeeper; check-ins are for jobs that run elsewhere"
            )
        now = self.clock.now()
        fire, due = (None, None) if run_id is not None else _next_expected(job, now)
        error = None
        if status is RunStatus.FAILED:
            error = "failed" if exit_code is None else f"exit code {exit_code}"
        checkin = Checkin(
            job_id,
            status,
            run_id=run_id,
            exit_code=exit_code,
            output=None if output is None else _tail(output, spec.output_limit),
            error=error,
            duration=duration,
            by=by,
            owner=owner,
            moves_expectation=run_id is None and job.enabled,
            next_fire_at=fire,
            next_due_at=due,
        )
        run = self._store.record_checkin(checkin, now=now)
        self._changes.announce()
        return run

    def keep_alive(self, owner: str, *, hostname: str, pid: int) -> None:
        """Heartbeat as a node while a reported run goes on (``cronkeeper exec``): if the reporter dies, the
        nodes mark its run lost, as they would a scheduler's."""
        self._store.heartbeat(owner=owner, now=self.clock.now(), hostname=hostname, pid=pid)

    def sign_off(self, owner: str) -> None:
        """The reporter is done: it is no longer a live node."""
        self._store.retire_node(owner=owner, now=self.clock.now())

    def cancel(self, run_ids: Iterable[int], *, by: str | None = None, via: str | None = None) -> None:
        """Ask for runs to be cancelled: those of this process stop at once, those of others at their
        owner's next heartbeat; runs that already ended are left as they are."""
        ids = list(run_ids)
        self._on_cancel(ids)
        self._store.request_cancel(ids, now=self.clock.now())
        self._changes.announce()
        for run_id in ids:
            self._changes.record("cancel", str(run_id), by=by, via=via, object_type="run")

    def cancel_run(self, run_id: int, *, by: str | None = None, via: str | None = None) -> Run:
        """Cancel one run that is still queued or running; raises ``RunNotFoundError``, or ``ConflictError``
        for a run that has already ended (there is nothing to cancel)."""
        run = self._store.get_run(run_id)
        if not run.status.is_active:
            raise ConflictError(
                f"run {run_id} has already ended ({run.status.value}); there is nothing to cancel"
            )
        self.cancel([run_id], by=by, via=via)
        return run

    def get_run(self, run_id: int) -> Run:
        return self._store.get_run(run_id)

    def list_runs(
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
        """History, newest first; pass the last id of a page as ``before_id`` for the next page.  ``since``
        and ``until`` keep the runs whose ``scheduled_for`` (the instant a run is for, not when it ran) is in
        ``[since, until)``, so that a day's history is the runs meant for that day."""
        if limit < 1 or limit > MAX_PAGE:
            raise ValidationError("limit", f"must be between 1 and {MAX_PAGE}")
        since, until = window(since, until)
        run_filter = RunFilter(
            job_id=job_id,
            statuses=_choices(RunStatus, status, "status"),
            sources=_choices(TriggerSource, sources, "source"),
            limit=limit,
            before_id=before_id,
            since=since,
            until=until,
        )
        return self._store.list_runs(run_filter)

    def stats(
        self,
        job_id: str | Iterable[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, JobStats]:
        """Figures of each job over its runs whose ``scheduled_for`` is in ``[since, until)`` (either end
        open when None), keyed by job id: in the order asked, or of every job in id order.  A job without
        runs there has zeros; a job asked for by id that does not exist raises ``JobNotFoundError``, so that a
        typo is not mistaken for a job that never ran."""
        since, until = window(since, until)
        asked = None if job_id is None else _job_ids(job_id)
        found = self._stats.job_stats(asked, since=since, until=until)
        if asked is None:
            return found
        for wanted in asked:
            if wanted not in found:
                raise JobNotFoundError(wanted)
        return {wanted: found[wanted] for wanted in asked}


def window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """A window of history as UTC instants; its ends must be aware, and in order."""
    since = None if since is None else aware_utc(since, "since")
    until = None if until is None else aware_utc(until, "until")
    if since is not None and until is not None and until < since:
        raise ValidationError("until", "must not be before since")
    return since, until


def _job_ids(given: str | Iterable[str]) -> list[str]:
    ids = [given] if isinstance(given, str) else list(given)
    if not all(isinstance(job_id, str) for job_id in ids):
        raise ValidationError("job_id", "must be a job id or a list of job ids")
    return list(dict.fromkeys(ids))


# What a check-in says, and the status it gives its run.
CHECKIN_EVENTS = {"start": RunStatus.RUNNING, "success": RunStatus.SUCCEEDED, "fail": RunStatus.FAILED}


def _next_expected(job: Job, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The fire a check-in at ``now`` leaves the job expected for.  An interval job is expected one interval
    after its last report.  A cron or one-off job: a check-in within the misfire grace before a fire (or
    after it) answers that fire, and the next fire is expected; one far ahead of it is an extra run, and the
    job stays expected at that fire."""
    trigger = job.spec.trigger
    if isinstance(trigger, IntervalTrigger):
        # "Every hour": the next report is due an interval after this one, whenever this one came.
        following = now + trigger.every
        return (
            (None, None)
            if trigger.end_at is not None and following > trigger.end_at
            else (following, following)
        )
    fire = job.next_fire_at
    if fire is not None and now < fire - job.spec.misfire_grace:
        return fire, job.next_due_at
    return next_due(job.spec, now if fire is None else max(now, fire))


def _tail(text: str, limit: int) -> str:
    """The end of a reported output, cut as a run's own output is (``output_limit`` bytes, marked)."""
    tail = TailBuffer(limit)
    tail.append(text.encode("utf-8", errors="replace"))
    return tail.text()


def _choices(kind: type[E], given: E | str | Iterable[E | str] | None, field: str) -> tuple[E, ...]:
    """Filter values as members of ``kind``; a value that is none of them is an error naming ``field``."""
    if given is None:
        return ()
    items = [given] if isinstance(given, str) else list(given)
    try:
        return tuple(kind(item) for item in items)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValidationError(field, f"must be one of {allowed}") from None
