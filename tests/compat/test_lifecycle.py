"""Starting, pausing, resuming and shutting down the three schedulers, with the engine running in its threads
and the fake clock moved by the test."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from datetime import timedelta

import pytest

from cronkeeper import FakeClock, SchedulerStateError
from cronkeeper.compat.apscheduler import (
    EVENT_JOB_EXECUTED,
    EVENT_SCHEDULER_STARTED,
    STATE_PAUSED,
    STATE_RUNNING,
    STATE_STOPPED,
    AsyncIOScheduler,
    BackgroundScheduler,
    BlockingScheduler,
    SchedulerAlreadyRunningError,
    SchedulerEvent,
    SchedulerNotRunningError,
)
from tests.compat.conftest import Factory
from tests.compat.helpers import Events, Settler, guard


def test_states_follow_apschedulers(sched: BackgroundScheduler) -> None:
    assert (sched.state, sched.running) == (STATE_STOPPED, False)
    with pytest.raises(SchedulerNotRunningError, match="Scheduler is not running"):
        sched.shutdown()
    with pytest.raises(SchedulerNotRunningError):
        sched.pause()
    with pytest.raises(SchedulerNotRunningError):
        sched.resume()
    sched.start()
    assert (sched.state, sched.running) == (STATE_RUNNING, True)
    with pytest.raises(SchedulerAlreadyRunningError, match="Scheduler is already running"):
        sched.start()
    sched.pause()
    assert sched.state == STATE_PAUSED
    sched.pause()  # already paused: nothing happens, as in APScheduler
    sched.resume()
    assert sched.state == STATE_RUNNING
    sched.shutdown()
    assert (sched.state, sched.running) == (STATE_STOPPED, False)
    assert isinstance(SchedulerNotRunningError(), SchedulerStateError)


def test_a_started_scheduler_fires_as_the_clock_moves(sched: BackgroundScheduler, clock: FakeClock) -> None:
    ticks: list[object] = []
    sched.add_job(lambda: ticks.append(clock.now()), "interval", minutes=1, id="tick")
    settler = Settler(sched, clock)
    sched.start()
    settler.advance(timedelta(minutes=5))
    assert len(ticks) == 5
    sched.shutdown()
    assert sched.core.loop is None


def test_jobs_added_while_running_are_picked_up(sched: BackgroundScheduler, clock: FakeClock) -> None:
    settler = Settler(sched, clock)
    sched.start()
    calls: list[int] = []
    sched.add_job(calls.append, "interval", seconds=30, args=[1])
    settler.advance(timedelta(minutes=1))
    assert calls == [1, 1]


def test_start_paused_fires_nothing_until_resumed(sched: BackgroundScheduler, clock: FakeClock) -> None:
    calls: list[int] = []
    sched.add_job(calls.append, "interval", minutes=1, args=[1], misfire_grace_time=3600)
    settler = Settler(sched, clock)
    sched.start(paused=True)
    settler.advance(timedelta(minutes=3))
    assert calls == []
    sched.resume()
    settler.advance(timedelta(minutes=1))
    assert calls == [1, 1]  # the fires missed meanwhile coalesce into one run, then the next fire


def test_pause_lets_a_running_job_finish(sched: BackgroundScheduler, clock: FakeClock) -> None:
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def long_job() -> None:
        started.set()
        release.wait(5)
        done.append("finished")

    sched.add_job(long_job, "interval", minutes=1, id="long")
    settler = Settler(sched, clock)
    sched.start()
    clock.advance(timedelta(minutes=1))
    assert started.wait(5)
    sched.pause()  # returns at once
    release.set()
    sched.resume()
    settler.wait()
    assert done == ["finished"]
    assert [run.status.value for run in sched.core.runs(job_id="long")] == ["succeeded"]


def test_shutdown_from_a_listener_does_not_deadlock(sched: BackgroundScheduler, clock: FakeClock) -> None:
    stopped = threading.Event()

    def stop_after_first_run(event: SchedulerEvent) -> None:
        sched.shutdown()
        stopped.set()

    sched.add_listener(stop_after_first_run, EVENT_JOB_EXECUTED)
    sched.add_job(lambda: None, "interval", minutes=1)
    sched.start()
    clock.advance(timedelta(minutes=1))
    assert stopped.wait(5)
    assert sched.state == STATE_STOPPED


def test_shutdown_without_wait_cancels_running_jobs(sched: BackgroundScheduler, clock: FakeClock) -> None:
    started, release = threading.Event(), threading.Event()

    def long_job() -> None:
        started.set()
        release.wait(5)

    sched.add_job(long_job, "interval", minutes=1, id="long")
    sched.start()
    clock.advance(timedelta(minutes=1))
    assert started.wait(5)
    sched.shutdown(wait=False)
    release.set()
    assert [run.status.value for run in sched.core.runs(job_id="long")] == ["cancelled"]


def test_a_background_scheduler_shut_down_in_an_event_loop_waits_for_running_jobs(
    sched: BackgroundScheduler, clock: FakeClock
) -> None:
    started = threading.Event()
    done: list[str] = []

    def export() -> None:
        started.set()
        threading.Event().wait(0.3)
        done.append("finished")

    sched.add_job(export, "interval", minutes=1, id="export")

    async def lifespan() -> None:  # FastAPI's: start, serve, shutdown() on the loop's thread
        sched.start()
        clock.advance(timedelta(minutes=1))
        assert started.wait(5)
        sched.shutdown()

    asyncio.run(lifespan())
    assert done == ["finished"]
    assert [run.status.value for run in sched.core.runs(job_id="export")] == ["succeeded"]


def test_blocking_scheduler_runs_until_a_listener_shuts_it_down(make: Factory, clock: FakeClock) -> None:
    sched: BlockingScheduler = make(BlockingScheduler)
    runs: list[int] = []
    sched.add_job(runs.append, "interval", minutes=1, args=[1])

    def stop_after_three(event: SchedulerEvent) -> None:
        if len(runs) >= 3:
            sched.shutdown(wait=False)
        else:
            clock.advance(timedelta(minutes=1))  # time goes on to the next fire

    sched.add_listener(stop_after_three, EVENT_JOB_EXECUTED)
    clock.advance(timedelta(minutes=1))
    with guard(sched):
        sched.start()  # blocks until the listener shuts it down
    assert (runs, sched.state) == ([1, 1, 1], STATE_STOPPED)


def test_blocking_scheduler_stops_on_shutdown_from_another_thread(make: Factory) -> None:
    sched: BlockingScheduler = make(BlockingScheduler)
    sched.add_listener(lambda event: threading.Timer(0.05, sched.shutdown).start(), EVENT_SCHEDULER_STARTED)
    with guard(sched):
        sched.start()
    assert sched.state == STATE_STOPPED and sched.core.loop is None


def interrupt_when_waiting(thread_id: int, timeout: float = 10.0) -> None:
    """Send SIGINT to the thread once ``BlockingScheduler.start`` itself waits for the stop (in ``threading``:
    a wait a signal interrupts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread_id)
        waiting = frame is not None and frame.f_globals.get("__name__") == "threading"
        while frame is not None and frame.f_globals.get("__name__") == "threading":
            frame = frame.f_back
        if waiting and frame is not None and frame.f_code is BlockingScheduler.start.__code__:
            signal.pthread_kill(thread_id, signal.SIGINT)
            return
        time.sleep(0.005)


