"""Which run the calling code belongs to: ``current_run()`` inside a job function.

A job that names its output by the day it was scheduled for, or logs its run id, must not read the wall
clock (a fake clock in tests, a late start after downtime): it asks for its run.  Commands and isolated
functions get the same facts as environment variables (``CRONKEEPER_RUN_ID``, ``CRONKEEPER_JOB_ID``,
``CRONKEEPER_SCHEDULED_FOR``, ``CRONKEEPER_ATTEMPT``, ``CRONKEEPER_TRIGGERED_BY``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from cronkeeper.models import TriggerSource
from cronkeeper.scoped import Scoped


@dataclass(frozen=True, slots=True)
class RunContext:
    """The run a job function is executing for."""

    run_id: int
    job_id: str
    scheduled_for: datetime
    attempt: int
    trigger_source: TriggerSource
    triggered_by: str | None = None

    def environment(self) -> dict[str, str]:
        """The same facts for a child process."""
        env = {
            "CRONKEEPER_RUN_ID": str(self.run_id),
            "CRONKEEPER_JOB_ID": self.job_id,
            "CRONKEEPER_SCHEDULED_FOR": self.scheduled_for.isoformat(),
            "CRONKEEPER_ATTEMPT": str(self.attempt),
            "CRONKEEPER_SOURCE": self.trigger_source.value,
        }
        if self.triggered_by is not None:
            env["CRONKEEPER_TRIGGERED_BY"] = self.triggered_by
        return env

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> RunContext | None:
        """The context a parent passed to this process, if any."""
        if "CRONKEEPER_RUN_ID" not in env:
            return None
        return cls(
            run_id=int(env["CRONKEEPER_RUN_ID"]),
            job_id=env["CRONKEEPER_JOB_ID"],
            scheduled_for=datetime.fromisoformat(env["CRONKEEPER_SCHEDULED_FOR"]),
            attempt=int(env.get("CRONKEEPER_ATTEMPT", "0")),
            trigger_source=TriggerSource(env.get("CRONKEEPER_SOURCE", TriggerSource.SCHEDULE.value)),
            triggered_by=env.get("CRONKEEPER_TRIGGERED_BY"),
        )


# A context variable, not a global: each thread and each task sees the run it is executing.
_CURRENT: ContextVar[RunContext | None] = ContextVar("cronkeeper_current_run", default=None)


def current_run() -> RunContext | None:
    """The run the calling job function executes for; None outside a job."""
    return _CURRENT.get()


def running(context: RunContext | None) -> Scoped[RunContext | None]:
    """Within the block, ``current_run()`` answers ``context``."""
    return Scoped(_CURRENT, context)
