"""The whole error hierarchy of cronkeeper.

Every error derives from :class:`CronkeeperError` and, where a builtin means the same thing, from that builtin
too, so callers can catch ``ValueError`` or ``LookupError`` without importing cronkeeper.  Errors carry their
facts as attributes, not only in the message, so the CLI and the HTTP layer can point at the offending field.
"""

from __future__ import annotations


class CronkeeperError(Exception):
    """Root of every error raised by cronkeeper."""


class ValidationError(CronkeeperError, ValueError):
    """Input that cannot be accepted; ``field`` names what was wrong and ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidScheduleError(ValidationError):
    """A cron expression, interval or date that cannot be used as a schedule."""


class CronComputationError(CronkeeperError, RuntimeError):
    """A cron expression whose next fire could not be found within the search bound: a defect to report, not
    bad input.  The engine records it on the job and goes on with every other job."""

    def __init__(self, expression: str, timezone: str, candidates: int) -> None:
        super().__init__(
            f"cron expression {expression!r} in {timezone}: no fire found among {candidates:,} wall-clock "
            "times; the schedule cannot be computed"
        )
        self.expression = expression
        self.timezone = timezone


class ConfigError(ValidationError):
    """A configuration file or environment substitution that cannot be used."""


class JobNotFoundError(CronkeeperError, LookupError):
    """No job has the given id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class JobExistsError(CronkeeperError, ValueError):
    """A job with the given id already exists."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"a job with id {job_id!r} already exists")
        self.job_id = job_id


class RunNotFoundError(CronkeeperError, LookupError):
    """No run has the given id."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"no run with id {run_id}")
        self.run_id = run_id


class NotFoundError(CronkeeperError, LookupError):
    """Nothing of ``kind`` (a channel, an alert…) is named ``name``."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} not found")
        self.kind = kind
        self.name = name


class AccountNotFoundError(NotFoundError):
    """No user or API token by that name."""


class ConflictError(CronkeeperError):
    """A write lost a race: the job changed since it was read (optimistic concurrency)."""


class StoreError(CronkeeperError):
    """The database failed; the original driver error is chained as ``__cause__``."""


class TargetImportError(CronkeeperError, ImportError):
    """A job's ``module:function`` target cannot be imported."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"cannot import {ref!r}: {reason}")
        self.ref = ref
        self.reason = reason


class SchedulerStateError(CronkeeperError, RuntimeError):
    """The scheduler was asked to do something its current state does not allow (start twice, say)."""


class RunFailed(CronkeeperError):
    """Raised by a job to end its run as failed while still storing ``result`` (what it did manage): the run
    is recorded ``failed`` with the message as its error, and retried like any failure."""

    def __init__(self, message: str, *, result: object = None) -> None:
        super().__init__(message)
        self.result = result
