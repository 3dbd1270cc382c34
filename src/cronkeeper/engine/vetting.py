"""Runs claimed ahead of their due time, checked against their jobs as they are when the runs are due.

A fire is claimed up to ``lookahead`` before it is due so that it can start on the dot; an edit, a pause or a
removal landing in between must still count.  Just before held runs start, the loop reads their jobs again
and :func:`vet_claimed` says what becomes of each run: it starts (with the job as it is now), it is recorded
``skipped`` (its job was paused or disabled), or it is dropped (its job is gone, or its slot is no fire of the
new schedule: no record is owed for an instant the job no longer names).

The read of the jobs' versions that tells whether any changed is kept for :data:`VERSIONS_FRESH_FOR` and
serves every run that comes due meanwhile (:class:`RecentVersions`): fires spread over the second would
otherwise read the database once per fire, which cost more than the runs.  So an edit committed that long
before a fire is due always counts, and so does any edit this process makes or hears of (it forgets the read).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cronkeeper.models import Job, TriggerSource
from cronkeeper.store.base import StartOrder

VERSIONS_FRESH_FOR = timedelta(milliseconds=10)
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


class RecentVersions:
    """The versions of the jobs of runs about to start, read at most once per ``fresh_for`` of the engine's
    clock: a read at ``t`` answers for a run due at ``due <= now < t + fresh_for``, so it was made no earlier
    than ``fresh_for`` before the run was due.  :meth:`forget` (an edit was made or heard of, from any
    thread) makes the next call read again."""

    def __init__(self, fresh_for: timedelta = VERSIONS_FRESH_FOR) -> None:
        self._fresh_for = fresh_for
        self._versions: dict[str, int] = {}
        self._read_for: frozenset[str] = frozenset()
        self._read_at: datetime | None = None
        self._read_after = 0  # the edits counted when the kept read was made
        self._edits = 0

    def forget(self) -> None:
        self._edits += 1

    def of(
        self,
        job_ids: Collection[str],
        now: datetime,
        read: Callable[[list[str]], dict[str, int]],
        coming: Callable[[datetime], Collection[str]],
    ) -> dict[str, int]:
        """The versions of ``job_ids`` (a job absent from the answer is gone), read with those of the jobs
        ``coming(until)`` names (runs due before the kept read goes stale) when the kept one will not do."""
        read_at = self._read_at
        if (
            read_at is not None
            and self._read_after == self._edits
            and now - read_at < self._fresh_for
            and self._read_for.issuperset(job_ids)
        ):
            return self._versions
        edits = self._edits
        wanted = frozenset(job_ids).union(coming(now + self._fresh_for))
        self._versions = read(sorted(wanted))
        self._read_for, self._read_at, self._read_after = wanted, now, edits
        return self._versions
