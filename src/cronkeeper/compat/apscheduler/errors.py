"""APScheduler 3's exception classes, rooted in cronkeeper's hierarchy.

Code written for APScheduler catches ``JobLookupError`` or ``KeyError``; code written for cronkeeper catches
``JobNotFoundError`` or ``CronkeeperError``.  Each class below is both, so either kind of ``except`` works.
"""

from __future__ import annotations

from cronkeeper.exceptions import (
    CronkeeperError,
    JobExistsError,
    JobNotFoundError,
    SchedulerStateError,
    ValidationError,
)


class JobLookupError(JobNotFoundError, KeyError):
    """No job with that id (APScheduler raises it from ``remove_job``, ``modify_job``, ``pause_job``…)."""

    def __str__(self) -> str:
        # KeyError would show the message quoted; APScheduler's reads as a sentence.
        return f"No job by the id of {self.job_id} was found"


class ConflictingIdError(JobExistsError, KeyError):
    """A job with that id was already added by this process (without ``replace_existing``)."""

    def __str__(self) -> str:
        return f"Job identifier ({self.job_id}) conflicts with an existing job"


class NotATriggerError(ValidationError, TypeError):
    """``modify_job`` was given a trigger alias (or None) instead of a trigger object: a ``TypeError``, as
    APScheduler raises, and a cronkeeper ``ValidationError`` naming ``trigger``."""


class UnknownJobStoreError(ValidationError, KeyError):
    """A ``jobstore`` alias the scheduler was not configured with: a ``KeyError``, as APScheduler's ``No such
    job store``, and a cronkeeper ``ValidationError`` naming ``jobstore``."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would show the message quoted


class SchedulerAlreadyRunningError(SchedulerStateError):
    """``start()`` on a scheduler that is running or paused."""

    def __init__(self) -> None:
        super().__init__("Scheduler is already running")


class SchedulerNotRunningError(SchedulerStateError):
    """``shutdown()``, ``pause()`` or ``resume()`` on a scheduler that was not started."""

    def __init__(self) -> None:
        super().__init__("Scheduler is not running")


class JobExecutionError(CronkeeperError, RuntimeError):
    """Stands in for a job's exception where the object itself is not at hand: the run failed in another
    process or a child process, or was lost with its process.  The message is the recorded error."""


class JobTimeoutError(JobExecutionError, TimeoutError):
    """A run went past its ``timeout``; a thread cannot be interrupted, so no exception was raised in it."""
