"""Starting runs claimed ahead on the dot, from a thread of their own.

The loop thread claims fires, writes outcomes and keeps the heartbeat: database work that takes milliseconds
(a claim of sixty fires about six).  Runs that came due meanwhile used to wait for it, so fires spread over
the second were late by up to a claim's length.  The starter waits for the earliest held run instead, vets
what is due (:mod:`cronkeeper.engine.vetting`) and starts it, while the loop works: the interpreter lets it
in whenever the loop waits on the database, which a claim does several times a millisecond.

Only a started scheduler has one; :meth:`cronkeeper.Scheduler.run_pending` starts runs in the calling thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cronkeeper.clock import Clock
from cronkeeper.engine.dispatch import Dispatcher
from cronkeeper.store.base import StartOrder

log = logging.getLogger(__name__)

# What vetting returns: the runs to start now, and those to hold and try again (their verdict could not be
# recorded).
Vet = Callable[[list[StartOrder]], tuple[list[StartOrder], list[StartOrder]]]


class Starter:
    """A thread that starts held runs as they come due."""

    def __init__(self, dispatcher: Dispatcher, clock: Clock, vet: Vet, *, retry_after: float) -> None:
        self._dispatcher = dispatcher
        self._clock = clock
        self._vet = vet
        self._retry_after = retry_after
        self._wake = threading.Event()
        self._exit = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cronkeeper-starter", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Runs were held (or a stop began): look at the earliest again."""
        self._wake.set()

    def stop(self) -> None:
        self._exit.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._exit.is_set():
            self._wake.clear()
            retry = self._start_due()
            if retry:
                # The database could not record a verdict: give it a moment rather than asking at once.
                self._exit.wait(self._retry_after)
                continue
            due = self._dispatcher.next_pending_at()
            if due is None:
                self._wake.wait()
            else:
                self._clock.wait_until(self._wake, due)

    def _start_due(self) -> bool:
        """Start what is due; True if some runs must be tried again later."""
        held = self._dispatcher.take_due(self._clock.now())
        if not held:
            return False
        try:
            start, retry = self._vet(held)
        except Exception:
            log.exception("could not check %d due run(s) against their jobs; trying again", len(held))
            start, retry = [], held
        self._dispatcher.hold(retry)
        self._dispatcher.start(start)
        return bool(retry)
