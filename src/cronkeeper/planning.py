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
from cronkeeper.triggers import Trigger

# How many past fires are enumerated one by one; beyond it a long outage is summarised as "at least".
ENUMERATION_LIMIT = 1000
# How many windows, widening or narrowing back from now, are tried to find the newest fires of a long outage.
TAIL_PROBES = 12


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """A run row to insert: to execute (``QUEUED``) or a record of a fire that did not run."""

    scheduled_for: datetime
    trigger_source: TriggerSource
    status: RunStatus = RunStatus.QUEUED
    error: str | None = None
    result: dict[str, object] | None = None


@dataclass(frozen=True, slots=True)
class FirePlan:
    """Rows to write for one due job, where its schedule goes next, and whether active runs are replaced."""

    runs: list[PlannedRun] = field(default_factory=list)
    next_fire_at: datetime | None = None
    next_due_at: datetime | None = None
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
    next_fire_at, next_due_at = next_due(spec, after, rng)
    replace = (
        spec.overlap is Overlap.REPLACE and active > 0 and any(run.status is RunStatus.QUEUED for run in runs)
    )
    return FirePlan(runs, next_fire_at, next_due_at, replace)


def _due_fires(spec: JobSpec, first_fire: datetime, now: datetime) -> tuple[list[datetime], bool]:
    """Fires due by ``now``, oldest first; False when there were too many to list.

    Past the limit the list is the first fires then the newest ones: the summary still starts where the outage
    did, and what is recent (the fire within the grace, the newest to catch up) is still decided on.
    """
    head, complete = _fires_until(spec.trigger, first_fire, now, ENUMERATION_LIMIT)
    if complete:
        return head, True
    return head + _newest_fires(spec.trigger, head, now), False


def _fires_until(
    trigger: Trigger, fire: datetime | None, now: datetime, limit: int
) -> tuple[list[datetime], bool]:
    """Up to ``limit`` fires from ``fire`` on, up to ``now``; False when more were left."""
    fires: list[datetime] = []
    while fire is not None and fire <= now:
        if len(fires) == limit:
            return fires, False
        fires.append(fire)
        fire = trigger.next_after(fire)
    return fires, True


def _newest_fires(trigger: Trigger, head: list[datetime], now: datetime) -> list[datetime]:
    """Up to CATCHUP_ALL_CAP of the newest fires after ``head`` and up to ``now``, oldest first.

    Triggers only look forward, so this lists the fires of a window ending at ``now``: sized first by how
    densely ``head`` fired, widened when it holds too few, narrowed when too many to list, a bounded number of
    times.
    """
    span = (head[-1] - head[0]) / (len(head) - 1) * CATCHUP_ALL_CAP * 2
    found: list[datetime] = []
    for _ in range(TAIL_PROBES):
        start = max(now - span, head[-1])
        fires, complete = _fires_until(trigger, trigger.next_after(start), now, ENUMERATION_LIMIT)
        if not complete:
            span /= 3
            continue
        found = fires
        if len(found) >= CATCHUP_ALL_CAP or start == head[-1]:
            break
        span *= 4
    return found[-CATCHUP_ALL_CAP:]


def _apply_catchup(
    spec: JobSpec, fires: list[datetime], now: datetime
) -> tuple[list[PlannedRun], list[datetime]]:
    """Split due fires into runs to start and fires recorded as missed."""
    on_time = [fire for fire in fires if now - fire <= spec.misfire_grace]
    late = [fire for fire in fires if now - fire > spec.misfire_grace]
    if spec.catchup is Catchup.ALL:
        kept = fires[-CATCHUP_ALL_CAP:]
        runs = [
            PlannedRun(
                fire, TriggerSource.CATCHUP if now - fire > spec.misfire_grace else TriggerSource.SCHEDULE
            )
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
                PlannedRun(
                    run.scheduled_for, run.trigger_source, RunStatus.SKIPPED, error=skip_reason(spec, active)
                )
            )
    return out


OVERLAP_SKIP = "run(s) of this job still active"


def skip_reason(spec: JobSpec, active: int) -> str:
    """The message of a run the overlap policy did not allow (it holds :data:`OVERLAP_SKIP`)."""
    return (
        f"not started: {active} {OVERLAP_SKIP} "
        f"(overlap={spec.overlap.value}, max_instances={spec.max_instances})"
    )


def is_overlap_skip(error: str | None) -> bool:
    """Whether a skipped run's error says the overlap policy refused it (not, say, a pause before it was
    due)."""
    return error is not None and OVERLAP_SKIP in error


def _missed_record(spec: JobSpec, missed: list[datetime], complete: bool) -> PlannedRun:
    """One record summarising every missed fire, so an outage leaves one row, not thousands."""
    # Incomplete: the fires between the first listed and the newest ones were not counted.
    count = f"{len(missed)}" if complete else f"at least {len(missed)}"
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
