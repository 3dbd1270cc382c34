"""Runs claimed ahead of their due time, checked against their jobs as they are when the runs are due.

A fire is claimed up to ``lookahead`` before it is due so that it can start on the dot; an edit, a pause or a
removal landing in between must still count.  Just before held runs start, the starter reads their jobs again
and :func:`vet_claimed` says what becomes of each run: it starts (with the job as it is now), it is recorded
``skipped`` (its job was paused or disabled), or it is dropped (its job is gone, or its slot is no fire of the
new schedule: no record is owed for an instant the job no longer names).

The read of the jobs' versions that tells whether any changed is kept for :data:`VERSIONS_FRESH_FOR` and
serves every run due within that time of it (:class:`RecentVersions`): fires spread over the second would
otherwise read the database once per fire, which cost more than the runs.  The starter vets runs up to that
long before they are due, to have them ready on the dot.  So an edit committed that long before a fire is due
always counts, and so does any edit this process makes or hears of (it forgets the read, and runs vetted
before it are vetted again when due).
A run claimed once it was due was read with its job in that claim, after the fire was due: it starts as
claimed unless an edit was made or heard of since.  (A burst of thousands claimed late would otherwise read
their jobs twice.)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cronkeeper.clock import Clock
from cronkeeper.engine.dispatch import Dispatcher
from cronkeeper.engine.outage import Outage
from cronkeeper.models import Job, Run, TriggerSource
from cronkeeper.planning import still_a_fire
from cronkeeper.store.base import JobStore, StartOrder

log = logging.getLogger(__name__)
# Vetting again after an edit came while runs were vetted, at most this many passes in all.
MAX_VETTING_PASSES = 3
# After the database failed a read for vetting, runs start as claimed for this long without asking it again
# (seconds).
FAILED_READ_BACKOFF = 1.0

VERSIONS_FRESH_FOR = timedelta(milliseconds=10)
_SCHEDULED = frozenset({TriggerSource.SCHEDULE, TriggerSource.CATCHUP})


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
        elif _unchanged(order, job) or still_a_fire(job.spec, order.scheduled_for):
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
    clock: a read at ``t`` answers, at ``now >= t``, for runs due by ``due_by`` if ``max(now, due_by) < t +
    fresh_for``, so it was made less than ``fresh_for`` before the runs were due.  :meth:`forget` (an edit
    was made or heard of, from any thread) makes the next call read again, and marks runs claimed before it
    as needing a look."""

    def __init__(self, fresh_for: timedelta = VERSIONS_FRESH_FOR) -> None:
        self.fresh_for = fresh_for
        self._versions: dict[str, int] = {}
        self._read_for: frozenset[str] = frozenset()
        self._read_at: datetime | None = None
        self._read_after = 0  # the edits counted when the kept read was made
        self._edits = 0
        self._forgot_at: datetime | None = None
        self._lock = threading.Lock()  # forget() is called from any thread

    @property
    def edits(self) -> int:
        """How many times :meth:`forget` was called."""
        return self._edits

    def forget(self, now: datetime) -> None:
        with self._lock:
            self._edits += 1
            self._forgot_at = now

    def unchanged_since(self, claimed_at: datetime, now: datetime) -> bool:
        """Whether a run claimed at ``claimed_at``, once it was due, may start as claimed: no edit made or
        heard of since (and the clock did not step back since, which would blur "since").  Its claim came
        after the fire was due and read every change made before; a change another process makes later
        comes after the fire, like a change to a run already started."""
        forgot_at = self._forgot_at
        return now >= claimed_at and (forgot_at is None or forgot_at < claimed_at)

    def of(
        self,
        job_ids: Collection[str],
        now: datetime,
        due_by: datetime,
        read: Callable[[list[str]], dict[str, int]],
        coming: Callable[[datetime], Collection[str]],
    ) -> dict[str, int]:
        """The versions of ``job_ids``, of runs due by ``due_by`` (a job absent from the answer is gone),
        read with those of the jobs ``coming(until)`` names (runs due before the kept read goes stale) when
        the kept one will not do.  A clock that stepped back makes the kept read stale too."""
        read_at = self._read_at
        if (
            read_at is not None
            and self._read_after == self._edits
            and timedelta(0) <= now - read_at
            and max(now, due_by) - read_at < self.fresh_for
            and self._read_for.issuperset(job_ids)
        ):
            return self._versions
        edits = self._edits
        wanted = frozenset(job_ids).union(coming(now + self.fresh_for))
        self._versions = read(sorted(wanted))
        self._read_for, self._read_at, self._read_after = wanted, now, edits
        return self._versions


