"""cronkeeper: cron with a memory.  Persistent scheduled jobs with run history, timeouts, retries and safe
multi-process operation, on SQLite or PostgreSQL."""

from __future__ import annotations

from cronkeeper.clock import Clock, FakeClock, SystemClock
from cronkeeper.events import EventKind, RunEvent
from cronkeeper.exceptions import (
    ConfigError,
    ConflictError,
    CronkeeperError,
    InvalidScheduleError,
    JobExistsError,
    JobNotFoundError,
    NotFoundError,
    RunFailed,
    RunNotFoundError,
    SchedulerStateError,
    StoreError,
    TargetImportError,
    ValidationError,
)
from cronkeeper.models import AlertKind, Catchup, Job, NotifyOptions, Overlap, Run, RunStatus, TriggerSource
from cronkeeper.runcontext import RunContext, current_run
from cronkeeper.scheduler import AsyncScheduler, Scheduler
from cronkeeper.services.jobs import SyncReport
from cronkeeper.settings import DeliverySettings, SchedulerSettings
from cronkeeper.store.records import JobStats, RunMark

__all__ = [
    "AlertKind",
    "AsyncScheduler",
    "Catchup",
    "Clock",
    "ConfigError",
    "ConflictError",
    "CronkeeperError",
    "DeliverySettings",
    "EventKind",
    "FakeClock",
    "InvalidScheduleError",
    "Job",
    "JobExistsError",
    "JobNotFoundError",
    "JobStats",
    "NotFoundError",
    "NotifyOptions",
    "Overlap",
    "Run",
    "RunContext",
    "RunEvent",
    "RunFailed",
    "RunMark",
    "RunNotFoundError",
    "RunStatus",
    "Scheduler",
    "SchedulerSettings",
    "SchedulerStateError",
    "StoreError",
    "SyncReport",
    "SystemClock",
    "TargetImportError",
    "TriggerSource",
    "ValidationError",
    "current_run",
]
