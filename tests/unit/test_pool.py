"""The worker pool: jobs that wait run side by side, trivial ones on few threads, a long one holds up no
other (executors/pool.py).  Real threads; each test waits on what its tasks do, never on a schedule."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from cronkeeper.executors import pool as pool_module
from cronkeeper.executors.pool import WorkerPool

WAIT = 10.0  # seconds a test waits at most for its tasks (a loaded machine is slow, never this slow)


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    made = WorkerPool(20, name="test-worker")
    yield made
    made.shutdown()


def test_tasks_that_wait_all_run_at_once(pool: WorkerPool) -> None:
    """Ten tasks that each wait for all ten to be running: they pass only if the pool runs them side by
    side (the interpreter is free while they wait, and the watcher wakes a worker for each)."""
    together = threading.Barrier(10, timeout=WAIT)
    passed: list[int] = []
    done = threading.Semaphore(0)

    def task(n: int) -> None:
        together.wait()
        passed.append(n)
        done.release()

    pool.submit_all([functools.partial(task, n) for n in range(10)])
    for _ in range(10):
        assert done.acquire(timeout=WAIT)
    assert sorted(passed) == list(range(10))


def test_tasks_known_to_wait_wake_as_many_workers_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands wait on their child processes from the start: their workers are woken with the batch, not
    one by one by the watcher (which is kept from waking any here)."""
    monkeypatch.setattr(pool_module, "FREE_NAPS", 10**9)
    monkeypatch.setattr(pool_module, "STARVED", 10**9)
    pool = WorkerPool(10, name="waiting-worker")
    together = threading.Barrier(10, timeout=WAIT)
    done = threading.Semaphore(0)

    def task() -> None:
        together.wait()
        done.release()

    try:
        pool.submit_all([task] * 10, waiting=9)
        for _ in range(10):
            assert done.acquire(timeout=WAIT)
    finally:
        pool.shutdown()


def test_a_task_that_computes_for_long_holds_up_no_other(pool: WorkerPool) -> None:
    other_ran = threading.Event()
    long_ended = threading.Event()

    def compute() -> None:
        deadline = time.monotonic() + WAIT
        while not other_ran.is_set() and time.monotonic() < deadline:
            sum(range(1000))  # holds the interpreter, never blocks
        long_ended.set()

    pool.submit_all([compute, other_ran.set])
    assert other_ran.wait(WAIT)
    assert long_ended.wait(WAIT)


def test_trivial_tasks_run_on_few_threads(pool: WorkerPool) -> None:
    """Under the interpreter lock more threads cannot run trivial tasks faster, only contend for it."""
    threads: set[int] = set()
    done = threading.Event()
    count = 20_000

    def task(n: int) -> None:
        threads.add(threading.get_ident())
        if n == count - 1:
            done.set()

    pool.submit_all([functools.partial(task, n) for n in range(count)])
    assert done.wait(WAIT)
    assert len(threads) <= 10  # of twenty; nearly always one or two


def test_a_failing_task_is_logged_and_its_worker_goes_on(
    pool: WorkerPool, caplog: pytest.LogCaptureFixture
) -> None:
    ran = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    pool.submit_all([fail])
    deadline = time.monotonic() + WAIT
    while "a task of the worker pool failed" not in caplog.text:
        assert time.monotonic() < deadline, "the failure was not logged"
        time.sleep(0.01)
    pool.submit_all([ran.set])
    assert ran.wait(WAIT)


def test_a_shut_down_pool_refuses_tasks_and_its_threads_end() -> None:
    pool = WorkerPool(3, name="ending-worker")
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit_all([lambda: None])
    deadline = time.monotonic() + WAIT
    while any(t.name.startswith("ending-worker") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the pool's threads did not end"
        time.sleep(0.01)


def test_a_shutdown_just_before_the_watcher_clears_its_signal_still_ends_the_watcher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The interleaving forced: the watcher found nothing to do and is about to clear its signal when
    ``shutdown`` sets it.  Cleared then, the signal would never wake the watcher again."""

    class PreemptedEvent(threading.Event):
        hook: Callable[[], None] | None = None

        def clear(self) -> None:
            hook, PreemptedEvent.hook = PreemptedEvent.hook, None
            if hook is not None:  # another thread runs just before the clear
                racer = threading.Thread(target=hook)
                racer.start()
                racer.join()
            super().clear()

    monkeypatch.setattr(threading, "Event", PreemptedEvent)
    pool = WorkerPool(2, name="racing-worker")
    monkeypatch.undo()
    PreemptedEvent.hook = pool.shutdown
    # A worker takes the first task and leaves two waiting with a worker idle: it wakes the watcher, which
    # wakes the other worker for the second, then finds none idle and clears its signal.
    pool.submit_all([functools.partial(time.sleep, 0.05)] * 2 + [lambda: None])
    deadline = time.monotonic() + WAIT
    while any(t.name == "racing-worker-watcher" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the watcher outlived the pool"
        time.sleep(0.01)
