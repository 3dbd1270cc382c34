"""Starting runs claimed ahead on the dot, from a thread of their own.

The loop thread claims fires, writes outcomes and keeps the heartbeat: database work that takes milliseconds
(a claim of sixty fires about six).  Runs that came due meanwhile used to wait for it, so fires spread over
the second were late by up to a claim's length.  The starter waits for the earliest held run instead and
starts it while the loop works: the interpreter lets it in whenever the loop waits on the database, which a
claim does several times a millisecond.

It takes a burst (:data:`~cronkeeper.engine.dispatch.BURST` runs or more due on one instant)
:data:`PREPARE_AHEAD` before it is due, vets it (:mod:`cronkeeper.engine.vetting`) and makes it ready
(:meth:`~cronkeeper.engine.dispatch.Dispatcher.prepare`), so that on the dot only the hand-over to the
workers is left: a thousand runs due on one instant took about 12 ms to vet and make ready,
and every one of them started that much late.  An edit made or heard of after they were vetted has them
vetted again when due.  While a burst is made ready and taken by the workers, the garbage collector is held
off (:mod:`cronkeeper.engine.collector`).

Only a started scheduler has one; :meth:`cronkeeper.Scheduler.run_pending` starts runs in the calling thread.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cronkeeper.clock import Clock
from cronkeeper.engine.collector import CollectorHold
from cronkeeper.engine.dispatch import BURST, Dispatcher, Prepared
from cronkeeper.engine.vetting import VERSIONS_FRESH_FOR, Vetter

log = logging.getLogger(__name__)

# How long before they are due runs are vetted and made ready.  No longer than a read of their jobs is
# trusted for (see vetting): the read that vets them must be that recent when they are due.
PREPARE_AHEAD = VERSIONS_FRESH_FOR
# Seconds by which the engine's clock may move less than real time between the vetting of runs and their
# launch before they are taken for a clock that stepped back, and vetted again.
CLOCK_STEP = 0.002


@dataclass(order=True, slots=True)
class _Ready:
    due_at: datetime
    edits: int = field(compare=False)  # the edits vetting had counted when it began on them
    runs: Prepared = field(compare=False)
    # When they were vetted, on the engine's clock and in real time: a clock that stepped back since makes
    # the read that vetted them older than it says.
    vetted_at: datetime = field(compare=False)
    vetted_monotonic: float = field(compare=False)
    hold: int | None = field(default=None, compare=False)  # the collector's hold its launch ends

    def stepped_back(self, now: datetime) -> bool:
        real = time.monotonic() - self.vetted_monotonic
        return real - (now - self.vetted_at).total_seconds() > CLOCK_STEP


class Starter:
    """A thread that starts held runs as they come due."""

    def __init__(
        self, dispatcher: Dispatcher, clock: Clock, vetter: Vetter, *, hold_gc_for_bursts: bool = True
    ) -> None:
        self._dispatcher = dispatcher
        self._clock = clock
        self._vetter = vetter
        self._collector = CollectorHold(hold_gc_for_bursts)
        self._ready: list[_Ready] = []  # by due time; this thread's own
        self._wake = threading.Event()
        self._exit = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cronkeeper-starter", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake_after_burst(self, wake: Callable[[], None]) -> bool:
        """Put ``wake`` off until the burst being started has been taken by the workers (True), or leave it
        to the caller when none is (False)."""
        return self._collector.after(wake)

    def nudge(self) -> None:
        """Runs were held: look at the earliest again."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Start nothing more; wait up to ``timeout`` for the pass under way.  Runs made ready and not
        started are held again (to be handed back)."""
        self._exit.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._exit.is_set():
            self._wake.clear()
            try:
                if self._pass():
                    continue
            except Exception:  # a defect: the thread must outlive it, without spinning on it
                log.exception("could not start the runs that came due; going on")
                self._exit.wait(1.0)
            wake_at = self._next_wake_at()
            if wake_at is None:
                self._wake.wait()
            else:
                self._clock.wait_until(self._wake, wake_at)
        for ready in self._ready:
            self._dispatcher.hold_again(ready.runs)
            if ready.hold is not None:
                self._collector.end(ready.hold)
        self._ready.clear()

    def _pass(self) -> bool:
        """Start the runs made ready that are due, then take those due now (started at once) and, if a burst
        comes next, those due soon (made ready); whether there was any.  Taken runs are in flight: each must
        start or end."""
        now = self._clock.now()
        launched = self._launch_due(now)
        burst = self._burst_next(now)
        # Held before the take, which allocates as much as the rest; ended by the start of the burst's last
        # runs, or in time.
        hold = self._collector.begin() if burst else None
        held = self._dispatcher.take_due(now + PREPARE_AHEAD if burst else now)
        if hold is not None:
            if len(held) < BURST:  # cancelled meanwhile
                self._collector.end(hold)
                hold = None
            else:
                self._collector.limit(hold)
        if not held:
            return launched
        edits, vetted_monotonic = self._vetter.versions.edits, time.monotonic()
        vetted = sorted(self._vetter.vetted(held), key=operator.attrgetter("due_at"))
        split = bisect.bisect_right([order.due_at for order in vetted], now)
        due, coming = vetted[:split], vetted[split:]
        if due:
            then = None if hold is None or coming else functools.partial(self._collector.end, hold)
            self._dispatcher.start(due, then=then)
        made = [
            _Ready(due_at, edits, self._dispatcher.prepare(list(runs)), now, vetted_monotonic)
            for due_at, runs in itertools.groupby(coming, key=operator.attrgetter("due_at"))
        ]
        if made:
            made[-1].hold = hold
        elif hold is not None and not due:  # the whole burst was vetted away
            self._collector.end(hold)
        for ready in made:
            bisect.insort(self._ready, ready)
        return True

    def _launch_due(self, now: datetime) -> bool:
        launched = False
        while self._ready and self._ready[0].due_at <= now:
            launched = True
            ready = self._ready.pop(0)  # one at a time: a launch that fails leaves the others ready
            # A burst's last run taken by the workers lets the collector run again.
            then = None if ready.hold is None else functools.partial(self._collector.end, ready.hold)
            if ready.stepped_back(now):
                self._vetter.versions.forget(now)  # the read it keeps is older than the clock says, too
            if ready.edits == self._vetter.versions.edits:
                self._dispatcher.launch(ready.runs, then=then)
            else:  # an edit was made or heard of since they were vetted, or the clock stepped back
                self._dispatcher.unprepare(ready.runs)
                self._dispatcher.start(self._vetter.vetted(ready.runs.orders()), then=then)
        return launched

    def _burst_next(self, now: datetime) -> bool:
        """Whether a burst is held for an instant within :data:`PREPARE_AHEAD`, to be made ready ahead of it
        (with whatever else is due by then).  Runs that come one or a few at a time are taken when due: made
        ready ahead, they would cost a wake more each (one to take them, one to launch them) for a gain of
        microseconds."""
        burst = self._dispatcher.next_burst_at()
        return burst is not None and burst <= now + PREPARE_AHEAD

    def _next_wake_at(self) -> datetime | None:
        candidates = [self._ready[0].due_at] if self._ready else []
        held = self._dispatcher.next_held_at()
        if held is not None:
            candidates.append(held)
        burst = self._dispatcher.next_burst_at()
        if burst is not None:
            candidates.append(burst - PREPARE_AHEAD)
        return min(candidates, default=None)
