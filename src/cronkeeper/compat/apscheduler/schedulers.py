"""APScheduler 3's three schedulers: how each starts and stops cronkeeper's engine.

``BackgroundScheduler`` runs the engine in its threads; ``BlockingScheduler`` does too, and ``start()`` waits
until ``shutdown()``; ``AsyncIOScheduler`` runs coroutine jobs (and delivers listener calls) on the event loop
that started it.  A scheduler paused with ``pause()`` stops its engine (runs under way finish) and starts a
fresh one at ``resume()``; fires missed meanwhile follow the misfire rules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

from cronkeeper.compat.apscheduler.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED, JobsFacade
from cronkeeper.compat.apscheduler.config import check_pool_alias, executor_kind, store_url, user_stacklevel
from cronkeeper.compat.apscheduler.errors import SchedulerAlreadyRunningError, SchedulerNotRunningError
from cronkeeper.compat.apscheduler.events import (
    EVENT_SCHEDULER_PAUSED,
    EVENT_SCHEDULER_RESUMED,
    EVENT_SCHEDULER_SHUTDOWN,
    EVENT_SCHEDULER_STARTED,
    SchedulerEvent,
)
from cronkeeper.engine.loop import SchedulerLoop
from cronkeeper.exceptions import SchedulerStateError, ValidationError
from cronkeeper.scheduler import AsyncScheduler, SchedulerBase


def blocking_is_unsafe(loop: asyncio.AbstractEventLoop | None) -> bool:
    """Whether this thread must not wait for the engine to stop: it is one of cronkeeper's (a job or a
    listener asking to shut down would wait for itself) or it runs ``loop``, the event loop of an
    ``AsyncIOScheduler`` (whose coroutine jobs could not finish while it waits).  Another event loop (a
    FastAPI lifespan stopping a ``BackgroundScheduler``) waits, as in APScheduler."""
    if threading.current_thread().name.startswith("cronkeeper-"):
        return True
    return loop is not None and _runs_in(loop)


class LoopRunner:
    """Starts the core's engine and stops it, in a thread of its own when the caller must not wait."""

    def __init__(self, core: SchedulerBase) -> None:
        self._core = core
        self._stoppers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None  # the event loop coroutine jobs run on, if any

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._core._new_loop(loop).start()

    def stop(self, *, wait: bool, background: bool, close: bool, then: threading.Event | None = None) -> None:
        """Stop the engine; ``wait`` lets running jobs finish (however long they take, as APScheduler), else
        they are cancelled.  ``close`` also releases database connections (they reopen on next use)."""
        loop, self._core.loop = self._core.loop, None

        def finish() -> None:
            try:
                self._stop_loop(loop, wait)
                if close:
                    self._core.disconnect()
                    self._core._leave_open()  # a scheduler made anew in this process may take its jobs
            finally:
                if then is not None:
                    then.set()

        if background or blocking_is_unsafe(self._loop):
            thread = threading.Thread(target=finish, name="cronkeeper-compat-stop", daemon=True)
            with self._lock:
                self._stoppers = [stopper for stopper in self._stoppers if stopper.is_alive()] + [thread]
            thread.start()
        else:
            finish()

    def _stop_loop(self, loop: SchedulerLoop | None, wait: bool) -> None:
        if loop is not None:
            loop.stop(wait=wait, timeout=None)

    def join(self, timeout: float | None = None) -> None:
        """Wait for stops under way in other threads (not from one of them, nor from a job)."""
        if blocking_is_unsafe(self._loop):
            return
        with self._lock:
            stoppers = list(self._stoppers)
        for stopper in stoppers:
            stopper.join(timeout)


