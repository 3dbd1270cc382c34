"""The worker threads that run jobs.

A burst of fires (a thousand jobs due on the same second) is handed over in one call: one append of the whole
batch and one notification, where ``ThreadPoolExecutor.submit`` would build a future and signal a semaphore
per task while the workers it feeds already compete with the dispatcher for the GIL.

How many workers run is what the work needs, not what the pool has.  Twenty threads taking ten thousand
trivial jobs ran them at half the speed of one: under the interpreter lock only one runs at a time, and the
others queued on the locks each run takes (a worker preempted while holding one stalls them all).  So one
worker is woken for a batch, and another joins only when it helps:

- when tasks wait while the interpreter is free (the pool's watcher, napping :data:`NAP`, gets the GIL back
  on time, :data:`FREE_NAPS` times in a row): the workers wait on I/O, a child process or a sleep, and
  another one runs a task meanwhile;
- when tasks wait and none was taken for :data:`STARVED`: a job that computes for long holds up the others
  that long at most (and so do jobs that wait while some other thread computes: the interpreter is never
  free then).

Wakes that follow each other closely wake twice as many workers each time, so that twenty jobs that wait all
run within a few wakes, while one stray wake in a burst of trivial jobs adds one worker only.

Workers take tasks without a lock (``deque.popleft`` is atomic); the condition is only for sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

Task = Callable[[], None]
log = logging.getLogger(__name__)

# How long the watcher naps between looks while tasks wait (seconds); back within half as much again, it
# found the interpreter free.
NAP = 0.001
# A nap that finds the interpreter free may have come in an instant a busy worker let go of it (waiting on a
# lock another thread held): in a burst of ten thousand trivial jobs one or two in a row did now and then, and
# the workers they woke made it take twice as long.
FREE_NAPS = 3
# Tasks waiting this long with none taken get another worker whatever the interpreter does (seconds).  While
# another thread computes, the interpreter is never free: jobs that wait then get workers this often.
STARVED = 0.005


class WorkerPool:
    """A fixed number of daemon threads taking tasks in order; a task must not raise (it is logged if so)."""

    def __init__(self, size: int, name: str = "cronkeeper-worker") -> None:
        self._tasks: deque[Task] = deque()
        self._ready = threading.Condition()
        self._closed = False
        # When a task was last taken (time.monotonic()), and how many workers sleep: for the watcher.
        self._taken_at = 0.0
        self._idle = 0
        self._size = size
        # Set by a worker that took a task and left others waiting, with a worker idle: the watcher sleeps
        # on it otherwise.  (Not by every batch: fires spread over the second come one a batch, and a worker
        # takes each at once; nor while every worker is busy: both woke the watcher about once a task.)
        self._waiting = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(size)
        ]
        for thread in self._threads:
            thread.start()
        self._watcher = threading.Thread(target=self._watch, name=f"{name}-watcher", daemon=True)
        self._watcher.start()

    def submit_all(self, tasks: Iterable[Task], *, waiting: int = 0) -> None:
        """Queue ``tasks``; ``waiting`` of them are known to wait (on a child process), so that many workers
        more are woken at once instead of one by one."""
        batch = list(tasks)
        if not batch:
            return
        with self._ready:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            if not self._tasks:
                self._taken_at = time.monotonic()  # the batch's wait counts from now
            self._tasks.extend(batch)
            self._ready.notify(1 + waiting)

    def backlog(self) -> int:
        """Tasks waiting for a worker."""
        return len(self._tasks)

    def shutdown(self) -> None:
        """Drop tasks not started and let the threads end when their current task does."""
        with self._ready:
            self._closed = True
            self._tasks.clear()
            self._ready.notify_all()
        self._waiting.set()

    def _sleep_until_work(self) -> bool:
        """Wait for a task; False once the pool is shut down."""
        with self._ready:
            self._idle += 1
            while not self._tasks and not self._closed:
                self._ready.wait()
            self._idle -= 1
            return not self._closed

    def _work(self) -> None:
        tasks = self._tasks
        while True:
            try:
                task = tasks.popleft()
            except IndexError:
                if not self._sleep_until_work():
                    return
                continue
            self._taken_at = time.monotonic()
            if tasks and self._idle and not self._waiting.is_set():
                self._waiting.set()
            try:
                task()
            except Exception:  # a worker must outlive any task
                log.exception("a task of the worker pool failed")

    def _wake_more(self, now: float, last_wake: float, step: int) -> int:
        """Wake ``step`` workers, or twice as many as the last time if that was a moment ago; returns how
        many were woken (the step for the next wake)."""
        step = min(2 * step, self._size) if now - last_wake <= 2 * STARVED else 1
        with self._ready:
            self._ready.notify(step)
        return step

    def _watch(self) -> None:
        """Wake another worker while tasks wait and the interpreter is free, or none was taken for long.
        Asleep unless tasks wait with a worker idle, which only a batch brings about (a worker goes idle only
        when no task is left, and while every worker is busy the first to finish takes the next); the first
        worker to take one of its tasks and leave others tells it."""
        free_naps, last_wake, step = 0, 0.0, 1
        while True:
            self._waiting.wait()
            if self._closed:
                return
            if not (self._tasks and self._idle):
                self._waiting.clear()
                if (self._tasks and self._idle) or self._closed:  # a batch or a shutdown came meanwhile
                    self._waiting.set()
                free_naps = 0
                continue
            napped = time.monotonic()
            time.sleep(NAP)
            now = time.monotonic()
            free_naps = free_naps + 1 if now - napped < 1.5 * NAP else 0
            if self._tasks and self._idle and (free_naps >= FREE_NAPS or now - self._taken_at >= STARVED):
                step = self._wake_more(now, last_wake, step)
                free_naps, last_wake = 0, now
