"""The worker threads that run jobs.

A burst of fires (a thousand jobs due on the same second) is handed over in one call: one lock, one append
of the whole batch, one notification, where ``ThreadPoolExecutor.submit`` would build a future and signal a
semaphore per task while the workers it wakes already compete with the dispatcher for the GIL.  Workers wake
each other one at a time while tasks remain, so only as many threads run as the work keeps busy.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable

Task = Callable[[], None]
log = logging.getLogger(__name__)


class WorkerPool:
    """A fixed number of daemon threads taking tasks in order; a task must not raise (it is logged if so)."""

    def __init__(self, size: int, name: str = "cronkeeper-worker") -> None:
        self._tasks: deque[Task] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit_all(self, tasks: Iterable[Task]) -> None:
        batch = list(tasks)
        if not batch:
            return
        with self._ready:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            self._tasks.extend(batch)
            self._ready.notify()

    def backlog(self) -> int:
        """Tasks waiting for a worker."""
        return len(self._tasks)

    def shutdown(self) -> None:
        """Drop tasks not started and let the threads end when their current task does."""
        with self._ready:
            self._closed = True
            self._tasks.clear()
            self._ready.notify_all()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._tasks and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                task = self._tasks.popleft()
                if self._tasks:
                    # Wake one more worker only while work is left: trivial jobs are then run by a few hot
                    # threads instead of twenty contending ones, and blocking jobs still get every worker.
                    self._ready.notify()
            try:
                task()
            except Exception:  # a worker must outlive any task
                log.exception("a task of the worker pool failed")
