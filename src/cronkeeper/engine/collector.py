"""Keeping the garbage collector's full pass, and the loop's thread, out of a burst's start.

A full collection stops every thread of the process for as long as it walks every object the interpreter
tracks: 40 to 90 ms in a scheduler with a thousand jobs (some 100,000 objects).  One that came while a
thousand runs due on one instant were made ready or handed to the workers made all of them, or the rest of
them, that much late; in thirty seconds of such bursts two or three did, and the 99th percentile of lateness
was the collector's pause.  The collector counts allocations: the ones that set it off come where the process
allocates most, and making a burst ready is such a place.

So while the starter makes a burst ready and until the workers have taken its last run, it holds automatic
collection off (``gc.disable``), for :data:`MAX_HOLD` at most; the collection that was due then runs as soon
as it is allowed, once the burst has started.  The loop's thread is kept out of that time too: woken by the
burst's first outcomes, it would take the interpreter from the workers to write nothing (it writes once no
run waits for a worker), so its wake is put off until the hold ends.  Nothing is skipped, only put off by
milliseconds.  A host that turned automatic collection off itself is left as it is;
``SchedulerSettings(hold_gc_for_bursts=False)`` turns both off.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

# The longest the collector is held off for one burst (seconds): long enough for a thousand runs to be made
# ready and taken by the workers, short enough that an unexpected wait (every worker busy) costs nothing.
MAX_HOLD = 0.1
# Batches of fewer runs are not held for: their start takes well under a millisecond either way.
BURST = 64


class CollectorHold:
    """The collector held off for one burst at a time, from any thread."""

    def __init__(self, enabled: bool = True, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._enabled = enabled
        self._monotonic = monotonic  # real time, whatever the engine's clock: the hold is about real pauses
        self._lock = threading.Lock()
        self._until: float | None = None  # monotonic; None: not holding
        self._owed: Callable[[], None] | None = None  # a wake put off until the hold ends

    @property
    def remaining(self) -> float | None:
        """Seconds the hold has left (None: not holding)."""
        until = self._until
        return None if until is None else max(until - self._monotonic(), 0.0)

    def begin(self) -> bool:
        """Runs are about to be made ready: hold the collector off, unless a hold is under way.  Returns
        whether this call began one (to :meth:`end` at once if the runs turn out to be few)."""
        if not self._enabled:
            return False
        with self._lock:
            if self._until is not None or not gc.isenabled():  # the host decides when its collector runs
                return False
            gc.disable()
            self._until = self._monotonic() + MAX_HOLD
            return True

    def end(self) -> None:
        """The burst has started (or will not): let the collector run again, and make the wake put off."""
        with self._lock:
            if self._until is None:
                return
            self._until = None
            gc.enable()
            owed, self._owed = self._owed, None
        if owed is not None:
            owed()

    def after(self, wake: Callable[[], None]) -> bool:
        """Put ``wake`` off until the hold under way ends (True), or leave it to the caller (False): the
        loop's thread, woken to write the first outcomes of a burst, would only take the interpreter from
        the workers starting the rest."""
        with self._lock:
            if self._until is None:
                return False
            self._owed = wake
            return True

    def expire(self) -> None:
        """End the hold if it ran out of time."""
        until = self._until
        if until is not None and self._monotonic() >= until:
            self.end()
