"""The loop: sleep until something is due, claim it in one transaction, hand it to an executor, write the
outcome down, and keep this process's heartbeat so that others can tell when it died.

One thread runs the loop and does every database write of this process, in batches: claims, starts and
outcomes.  Workers only run jobs and append their outcomes to lists the loop flushes, which keeps SQLite's
single writer busy with few, large transactions instead of many small ones.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from cronkeeper.clock import Clock
from cronkeeper.events import EventKind, Listeners, RunEvent
from cronkeeper.exceptions import CronkeeperError, StoreError
from cronkeeper.executors import Execution, run_callable, run_command, run_coroutine, run_isolated
from cronkeeper.executors.pool import Task, WorkerPool
from cronkeeper.executors.runners import failure
from cronkeeper.loops import LoopThread
from cronkeeper.models import CallableTarget, CommandTarget, RunStatus
from cronkeeper.planning import plan_fires
from cronkeeper.registry import Registry
from cronkeeper.store.base import ClaimResult, Completion, JobStore, StartOrder

log = logging.getLogger(__name__)

# Outcomes wait for a burst of runs to get their workers, but never longer than this (seconds).
MAX_WRITE_DELAY = 1.0
# Writes are put off when runs claimed ahead are due this soon, and the heartbeat by at most the slack.
QUIET_BEFORE_DISPATCH = timedelta(milliseconds=100)
HEARTBEAT_SLACK = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Tuning knobs; the defaults suit one process on SQLite."""

    workers: int = 20
    batch_size: int = 500
    heartbeat_interval: timedelta = timedelta(seconds=5)
    lease: timedelta = timedelta(seconds=30)
    # How often to look for changes made by other processes (a CLI trigger, another node's edit) on SQLite.
    poll_interval: float = 5.0
    # How long to back off after the database failed before trying again.
    retry_store_after: float = 1.0
    # Fires due this soon are claimed ahead of time and started on the dot from memory, so the claim's
    # database work never makes a run late.
    lookahead: timedelta = timedelta(seconds=0.5)
    # Outcomes are written in batches at most this far apart (seconds): one transaction for many runs.
    flush_interval: float = 0.05


@dataclass(slots=True)
class InFlight:
    """A run this process owns and has not finished."""

    order: StartOrder
    cancel: threading.Event | None = None  # only process runs can be told to stop
    started_at: datetime | None = None
    future: Future[Execution] | None = None
    timer: threading.Timer | None = None
    in_process: bool = False