class Verdicts:
    """Runs vetting refused (to record ``skipped``, or to drop), kept for the loop's thread to write: the
    thread that starts runs never waits for the database's write lock, and the loop writes them before its
    next claim, which would otherwise count them as still active."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skipped: list[tuple[int, str]] = []
        self._dropped: list[int] = []

    def __bool__(self) -> bool:
        return bool(self._skipped or self._dropped)

    def add(self, skipped: Sequence[tuple[int, str]], dropped: Sequence[int]) -> None:
        with self._lock:
            self._skipped.extend(skipped)
            self._dropped.extend(dropped)

    def take(self) -> tuple[list[tuple[int, str]], list[int]]:
        with self._lock:
            taken = self._skipped, self._dropped
            self._skipped, self._dropped = [], []
            return taken


class Vetter:
    """Vets held runs as they come due (from the thread that starts them, which it never makes wait for the
    database's write lock), and writes its verdicts from the loop's thread."""

    def __init__(
        self, store: JobStore, dispatcher: Dispatcher, clock: Clock, *, on_verdict: Callable[[], None]
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._clock = clock
        self._on_verdict = on_verdict  # wakes the loop's thread to write them
        self.versions = RecentVersions()
        self._verdicts = Verdicts()
        # Failed reads for vetting: logged when they begin, once a minute and when they end; the last one
        # starts the back-off.
        self._outage = Outage(log)

    def vetted(self, held: list[StartOrder]) -> list[StartOrder]:
        """Of runs taken to start, those to start now, with their jobs as they are now.  The others (a job
        paused, removed or rescheduled since they were claimed) are released and kept as verdicts for
        :meth:`settle`.  If the database cannot say, the runs start as claimed.  An edit made or heard of
        while they were vetted has them vetted again (a few times at most).  Never raises."""
        for _ in range(MAX_VETTING_PASSES):
            edits = self.versions.edits
            try:
                held = self._vetted_once(held)
            except Exception:  # a defect: the runs taken must still start (or they would wait forever)
                log.exception("could not vet %d due run(s); starting them as claimed", len(held))
                break
            if self.versions.edits == edits:
                break
        return held

    def _vetted_once(self, held: list[StartOrder]) -> list[StartOrder]:
        now = self._clock.now()
        fresh: list[StartOrder] = []
        ahead: list[StartOrder] = []
        for order in held:
            claimed_at = order.claimed_at
            just_read = (
                claimed_at is not None
                and claimed_at >= order.due_at
                and self.versions.unchanged_since(claimed_at, now)
            )
            (fresh if just_read else ahead).append(order)
        if not ahead:
            return held
        return fresh + self._vet_ahead(ahead, now)

    def settle(self, *, owner: str) -> list[Run]:
        """Write the verdicts kept so far (skipped runs recorded, dropped ones deleted); returns the runs
        recorded skipped.  On a database error they are kept for the next try and the error raised."""
        if not self._verdicts:
            return []
        skipped, dropped = self._verdicts.take()
        try:
            recorded = self._store.settle_claimed(skipped, dropped, owner=owner, now=self._clock.now())
        except Exception:
            self._verdicts.add(skipped, dropped)
            raise
        for run_id in dropped:
            log.info("run %s not started: its job was removed or no longer fires then", run_id)
        return recorded

    def take_verdicts(self) -> list[int]:
        """The runs of the verdicts not written, forgotten here (to hand back at a stop)."""
        skipped, dropped = self._verdicts.take()
        return [run_id for run_id, _ in skipped] + dropped

    def _vet_ahead(self, held: list[StartOrder], now: datetime) -> list[StartOrder]:
        outage = self._outage
        if outage.ongoing and outage.monotonic() - outage.last_failed_at < FAILED_READ_BACKOFF:
            return held  # the database failed a moment ago: do not hold every run up asking it again
        try:
            versions = self.versions.of(
                {order.spec.id for order in held},
                now,
                max(order.due_at for order in held),
                self._store.job_versions,
                self._dispatcher.held_job_ids,
            )
            # Most jobs did not change since their runs were claimed: only the others are read whole.
            unchanged: list[StartOrder] = []
            changed: list[StartOrder] = []
            for order in held:
                (unchanged if order.version == versions.get(order.spec.id, -1) else changed).append(order)
            jobs = self._store.find_jobs(sorted({order.spec.id for order in changed})) if changed else []
        except Exception as exc:  # a database error, or a row this version cannot read: the runs still start
            outage.failed(
                logging.WARNING,
                "could not read the jobs of due runs for %.0fs: %s; starting due runs as claimed",
                exc,
            )
            return held
        outage.ended("due runs are checked against their jobs again, after %.1fs")
        if not changed:
            return held
        vetted = vet_claimed(changed, {job.id: job for job in jobs})
        if vetted.skipped or vetted.dropped:
            # Only for runs still in flight: one cancelled meanwhile keeps the outcome its cancel gave it.
            released = set(
                self._dispatcher.release_taken([run_id for run_id, _ in vetted.skipped] + vetted.dropped)
            )
            skipped = [(run_id, why) for run_id, why in vetted.skipped if run_id in released]
            dropped = [run_id for run_id in vetted.dropped if run_id in released]
            if skipped or dropped:
                self._verdicts.add(skipped, dropped)
                self._on_verdict()
        return unchanged + vetted.start