class BaseScheduler(JobsFacade):
    """What APScheduler's schedulers share: the job API, and start, shutdown, pause and resume with
    APScheduler's states and events."""

    def __init__(self, gconfig: Mapping[str, Any] | None = None, **options: Any) -> None:
        super().__init__(gconfig, **options)
        self._runner = LoopRunner(self._core)
        self._stopped = threading.Event()

    def start(self, paused: bool = False) -> None:
        """Start processing jobs (not yet with ``paused``: then at :meth:`resume`)."""
        with self._lock:
            if self.state != STATE_STOPPED:
                raise SchedulerAlreadyRunningError()
            self._stopped.clear()
            self._retire_undeclared()
            if not paused:
                self._start_engine()
            self.state = STATE_PAUSED if paused else STATE_RUNNING
        self._dispatch(SchedulerEvent(EVENT_SCHEDULER_STARTED))

    def shutdown(self, wait: bool = True) -> None:
        """Stop.  With ``wait``, running jobs finish first; without, they are cancelled (a thread cannot be
        killed: its result is dropped).  Called from a job, a listener or the event loop of an
        ``AsyncIOScheduler``, it does not wait."""
        with self._lock:
            if self.state == STATE_STOPPED:
                raise SchedulerNotRunningError()
            self.state = STATE_STOPPED
        self._runner.stop(wait=wait, background=False, close=True, then=self._stopped)
        self._dispatch(SchedulerEvent(EVENT_SCHEDULER_SHUTDOWN))

    def pause(self) -> None:
        """Stop firing jobs until :meth:`resume`; runs under way are not touched."""
        with self._lock:
            if self.state == STATE_STOPPED:
                raise SchedulerNotRunningError()
            if self.state != STATE_RUNNING:
                return
            self.state = STATE_PAUSED
        self._runner.stop(wait=True, background=True, close=False)
        self._dispatch(SchedulerEvent(EVENT_SCHEDULER_PAUSED))

    def resume(self) -> None:
        """Fire jobs again; fires missed while paused follow the misfire rules (by default one catch-up)."""
        with self._lock:
            if self.state == STATE_STOPPED:
                raise SchedulerNotRunningError()
            if self.state != STATE_PAUSED:
                return
            self._start_engine()
            self.state = STATE_RUNNING
        self._dispatch(SchedulerEvent(EVENT_SCHEDULER_RESUMED))

    def wakeup(self) -> None:
        """Look at the jobs again now (cronkeeper wakes by itself on every change; kept for old code)."""
        if self._core.loop is not None:
            self._core.loop.wake()

    def _start_engine(self) -> None:
        self._runner.start(None)

    # ---- APScheduler's plug-in calls -------------------------------------------------------------------

    def add_executor(self, executor: object, alias: str = "default", **executor_opts: Any) -> None:
        """Accept a thread pool (its ``max_workers`` sizes cronkeeper's, if the engine is not running yet);
        a process pool is refused: use ``isolate=True`` on the jobs that need a process of their own."""
        definition = {"type": executor, **executor_opts} if isinstance(executor, str) else executor
        kind, max_workers = executor_kind(alias, definition)
        if kind == "processpool":
            raise ValidationError(f"executors[{alias!r}]", "cronkeeper has no process pool; use isolate=True")
        check_pool_alias(alias, max_workers)
        if alias == "default" and max_workers is not None and self._core.loop is None:
            self._core.settings = dataclasses.replace(self._core.settings, workers=int(max_workers))
        self._executor_aliases.add(alias)

    def add_jobstore(self, jobstore: object, alias: str = "default", **jobstore_opts: Any) -> None:
        """Accept the alias with a warning: jobs stay in cronkeeper's database (which is chosen when the
        scheduler is made, so a URL given here is not used)."""
        definition = {"type": jobstore, **jobstore_opts} if isinstance(jobstore, str) else jobstore
        url = store_url(definition)
        where = f" (not in {url})" if url else ""
        warnings.warn(
            f"job store {alias!r} is ignored: cronkeeper keeps jobs in its own database{where}",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        self._jobstore_aliases.add(alias)


class BackgroundScheduler(BaseScheduler):
    """Runs jobs in background threads of this process; ``start()`` returns at once."""

    _extra_options: ClassVar[frozenset[str]] = frozenset({"daemon"})


class BlockingScheduler(BaseScheduler):
    """``start()`` runs the scheduler until :meth:`shutdown` (from a job, a listener or another thread), or
    until KeyboardInterrupt or SystemExit, which stop it gracefully and are raised again."""

    def __init__(self, gconfig: Mapping[str, Any] | None = None, **options: Any) -> None:
        super().__init__(gconfig, **options)
        self._interrupted = False

    def start(self, paused: bool = False) -> None:
        try:
            super().start(paused)
            self._stopped.wait()
        except (KeyboardInterrupt, SystemExit):
            self._stop_after_interrupt()
            raise

    def _stop_after_interrupt(self) -> None:
        with self._lock:
            was_running = self.state != STATE_STOPPED
            self.state = STATE_STOPPED
        if was_running:
            self._runner.stop(wait=True, background=False, close=True, then=self._stopped)
            self._dispatch(SchedulerEvent(EVENT_SCHEDULER_SHUTDOWN))
            self._interrupted = True

    def shutdown(self, wait: bool = True) -> None:
        # Code written for APScheduler often calls shutdown() after catching the KeyboardInterrupt that ended
        # start(); the scheduler is already stopped by then, which must not be an error.
        if self.state == STATE_STOPPED and self._interrupted:
            self._interrupted = False
            return
        super().shutdown(wait)


class AsyncIOScheduler(BaseScheduler):
    """Coroutine jobs run on the event loop that called :meth:`start` (or the ``event_loop`` option), as do
    the listeners of run events; plain functions run in cronkeeper's thread pool."""

    _core_class: ClassVar[type[SchedulerBase]] = AsyncScheduler
    _extra_options: ClassVar[frozenset[str]] = frozenset({"event_loop"})

    def __init__(self, gconfig: Mapping[str, Any] | None = None, **options: Any) -> None:
        super().__init__(gconfig, **options)
        self._loop: asyncio.AbstractEventLoop | None = self._config.event_loop

    def start(self, paused: bool = False) -> None:
        """Start; call it from the running event loop (or give ``event_loop``), as APScheduler requires."""
        if self._config.event_loop is None or self._config.event_loop.is_closed():
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                raise SchedulerStateError(
                    "AsyncIOScheduler.start() must be called with an event loop running (or pass event_loop=)"
                ) from None
        super().start(paused)

    def _start_engine(self) -> None:
        self._runner.start(self._loop)

    def _deliver(self, events: list[SchedulerEvent]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed() or _runs_in(loop):
            super()._deliver(events)
            return
        try:
            loop.call_soon_threadsafe(self._listeners.dispatch_all, events)
        except RuntimeError:  # the loop closed meanwhile: deliver here rather than lose them
            super()._deliver(events)


def _runs_in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
