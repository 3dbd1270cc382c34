"""One thread that ends runs at their deadline: thread jobs past their timeout cannot be killed, so what
times out is the run's record.  One heap and one thread serve every timed run, instead of a timer thread
each."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable


class Watchdog:
    """Calls ``expire(key)`` for each key whose deadline (``time.monotonic()`` seconds) passes."""

    def __init__(self, expire: Callable[[int], None]) -> None:
        self._expire = expire
        self._deadlines: list[tuple[float, int]] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, key: int, seconds: float) -> None:
        """Expire ``key`` in ``seconds`` (real time).  Keys are never withdrawn: expiring one that has ended
        already must be harmless."""
        with self._changed:
            heapq.heappush(self._deadlines, (time.monotonic() + seconds, key))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cronkeeper-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed:
                    wait = self._deadlines[0][0] - time.monotonic() if self._deadlines else None
                    if wait is not None and wait <= 0:
                        break
                    self._changed.wait(wait)
                if self._closed:
                    return
                _, key = heapq.heappop(self._deadlines)
            self._expire(key)
