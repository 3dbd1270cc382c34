"""What to do with a job that is due: a pure function of the job, the time and how many runs are active.

The store calls :func:`plan_fires` inside its claim transaction and writes what it returns, so the misfire,
catch-up and overlap rules live here once, testable without a database or a clock.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cronkeeper.durations import format_duration
from cronkeeper.models import CATCHUP_ALL_CAP, Catchup, JobSpec, Overlap, RunStatus, TriggerSource
from cronkeeper.triggers import IntervalTrigger, Trigger

# How many past fires are enumerated one by one; beyond it a long outage is summarised as "at least".
ENUMERATION_LIMIT = 1000
# How many windows, widening or narrowing back from now, are tried to find the newest fires of a long outage.
TAIL_PROBES = 12

log = logging.getLogger(__name__)


# Not frozen: one is made per run, and a frozen dataclass's __init__ costs three times as much.
@dataclass(slots=True)
class PlannedRun:
    """A run row to insert: to execute (``QUEUED``) or a record of a fire that did not run."""

    scheduled_for: datetime
    trigger_source: TriggerSource
    status: RunStatus = RunStatus.QUEUED
    error: str | None = None
    result: dict[str, object] | None = None
    # Queued without an owner, to start in turn once the overlap policy has a free slot (catch-up of every
    # missed fire of a job that runs one at a time), rather than recorded skipped.
    waits: bool = False


# Not frozen: one is made per run, and a frozen dataclass's __init__ costs three times as much.
@dataclass(slots=True)
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
    return _due(spec, spec.trigger.next_after(after), rng)


def _due(
    spec: JobSpec, fire: datetime | None, rng: random.Random | None
) -> tuple[datetime | None, datetime | None]:
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
    fires, unlisted, following = _due_fires(spec, first_fire, now)
    chosen, missed = _apply_catchup(spec, fires, now)
    runs = _apply_overlap(spec, chosen, active)
    if missed or unlisted != 0:
        runs.insert(0, _missed_record(spec, missed, unlisted))
    if following is not None:  # the listing stopped at the next fire: no need to look for it again
        next_fire_at, next_due_at = _due(spec, following[0], rng)
    else:
        next_fire_at, next_due_at = next_due(spec, fires[-1] if unlisted == 0 else now, rng)
    replace = (
        spec.overlap is Overlap.REPLACE and active > 0 and any(run.status is RunStatus.QUEUED for run in runs)
    )
    return FirePlan(runs, next_fire_at, next_due_at, replace)


def _due_fires(
    spec: JobSpec, first_fire: datetime, now: datetime
) -> tuple[list[datetime], int | None, tuple[datetime | None] | None]:
    """Fires due by ``now``, oldest first, how many between them were left out of the list (None: more
    than that were, uncounted), and, when every fire up to ``now`` is listed, the fire after them (in a
    tuple: it may be None, the schedule over).

    Past the limit the list is the first fires then the newest ones: the summary still starts where the outage
    did, and what is recent (the fire within the grace, the newest to catch up) is still decided on.
    """
    head, complete, following = _fires_until(spec.trigger, first_fire, now, ENUMERATION_LIMIT)
    if complete:
        return head, 0, (following,)
    tail, left_out = _newest_fires(spec.trigger, head, now)
    if left_out is None and tail:
        left_out = _fires_between(spec.trigger, head[-1], tail[0])
    return head + tail, left_out, None


def _fires_between(trigger: Trigger, first: datetime, last: datetime) -> int | None:
    """How many fires lie strictly between two fires, where that is arithmetic (an interval); else None."""
    if isinstance(trigger, IntervalTrigger):
        return round((last - first) / trigger.every) - 1
    return None


def _fires_until(
    trigger: Trigger, fire: datetime | None, now: datetime, limit: int
) -> tuple[list[datetime], bool, datetime | None]:
    """Up to ``limit`` fires from ``fire`` on, up to ``now``; False when more were left; and the fire the
    listing stopped at (the first after ``now`` when it is complete)."""
    fires: list[datetime] = []
    while fire is not None and fire <= now:
        if len(fires) == limit:
            return fires, False, fire
        fires.append(fire)
        fire = trigger.next_after(fire)
    return fires, True, fire


def _newest_fires(trigger: Trigger, head: list[datetime], now: datetime) -> tuple[list[datetime], int | None]:
    """Up to CATCHUP_ALL_CAP + 1 of the newest fires after ``head`` and up to ``now``, oldest first (one more
    than catch-up keeps: the newest fire that is missed), and how many fires lie between ``head`` and them
    (None: not counted).

    Triggers only look forward, so this lists the fires of a window ending at ``now``: sized first by how
    densely ``head`` fired, widened when it holds too few, narrowed when too many to list, a bounded number of
    times.
    """
    wanted = CATCHUP_ALL_CAP + 1
    span = (head[-1] - head[0]) / (len(head) - 1) * wanted * 2
    found: list[datetime] = []
    start = now
    for _ in range(TAIL_PROBES):
        start = max(now - span, head[-1])
        fires, complete, _ = _fires_until(trigger, trigger.next_after(start), now, ENUMERATION_LIMIT)
        if not complete:
            span /= 3
            continue
        found = fires
        if len(found) >= wanted or start == head[-1]:
            break
        span *= 4
    left_out = max(len(found) - wanted, 0) if start == head[-1] else None
    return found[-wanted:], left_out


def _apply_catchup(
    spec: JobSpec, fires: list[datetime], now: datetime
) -> tuple[list[PlannedRun], list[datetime]]:
    """Split due fires into runs to start and fires recorded as missed."""
    on_time: list[datetime] = []
    late: list[datetime] = []
    for fire in fires:
        (on_time if now - fire <= spec.misfire_grace else late).append(fire)
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
    """Turn runs that the overlap policy forbids into ``skipped`` records; with ``catchup="all"`` they wait
    their turn instead (late by then, so catch-up runs, the fire on time included)."""
    free = free_slots(spec, active)
    # Only fires of a catch-up wait their turn: an ordinary fire that finds its job busy is skipped.
    in_turn = (
        spec.catchup is Catchup.ALL
        and spec.overlap is not Overlap.REPLACE
        and any(run.trigger_source is TriggerSource.CATCHUP for run in chosen)
    )
    out: list[PlannedRun] = []
    for run in chosen:
        if free > 0:
            out.append(run)
            free -= 1
        elif in_turn:
            out.append(PlannedRun(run.scheduled_for, TriggerSource.CATCHUP, waits=True))
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


def _missed_record(spec: JobSpec, missed: list[datetime], unlisted: int | None) -> PlannedRun:
    """One record summarising every missed fire, so an outage leaves one row, not thousands.  ``unlisted``
    fires between the first listed and the newest ones were left out of ``missed`` (None: uncounted)."""
    total = len(missed) + (unlisted or 0)
    complete = unlisted is not None
    count = f"{total}" if complete else f"at least {total}"
    first, last = missed[0], missed[-1]
    error = (
        f"missed {count} fire(s) from {first.isoformat()} to {last.isoformat()} "
        f"(misfire grace {format_duration(spec.misfire_grace)}, catchup={spec.catchup.value})"
    )
    result: dict[str, object] = {
        "missed": total,
        "complete": complete,
        "first": first.isoformat(),
        "last": last.isoformat(),
    }
    return PlannedRun(first, TriggerSource.SCHEDULE, RunStatus.MISSED, error, result)


def still_a_fire(spec: JobSpec, instant: datetime) -> bool:
    """Whether ``instant`` is a fire of the job's schedule as it is now (a run claimed for it before an edit
    may start).  A schedule whose fires cannot be computed keeps the instant: its claims record the
    failure."""
    try:
        return spec.trigger.next_after(instant - timedelta(microseconds=1)) == instant
    except Exception:
        log.exception("job %s: cannot tell whether %s is still a fire; keeping it", spec.id, instant)
        return True
