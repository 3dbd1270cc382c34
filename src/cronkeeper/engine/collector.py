"""Keeping the garbage collector's full pass, and the loop's thread, out of a burst's start.

A full collection stops every thread of the process for as long as it walks every object the interpreter
tracks: 40 to 90 ms in a scheduler with a thousand jobs (some 100,000 objects).  One that came while a
thousand runs due on one instant were made ready or handed to the workers made all of them, or the rest of
them, that much late; in thirty seconds of such bursts two or three did, and the 99th percentile of lateness
was the collector's pause.  The collector counts allocations: the ones that set it off come where the process
allocates most, and making a burst ready is such a place.

So while the starter makes a burst ready and until the workers have taken its last run, it holds automatic
collection off (``gc.disable``), for :data:`MAX_HOLD` at most (a timer ends it if nothing did before); the
collection that was due then runs as soon as it is allowed, once the burst has started.  The loop's thread
is kept out of that time too: woken by the burst's first outcomes, it would take the interpreter from the
workers to write nothing (it writes once no run waits for a worker), so its wake is put off until the hold
ends.  Nothing is skipped, only put off by milliseconds.  A host that turned automatic collection off itself
is left as it is.  One that turns it off while a hold is under way (a job of the burst itself, say) finds it
on again when the hold ends: the hold cannot tell that apart from its own.
``SchedulerSettings(hold_gc_for_bursts=False)`` turns both off.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable

# The longest the collector is held off for one burst (seconds): long enough for a thousand runs to be made
# ready and taken by the workers, short enough that an unexpected wait (a slow read, every worker busy)
# costs nothing.  A timer of its own ends it: the starter may be the thread that waits.
MAX_HOLD = 0.1
# Call a function once, after so many seconds, from a thread of its own.
StartTimer = Callable[[float, Callable[[], None]], None]


def _timer(seconds: float, function: Callable[[], None]) -> None:
    timer = threading.Timer(seconds, function)
    timer.daemon = True
    timer.start()


class CollectorHold:
    """The collector held off for one burst at a time, from any thread.  Each hold has a number: only its
    own end (its burst's last task, or its timer) ends it, not a late one of an earlier burst."""

    def __init__(self, enabled: bool = True, start_timer: StartTimer = _timer) -> None:
        self._enabled = enabled
        self._start_timer = start_timer
        self._lock = threading.Lock()
        self._holds = 0
        self._holding: int | None = None  # the hold under way
        self._owed: Callable[[], None] | None = None  # a wake put off until the hold ends

    @property
    def holding(self) -> bool:
        return self._holding is not None

    def begin(self) -> int | None:
        """Runs are about to be taken and made ready: hold the collector off, unless a hold is under way or
        the host turned automatic collection off itself.  Returns the new hold's number (None: none began),
        to :meth:`end` at once if the runs turn out to be few, else to :meth:`limit`."""
        if not self._enabled:
            return None
        with self._lock:
            if self._holding is not None or not gc.isenabled():
                return None
            gc.disable()
            self._holds += 1
            self._holding = self._holds
            return self._holding

    def limit(self, hold: int) -> None:
        """The hold covers a burst: end it after :data:`MAX_HOLD` whatever else happens."""
        self._start_timer(MAX_HOLD, functools.partial(self.end, hold))

    def end(self, hold: int) -> None:
        """The burst has started (or will not): let the collector run again, and make the wake put off."""
        with self._lock:
            if self._holding != hold:
                return  # ended already
            self._holding = None
            gc.enable()
            owed, self._owed = self._owed, None
        if owed is not None:
            owed()

    def after(self, wake: Callable[[], None]) -> bool:
        """Put ``wake`` off until the hold under way ends (True), or leave it to the caller (False): the
        loop's thread, woken to write the first outcomes of a burst, would only take the interpreter from
        the workers starting the rest."""
        with self._lock:
            if self._holding is None:
                return False
            self._owed = wake
            return True