def test_blocking_scheduler_stops_gracefully_on_ctrl_c(make: Factory) -> None:
    sched: BlockingScheduler = make(BlockingScheduler)
    main = threading.get_ident()
    assert main == threading.main_thread().ident, "signals reach only the main thread"
    # Ctrl-C once start() blocks, waiting for the stop: a signal sent at any moment may land while the main
    # thread runs a finalizer (a connection pool's, say), where Python prints and drops the exception.
    interrupt = threading.Thread(target=interrupt_when_waiting, args=(main,), daemon=True)
    sched.add_listener(lambda event: interrupt.start(), EVENT_SCHEDULER_STARTED)
    # Python's own Ctrl-C behaviour, whatever handler code run earlier in this process left installed (an
    # event loop's, say): with another handler the signal would not raise here, and the test would wait.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), guard(sched):
            sched.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sched.state == STATE_STOPPED and sched.core.loop is None
    sched.shutdown()  # what APScheduler code does after catching it: no error
    assert os.getpid()  # still here


def test_asyncio_scheduler_runs_coroutine_jobs_and_listeners_on_the_loop(
    make: Factory, clock: FakeClock
) -> None:
    seen: list[tuple[bool, str]] = []
    heard: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sched: AsyncIOScheduler = make(AsyncIOScheduler)

        async def job(tag: str) -> str:
            await asyncio.sleep(0)
            seen.append((asyncio.get_running_loop() is loop, tag))
            return tag

        sched.add_job(job, "interval", minutes=1, args=["co"])
        sched.add_listener(lambda event: heard.append(threading.current_thread().name), EVENT_JOB_EXECUTED)
        settler = Settler(sched, clock)
        sched.start()
        await settler.advance_async(timedelta(minutes=2))
        sched.shutdown()  # from the loop: does not block it
        assert sched.state == STATE_STOPPED

    asyncio.run(main())
    assert seen == [(True, "co"), (True, "co")]
    assert heard == [threading.current_thread().name] * 2


def test_asyncio_scheduler_needs_a_running_loop(make: Factory) -> None:
    sched: AsyncIOScheduler = make(AsyncIOScheduler)
    with pytest.raises(SchedulerStateError, match="event loop running"):
        sched.start()


def test_asyncio_scheduler_accepts_an_event_loop_option(make: Factory, clock: FakeClock) -> None:
    loop = asyncio.new_event_loop()
    try:
        sched: AsyncIOScheduler = make(AsyncIOScheduler, event_loop=loop)
        ran: list[bool] = []

        async def job() -> None:
            ran.append(asyncio.get_running_loop() is loop)

        sched.add_job(job, "interval", seconds=10)
        sched.start()  # before the loop runs, as old APScheduler code does
        clock.advance(timedelta(seconds=10))
        events = Events()
        sched.add_listener(events, EVENT_JOB_EXECUTED)

        async def until_done() -> None:
            for _ in range(1000):
                if events.events:
                    return
                await asyncio.sleep(0.005)

        loop.run_until_complete(until_done())
        assert ran == [True]
        sched.shutdown()
    finally:
        loop.close()
