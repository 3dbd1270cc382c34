"""Runs claimed ahead of their due time, checked against their jobs as they are when the runs are due.

A fire is claimed up to ``lookahead`` before it is due so that it can start on the dot; an edit, a pause or a
removal landing in between must still count.  Just before held runs start, the loop reads their jobs again
and :func:`vet_claimed` says what becomes of each run: it starts (with the job as it is now), it is recorded
``skipped`` (its job was paused or disabled), or it is dropped (its job is gone, or its slot is no fire of the
new schedule: no record is owed for an instant the job no longer names).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from cronkeeper.models import Job, TriggerSource
from cronkeeper.store.base import StartOrder

_SCHEDULED = frozenset({TriggerSource.SCHEDULE, TriggerSource.CATCHUP})
_TICK = timedelta(microseconds=1)


@dataclass(slots=True)
class Vetted:
    """What becomes of held runs: those to start, those to record skipped (with why), those to drop."""

    start: list[StartOrder] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


def vet_claimed(orders: Sequence[StartOrder], jobs: Mapping[str, Job]) -> Vetted:
    """Check each order against ``jobs`` (its job as read now; absent: removed)."""
    vetted = Vetted()
    for order in orders:
        job = jobs.get(order.spec.id)
        if job is None:
            vetted.dropped.append(order.run_id)
        elif order.trigger_source not in _SCHEDULED:  # asked for: run the job as it is
            vetted.start.append(_as_now(order, job))
        elif not job.enabled or job.paused:
            state = "disabled" if not job.enabled else "paused"
            vetted.skipped.append((order.run_id, f"not started: the job was {state} before the run was due"))
        elif _unchanged(order, job) or job.spec.trigger.next_after(order.scheduled_for - _TICK) == (
            order.scheduled_for
        ):
            vetted.start.append(_as_now(order, job))
        else:
            vetted.dropped.append(order.run_id)
    return vetted


def _unchanged(order: StartOrder, job: Job) -> bool:
    return job.spec is order.spec or job.spec == order.spec


def _as_now(order: StartOrder, job: Job) -> StartOrder:
    return order if _unchanged(order, job) else dataclasses.replace(order, spec=job.spec)
