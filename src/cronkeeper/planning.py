"""What to do with a job that is due: a pure function of the job, the time and how many runs are active.

The store calls :func:`plan_fires` inside its claim transaction and writes what it returns, so the misfire,
catch-up and overlap rules live here once, testable without a database or a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cronkeeper.durations import format_duration
from cronkeeper.models import CATCHUP_ALL_CAP, Catchup, JobSpec, Overlap, RunStatus, TriggerSource

# How many past fires are enumerated one by one; beyond it a long outage is summarised as "more than".
ENUMERATION_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """A run row to insert: to execute (``QUEUED``) or a record of a fire that did not run."""

    scheduled_for: datetime
    source: TriggerSource
    status: RunStatus = RunStatus.QUEUED
    error: str | None = None
    result: dict[str, object] | None = None


@dataclass(frozen=True, slots=True)
class FirePlan:
    """Rows to write for one due job, where its schedule goes next, and whether active runs are replaced."""

    runs: list[PlannedRun] = field(default_factory=list)
    next_fire_at: datetime | None = None
    next_run_at: datetime | None = None
    replace_active: bool = False


def next_due(
    spec: JobSpec, after: datetime, rng: random.Random | None = None
) -> tuple[datetime | None, datetime | None]:
    """The next nominal fire strictly after ``after`` and the instant it is due (the fire plus jitter)."""
    fire = spec.trigger.next_after(after)
    if fire is None:
        return None, None
    if not spec.jitter:
        return fire, fire
    offset = (rng or random).uniform(0, spec.jitter.total_seconds())
    return fire, fire + timedelta(seconds=offset)


def plan_fires(
    spec: JobSpec, first_fire: datetime, now: datetime, active: int, rng: random.Random | None = None
) -> FirePlan:
    """Decide the runs for every fire from ``first_fire`` up to ``now`` of a job with ``active`` live runs."""
    fires, complete = _due_fires(spec, first_fire, now)
    chosen, missed = _apply_catchup(spec, fires, now)
    runs = _apply_overlap(spec, chosen, active)
    if missed or not complete:
        runs.insert(0, _missed_record(spec, missed, complete))
    after = fires[-1] if complete else now
    next_fire_at, next_run_at = next_due(spec, after, rng)
    replace = (
        spec.overlap is Overlap.REPLACE and active > 0 and any(run.status is RunStatus.QUEUED for run in runs)
    )
    return FirePlan(runs, next_fire_at, next_run_at, replace)


def _due_fires(spec: JobSpec, first_fire: datetime, now: datetime) -> tuple[list[datetime], bool]:
    """Fires due by ``now``, oldest first; False when there were too many to list."""
    fires: list[datetime] = []
    fire: datetime | None = first_fire
    while fire is not None and fire <= now:
        if len(fires) == ENUMERATION_LIMIT:
            return fires, False
        fires.append(fire)
        fire = spec.trigger.next_after(fire)
    return fires, True


def _apply_catchup(
    spec: JobSpec, fires: list[datetime], now: datetime
) -> tuple[list[PlannedRun], list[datetime]]:
    """Split due fires into runs to start and fires recorded as missed."""
    on_time = [fire for fire in fires if now - fire <= spec.misfire_grace]
    late = [fire for fire in fires if now - fire > spec.misfire_grace]
    if spec.catchup is Catchup.ALL:
        kept = fires[-CATCHUP_ALL_CAP:]
        runs = [
            PlannedRun(fire, TriggerSource.CATCHUP if fire in late else TriggerSource.SCHEDULE)
            for fire in kept
        ]
        return runs, fires[: len(fires) - len(kept)]
    if on_time:
        # Several fires within the grace (a short stall) coalesce into the newest one.
        return [PlannedRun(on_time[-1], TriggerSource.SCHEDULE)], fires[:-1]
    if late and spec.catchup is Catchup.ONCE:
        return [PlannedRun(late[-1], TriggerSource.CATCHUP)], late[:-1]
    return [], late


def free_slots(spec: JobSpec, active: int) -> int:
    """How many more runs the overlap policy lets start while ``active`` runs of the job are live."""
    if spec.overlap is Overlap.REPLACE:
        return 1
    if spec.overlap is Overlap.FORBID:
        return 0 if active else 1
    return max(spec.max_instances - active, 0)


def _apply_overlap(spec: JobSpec, chosen: list[PlannedRun], active: int) -> list[PlannedRun]:
    """Turn runs that the overlap policy forbids into ``skipped`` records."""
    free = free_slots(spec, active)
    out: list[PlannedRun] = []
    for run in chosen:
        if free > 0:
            out.append(run)
            free -= 1
        else:
            out.append(
                PlannedRun(run.scheduled_for, run.source, RunStatus.SKIPPED, error=skip_reason(spec, active))
            )
    return out


def skip_reason(spec: JobSpec, active: int) -> str:
    """The message of a run the overlap policy did not allow."""
    return (
        f"not started: {active} run(s) of this job still active "
        f"(overlap={spec.overlap.value}, max_instances={spec.max_instances})"
    )


def _missed_record(spec: JobSpec, missed: list[datetime], complete: bool) -> PlannedRun:
    """One record summarising every missed fire, so an outage leaves one row, not thousands."""
    count = f"{len(missed)}" if complete else f"more than {len(missed)}"
    first, last = missed[0], missed[-1]
    error = (
        f"missed {count} fire(s) from {first.isoformat()} to {last.isoformat()} "
        f"(misfire grace {format_duration(spec.misfire_grace)}, catchup={spec.catchup.value})"
    )
    result: dict[str, object] = {
        "missed": len(missed),
        "complete": complete,
        "first": first.isoformat(),
        "last": last.isoformat(),
    }
    return PlannedRun(first, TriggerSource.SCHEDULE, RunStatus.MISSED, error, result)