def new_owner_id() -> str:
    """A token naming this process in the runs it owns: host, pid and a random part."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Engine:
    """Fires due jobs of one store.  Drive it with :meth:`start` (a thread) or :meth:`run_once` (tests)."""

    def __init__(
        self,
        store: JobStore,
        *,
        registry: Registry,
        clock: Clock,
        listeners: Listeners,
        settings: EngineSettings | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.listeners = listeners
        self.settings = settings or EngineSettings()
        self.owner = new_owner_id()
        self._caller_loop = loop
        self._loop_thread = LoopThread()
        self._pool = WorkerPool(self.settings.workers)
        self._inflight: dict[int, InFlight] = {}
        self._lock = threading.Condition()
        self._started: list[InFlight] = []
        self._finished: list[tuple[Completion, StartOrder, BaseException | None]] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_heartbeat_at: datetime | None = None
        # Runs claimed ahead of time, by due instant, until they are dispatched.
        self._pending: list[tuple[datetime, int, StartOrder]] = []
        self._claim_again = False
        self._next_due_at: datetime | None = None
        self._unwritten_since = 0.0

    # ---- lifecycle -------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run the loop in a background thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="cronkeeper-engine", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the database again now (a job was added, changed or triggered)."""
        self._wake.set()

    def stop(self, *, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop claiming; with ``wait`` let running jobs finish for up to ``timeout`` seconds, then cancel
        what is left (killing process groups), record every outcome, and leave the cluster."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if wait:
            self.drain(timeout)
        self._release_pending()
        self._cancel_all("cancelled: the scheduler stopped before the run finished")
        self.drain(10.0)
        self._flush_safely()
        try:
            self.store.retire_node(owner=self.owner, now=self.clock.now())
        except StoreError:
            log.exception("could not record that node %s stopped", self.owner)
        self._pool.shutdown()
        self._loop_thread.close()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait (real time) until no run is in flight, then write outcomes; True if everything finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._inflight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._lock.wait(remaining)
            idle = not self._inflight
        self._flush_safely()
        return idle

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except StoreError:
                log.exception("database unavailable; retrying in %ss", self.settings.retry_store_after)
                time.sleep(self.settings.retry_store_after)
                continue
            except Exception:
                log.exception("unexpected error in the scheduler loop; continuing")
            self._sleep()
        self._flush_safely()

    def _sleep(self) -> None:
        """Sleep until the next due time on the engine's clock; while outcomes wait to be written, no longer
        than ``flush_interval`` of real time (outcomes of real work are written on real time)."""
        now = self.clock.now()
        seconds = self._seconds_to_sleep(now)
        with self._lock:
            unwritten = bool(self._started or self._finished)
        if unwritten and seconds > self.settings.flush_interval:
            self._wake.wait(self.settings.flush_interval)
        else:
            self.clock.wait_until(self._wake, now + timedelta(seconds=seconds))

    def _seconds_to_sleep(self, now: datetime) -> float:
        if self._claim_again:
            return 0.0
        candidates = [self.settings.poll_interval]
        due = self._next_due_at
        if due is not None:
            # Wake to claim ahead of time; a job still unclaimed inside the window was held back by its
            # overlap policy, and is looked at again when it is due.
            early = due - self.settings.lookahead
            candidates.append(((early if early > now else due) - now).total_seconds())
        pending = self.next_pending_at()
        if pending is not None:
            candidates.append((pending - now).total_seconds())
        if self._next_heartbeat_at is not None:
            candidates.append((self._next_heartbeat_at - now).total_seconds())
        return max(min(candidates), 0.0)

    def _dispatch_soon(self, now: datetime) -> bool:
        pending = self.next_pending_at()
        return pending is not None and pending - now < QUIET_BEFORE_DISPATCH

    def next_pending_at(self) -> datetime | None:
        """When the earliest run claimed ahead of time is due."""
        with self._lock:
            return self._pending[0][0] if self._pending else None

    # ---- one iteration ---------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Start what is due, write outcomes, keep the heartbeat, claim what is due within the look-ahead;
        return how many runs were started."""
        started = self._dispatch_due(self.clock.now())
        now = self.clock.now()
        # Writing outcomes and the heartbeat can wait a little: not while a burst of runs still waits for
        # workers or is about to be started, which they would only hold up.
        quiet = self._pool.backlog() == 0 and not self._dispatch_soon(now)
        if quiet or self._unwritten_for() > MAX_WRITE_DELAY:
            self._flush()
        heartbeat_at = self._next_heartbeat_at
        if heartbeat_at is None or (now >= heartbeat_at and (quiet or now - heartbeat_at > HEARTBEAT_SLACK)):
            self._heartbeat(now)
        self._next_due_at = self.store.next_due_at()
        horizon = now + self.settings.lookahead
        if self._stopping.is_set() or self._next_due_at is None or self._next_due_at > horizon:
            # Nothing to claim: a read, not a write transaction, is all an idle poll costs.
            self._claim_again = False
            return started
        claim = self.store.claim_due(
            now=now, owner=self.owner, limit=self.settings.batch_size, planner=plan_fires, horizon=horizon
        )
        self._claim_again = len(claim.to_start) + len(claim.recorded) >= self.settings.batch_size
        self._next_due_at = self.store.next_due_at()
        self._apply(claim)
        return started + self._dispatch_due(self.clock.now())

    def _apply(self, claim: ClaimResult) -> None:
        for run in claim.recorded:
            log.info("job %s: run %s %s: %s", run.job_id, run.id, run.status.value, run.error)
            if self.listeners:
                self.listeners.emit(RunEvent.from_run(run))
        for run_id in claim.to_cancel:
            self.cancel_local(run_id, "cancelled: replaced by a newer run (overlap=replace)")
        with self._lock:
            for order in claim.to_start:
                heapq.heappush(self._pending, (order.due_at, order.run_id, order))

    def _dispatch_due(self, now: datetime) -> int:
        due: list[StartOrder] = []
        with self._lock:
            while self._pending and self._pending[0][0] <= now:
                due.append(heapq.heappop(self._pending)[2])
        tasks = [task for task in map(self._dispatch, due) if task is not None]
        self._pool.submit_all(tasks)
        return len(due)

    def _take_pending(self, run_id: int) -> StartOrder | None:
        with self._lock:
            for index, (_, pending_id, order) in enumerate(self._pending):
                if pending_id == run_id:
                    self._pending.pop(index)
                    heapq.heapify(self._pending)
                    return order
        return None

    def _release_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        try:
            self.store.release_runs([run_id for _, run_id, _ in pending], owner=self.owner)
        except StoreError:
            log.exception("could not hand back %d runs claimed ahead; they will be marked lost", len(pending))

    def _heartbeat(self, now: datetime) -> None:
        cancel_ids = self.store.heartbeat(
            owner=self.owner, now=now, hostname=socket.gethostname(), pid=os.getpid()
        )
        self._next_heartbeat_at = now + self.settings.heartbeat_interval
        for run_id in cancel_ids:
            self.cancel_local(run_id, "cancelled on request")
        for run in self.store.reap_lost(now=now, lease=self.settings.lease):
            log.warning("job %s: run %s lost (owner %s stopped heartbeating)", run.job_id, run.id, run.owner)
            if self.listeners:
                self.listeners.emit(RunEvent.from_run(run))

    # ---- dispatch --------------------------------------------------------------------------------------

    def _dispatch(self, order: StartOrder) -> Task | None:
        """Start a run: returns the task a worker thread must run, or None if it was started otherwise."""
        flight = InFlight(order)
        with self._lock:
            self._inflight[order.run_id] = flight
        target = order.spec.target
        spec = order.spec
        if isinstance(target, CommandTarget) or target.isolate:
            return self._process_task(flight)
        try:
            func = self.registry.resolve(target.ref)
        except CronkeeperError as exc:
            log.error("job %s: %s", spec.id, exc)
            self._mark_started(flight)
            self._complete(order.run_id, failure(exc))
            return None
        flight.in_process = True
        if self.registry.is_coroutine(target.ref):
            self._submit_coroutine(flight, func)
            return None
        self._arm_timeout(flight)
        return self._task(flight, lambda: run_callable(func, target))

    def _process_task(self, flight: InFlight) -> Task:
        """A command or isolated callable: a worker thread waits on the child process."""
        spec, cancel = flight.order.spec, threading.Event()
        flight.cancel = cancel
        env = {"CRONKEEPER_JOB_ID": spec.id, "CRONKEEPER_RUN_ID": str(flight.order.run_id)}
        target = spec.target
        runner = run_command if isinstance(target, CommandTarget) else run_isolated
        return self._task(
            flight,
            lambda: runner(
                target,  # type: ignore[arg-type]
                timeout=spec.timeout,
                output_limit=spec.output_limit,
                cancel=cancel,
                extra_env=env,
            ),
        )

    def _task(self, flight: InFlight, work: Callable[[], Execution]) -> Task:
        def task() -> None:
            self._mark_started(flight)
            try:
                execution = work()
            except BaseException as exc:  # a runner bug must still end the run
                execution = failure(exc)
            self._complete(flight.order.run_id, execution)

        return task

    def _submit_coroutine(self, flight: InFlight, func: Callable[..., object]) -> None:
        target = flight.order.spec.target
        assert isinstance(target, CallableTarget)

        async def job() -> Execution:
            self._mark_started(flight)
            return await run_coroutine(func, target, flight.order.spec.timeout)  # type: ignore[arg-type]

        coro = job()
        if self._caller_loop is not None:
            future = asyncio.run_coroutine_threadsafe(coro, self._caller_loop)
        else:
            future = self._loop_thread.submit(coro)
        flight.future = future
        future.add_done_callback(lambda done: self._complete(flight.order.run_id, _future_execution(done)))

    def _arm_timeout(self, flight: InFlight) -> None:
        timeout = flight.order.spec.timeout
        if timeout is None:
            return
        message = (
            f"timed out after {timeout.total_seconds():g}s; the job's thread cannot be killed and was "
            "abandoned (use isolate=true for jobs that must be stopped)"
        )
        flight.timer = threading.Timer(
            timeout.total_seconds(),
            self._complete,
            (flight.order.run_id, Execution(RunStatus.TIMED_OUT, error=message)),
        )
        flight.timer.daemon = True
        flight.timer.start()

    def _mark_started(self, flight: InFlight) -> None:
        flight.started_at = self.clock.now()
        with self._lock:
            first = not (self._started or self._finished)
            if first:
                self._unwritten_since = time.monotonic()
            self._started.append(flight)
        if first:
            self._wake.set()

    # ---- completion and cancellation -------------------------------------------------------------------

    def _complete(self, run_id: int, execution: Execution) -> None:
        """Accept the first outcome of a run; a later one (a thread ending after its timeout) is dropped."""
        with self._lock:
            flight = self._inflight.pop(run_id, None)
            if flight is None:
                return
            if flight.timer is not None:
                flight.timer.cancel()
            finished_at = self.clock.now()
            completion = _completion(flight, execution, finished_at)
            first = not (self._started or self._finished)
            if first:
                self._unwritten_since = time.monotonic()
            self._finished.append((completion, flight.order, execution.exception))
            self._lock.notify_all()
        # Only the first unwritten outcome wakes the loop, which then writes a batch ``flush_interval`` later.
        if first:
            self._wake.set()

    def cancel_local(self, run_id: int, reason: str) -> bool:
        """Cancel a run of this process (kill its process group, or abandon its thread); True if ours."""
        pending = self._take_pending(run_id)
        if pending is not None:
            with self._lock:
                self._inflight[run_id] = InFlight(pending)
            self._complete(run_id, Execution(RunStatus.CANCELLED, error=reason))
            return True
        with self._lock:
            flight = self._inflight.get(run_id)
        if flight is None:
            return False
        if flight.cancel is not None:
            flight.cancel.set()
        if flight.in_process:
            if flight.future is not None:
                flight.future.cancel()
            self._complete(run_id, Execution(RunStatus.CANCELLED, error=reason))
        return True

    def _cancel_all(self, reason: str) -> None:
        with self._lock:
            run_ids = list(self._inflight)
        for run_id in run_ids:
            self.cancel_local(run_id, reason)

    # ---- writing outcomes ------------------------------------------------------------------------------

    def _unwritten_for(self) -> float:
        """Seconds since the oldest outcome not yet written (0 when there is none)."""
        with self._lock:
            return time.monotonic() - self._unwritten_since if (self._started or self._finished) else 0.0

    def _flush_safely(self) -> None:
        try:
            self._flush()
        except StoreError:
            log.exception("could not write run outcomes; they stay queued in memory")

    def _flush(self) -> None:
        with self._lock:
            started, self._started = self._started, []
            finished, self._finished = self._finished, []
        if not started and not finished:
            return
        done = {completion.run_id for completion, _, _ in finished}
        try:
            self.store.record_started(
                [
                    (flight.order.run_id, flight.started_at)
                    for flight in started
                    if flight.started_at is not None and flight.order.run_id not in done
                ],
                owner=self.owner,
            )
            accepted = set(
                self.store.record_finished(
                    [item[0] for item in finished], owner=self.owner, now=self.clock.now()
                )
            )
        except StoreError:
            with self._lock:  # nothing is lost: try again on the next iteration
                self._started[:0] = started
                self._finished[:0] = finished
            raise
        self._report(started, finished, accepted)

    def _report(
        self,
        started: list[InFlight],
        finished: list[tuple[Completion, StartOrder, BaseException | None]],
        accepted: set[int],
    ) -> None:
        for completion, order, _ in finished:
            if completion.run_id not in accepted:
                log.warning(
                    "job %s: result of run %s refused: the run was already ended by another node "
                    "(lost or cancelled)",
                    order.spec.id,
                    completion.run_id,
                )
            elif completion.status is not RunStatus.SUCCEEDED:
                log.warning(
                    "job %s: run %s %s: %s",
                    order.spec.id,
                    completion.run_id,
                    completion.status.value,
                    completion.error,
                )
        if not self.listeners:
            return
        for flight in started:
            self.listeners.emit(_event(EventKind.STARTED, flight.order, None, None))
        for completion, order, exception in finished:
            if completion.run_id in accepted:
                self.listeners.emit(_event(EventKind(completion.status.value), order, completion, exception))


def _completion(flight: InFlight, execution: Execution, finished_at: datetime) -> Completion:
    order = flight.order
    retry = order.spec.retry
    retry_at = None
    if execution.status.is_retryable and order.attempt < retry.max_retries:
        retry_at = finished_at + retry.delay(order.attempt + 1)
    return Completion(
        run_id=order.run_id,
        status=execution.status,
        started_at=flight.started_at,
        finished_at=finished_at,
        exit_code=execution.exit_code,
        output=execution.output,
        error=execution.error,
        traceback=execution.traceback,
        result=execution.result,
        peak_memory_bytes=execution.peak_memory_bytes,
        cpu_time=execution.cpu_time,
        retry_at=retry_at,
    )


def _future_execution(future: Future[Execution]) -> Execution:
    if future.cancelled():
        return Execution(RunStatus.CANCELLED, error="cancelled")
    exc = future.exception()
    return failure(exc) if exc is not None else future.result()


def _event(
    kind: EventKind, order: StartOrder, completion: Completion | None, exception: BaseException | None
) -> RunEvent:
    return RunEvent(
        kind,
        order.run_id,
        order.spec.id,
        order.scheduled_for,
        order.attempt,
        order.source,
        error=None if completion is None else completion.error,
        traceback=None if completion is None else completion.traceback,
        result=None if completion is None else completion.result,
        exception=exception,
    )
