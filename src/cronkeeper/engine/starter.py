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

# Vetting: the runs to start now, of those taken (it never raises, and never writes to the database).
Vet = Callable[[list[StartOrder]], list[StartOrder]]


class Starter:
    """A thread that starts held runs as they come due."""

    def __init__(self, dispatcher: Dispatcher, clock: Clock, vet: Vet) -> None:
        self._dispatcher = dispatcher
        self._clock = clock
        self._vet = vet
        self._wake = threading.Event()
        self._exit = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cronkeeper-starter", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def nudge(self) -> None:
        """Runs were held: look at the earliest again."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Start nothing more; wait up to ``timeout`` for the pass under way."""
        self._exit.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._exit.is_set():
            self._wake.clear()
            try:
                if self._start_due():
                    continue
            except Exception:  # a defect: the thread must outlive it, without spinning on it
                log.exception("could not start the runs that came due; going on")
                self._exit.wait(1.0)
            due = self._dispatcher.next_pending_at()
            if due is None:
                self._wake.wait()
            else:
                self._clock.wait_until(self._wake, due)

    def _start_due(self) -> bool:
        """Start what is due; whether there was any.  Taken runs are in flight: each must start or end."""
        held = self._dispatcher.take_due(self._clock.now())
        if not held:
            return False
        self._dispatcher.start(self._vet(held))
        return True
