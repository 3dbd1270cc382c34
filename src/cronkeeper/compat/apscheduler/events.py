"""APScheduler 3's events: the codes (same bit values), the event classes, and how cronkeeper's run events
become them.

cronkeeper reports what happens to runs (:class:`~cronkeeper.events.RunEvent`); APScheduler listeners expect
job execution events.  :func:`job_events` is the one place that maps the first onto the second; the facade's
own actions (adding, pausing, shutting down…) create their events where they happen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cronkeeper.compat.apscheduler.errors import JobExecutionError, JobTimeoutError
from cronkeeper.events import EventKind, RunEvent
from cronkeeper.planning import is_overlap_skip

EVENT_SCHEDULER_STARTED = EVENT_SCHEDULER_START = 2**0
EVENT_SCHEDULER_SHUTDOWN = 2**1
EVENT_SCHEDULER_PAUSED = 2**2
EVENT_SCHEDULER_RESUMED = 2**3
EVENT_EXECUTOR_ADDED = 2**4
EVENT_EXECUTOR_REMOVED = 2**5
EVENT_JOBSTORE_ADDED = 2**6
EVENT_JOBSTORE_REMOVED = 2**7
EVENT_ALL_JOBS_REMOVED = 2**8
EVENT_JOB_ADDED = 2**9
EVENT_JOB_REMOVED = 2**10
EVENT_JOB_MODIFIED = 2**11
EVENT_JOB_EXECUTED = 2**12
EVENT_JOB_ERROR = 2**13
EVENT_JOB_MISSED = 2**14
EVENT_JOB_SUBMITTED = 2**15
EVENT_JOB_MAX_INSTANCES = 2**16
EVENT_ALL = 2**17 - 1  # every code above, as APScheduler's own EVENT_ALL

DEFAULT_JOBSTORE = "default"


class SchedulerEvent:
    """An event about the scheduler itself; ``alias`` names a job store or executor where one applies."""

    def __init__(self, code: int, alias: str | None = None) -> None:
        self.code = code
        self.alias = alias

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (code={self.code})>"


class JobEvent(SchedulerEvent):
    """An event about one job."""

    def __init__(self, code: int, job_id: str, jobstore: str | None) -> None:
        super().__init__(code)
        self.job_id = job_id
        self.jobstore = jobstore


class JobSubmissionEvent(JobEvent):
    """A job was handed to its executor (or, with ``EVENT_JOB_MAX_INSTANCES``, could not be)."""

    def __init__(
        self, code: int, job_id: str, jobstore: str | None, scheduled_run_times: list[datetime]
    ) -> None:
        super().__init__(code, job_id, jobstore)
        self.scheduled_run_times = scheduled_run_times


class JobExecutionEvent(JobEvent):
    """A run ended (executed or failed) or a fire was missed."""

    def __init__(
        self,
        code: int,
        job_id: str,
        jobstore: str | None,
        scheduled_run_time: datetime,
        retval: Any = None,
        exception: BaseException | None = None,
        traceback: str | None = None,
    ) -> None:
        super().__init__(code, job_id, jobstore)
        self.scheduled_run_time = scheduled_run_time
        self.retval = retval
        self.exception = exception
        self.traceback = traceback


# Listeners are often written for the events of their mask (``def on_error(event: JobExecutionEvent)``):
# any one-argument callable is accepted, as APScheduler does.
APSListener = Callable[[Any], object]

_ERROR_KINDS = frozenset({EventKind.FAILED, EventKind.TIMED_OUT, EventKind.LOST})


def job_events(event: RunEvent, zone: ZoneInfo) -> list[SchedulerEvent]:
    """The APScheduler events a run event stands for (none for a cancelled run: APScheduler has no such
    thing, and shutting down would otherwise look like a failure to error listeners)."""
    when = event.scheduled_for.astimezone(zone)
    if event.kind is EventKind.STARTED:
        return [JobSubmissionEvent(EVENT_JOB_SUBMITTED, event.job_id, DEFAULT_JOBSTORE, [when])]
    if event.kind is EventKind.SKIPPED:
        if not is_overlap_skip(event.error):  # the job was paused or changed before the run was due
            return []
        return [JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, event.job_id, DEFAULT_JOBSTORE, [when])]
    if event.kind is EventKind.SUCCEEDED:
        return [
            JobExecutionEvent(EVENT_JOB_EXECUTED, event.job_id, DEFAULT_JOBSTORE, when, retval=retval(event))
        ]
    if event.kind is EventKind.MISSED:
        # One record stands for every fire missed; APScheduler's event names the newest of them.
        last = (event.result or {}).get("last")
        newest = datetime.fromisoformat(last).astimezone(zone) if isinstance(last, str) else when
        return [JobExecutionEvent(EVENT_JOB_MISSED, event.job_id, DEFAULT_JOBSTORE, newest)]
    if event.kind in _ERROR_KINDS:
        return [
            JobExecutionEvent(
                EVENT_JOB_ERROR,
                event.job_id,
                DEFAULT_JOBSTORE,
                when,
                exception=job_exception(event),
                traceback=event.traceback,
            )
        ]
    return []


def retval(event: RunEvent) -> Any:
    """What the job returned: the object itself when it ran in this process, else as the run record keeps
    it (JSON: a dict as it was, any other value out of its ``{"value": ...}`` wrapper, so a tuple comes back
    a list and a value JSON cannot hold as its ``repr``)."""
    if event.value is not None:
        return event.value
    result = event.result
    if result is not None and set(result) == {"value"}:
        return result["value"]
    return result


def job_exception(event: RunEvent) -> BaseException:
    """The exception the job raised when this process saw it, else a stand-in carrying the recorded error."""
    if event.exception is not None:
        return event.exception
    message = event.error or f"run {event.run_id} {event.kind.value}"
    if event.kind is EventKind.TIMED_OUT:
        return JobTimeoutError(message)
    return JobExecutionError(message)


class ListenerSet:
    """APScheduler-style listeners: each with a bit mask; a failing one is logged and never stops the rest
    (nor the scheduler)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._entries: list[tuple[APSListener, int]] = []
        self._lock = threading.Lock()

    def add(self, callback: APSListener, mask: int) -> None:
        with self._lock:
            self._entries.append((callback, mask))

    def remove(self, callback: APSListener) -> None:
        with self._lock:
            self._entries = [entry for entry in self._entries if entry[0] != callback]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def dispatch(self, event: SchedulerEvent) -> None:
        with self._lock:
            entries = list(self._entries)
        for callback, mask in entries:
            if event.code & mask:
                try:
                    callback(event)
                except Exception:
                    self._log.exception("Error notifying listener %r of %r", callback, event)

    def dispatch_all(self, events: list[SchedulerEvent]) -> None:
        for event in events:
            self.dispatch(event)
