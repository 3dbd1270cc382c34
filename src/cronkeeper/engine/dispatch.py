"""Starting claimed runs and seeing them to an outcome.

Runs claimed ahead of time wait in a heap until they are due; then each goes to a worker thread (functions,
and the threads that wait on commands and isolated functions) or to an event loop (coroutines).  Every run
this process owns is in flight here until its first outcome, which goes to the :class:`OutcomeBuffer`; a
later one, from a thread that outlived its timeout, is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cronkeeper.clock import Clock
from cronkeeper.engine.outcomes import OutcomeBuffer
from cronkeeper.exceptions import CronkeeperError
from cronkeeper.executors import Execution, joblog, run_callable, run_child, run_coroutine
from cronkeeper.executors.event_loop import EventLoopThread
from cronkeeper.executors.joblog import capturing
from cronkeeper.executors.output import TailBuffer
from cronkeeper.executors.pool import Task, WorkerPool
from cronkeeper.executors.process import NODE_VARIABLE
from cronkeeper.executors.runners import failure
from cronkeeper.executors.watchdog import Watchdog
from cronkeeper.incidents import EVERY_RUN_KINDS
from cronkeeper.models import CallableTarget, CheckinTarget, CommandTarget, JobSpec, RunOutcome, RunStatus
from cronkeeper.registry import Registry
from cronkeeper.runcontext import RunContext, running
from cronkeeper.store.base import Completion, StartOrder

log = logging.getLogger(__name__)
# So many runs due on one instant are a burst: made ready ahead of it (see engine.starter), the collector
# held off while it starts (engine.collector).  Fewer start in well under a millisecond either way.
BURST = 64
# What a scheduler wraps each in-process job in: the context its own functions find it through (the
# maintenance service, for the built-in jobs).
AroundJob = Callable[[], AbstractContextManager[object]]


@dataclass(slots=True)
class InFlight:
    """A run this process owns and has not finished."""

    order: StartOrder
    cancel: threading.Event | None = None  # only process runs can be told to stop
    started_at: datetime | None = None
    future: Future[Execution] | None = None
    in_process: bool = False
    # The output as it grows, shown while the run runs: a child's stdout and stderr, or what an in-process
    # job logged and printed (kept as its output even if it times out or is cancelled).
    output: TailBuffer | None = None


@dataclass(slots=True)
class Prepared:
    """Runs taken to start, made ready ahead of their due time (:meth:`Dispatcher.prepare`)."""

    flights: list[InFlight]
    due_at: datetime | None = None  # of the earliest of them
    tasks: list[Task] = field(default_factory=list)  # plain functions' runs, ready for a worker
    # The others (commands, coroutines, a function not found): started at launch.
    later: list[InFlight] = field(default_factory=list)

    def orders(self) -> list[StartOrder]:
        return [flight.order for flight in self.flights]


class Dispatcher:
    """Holds claimed runs until due, starts them, and records each one's first outcome."""

    def __init__(
        self,
        *,
        registry: Registry,
        clock: Clock,
        outcomes: OutcomeBuffer,
        workers: int,
        event_loop: asyncio.AbstractEventLoop | None,
        around_job: AroundJob = nullcontext,
        node: str | None = None,
    ) -> None:
        self.registry = registry
        self._around_job = around_job
        # Given to every child process (NODE_VARIABLE): another node of this host that finds the run lost
        # can tell the child's leftovers from any other process's, and end them.
        self._node = node
        self.clock = clock
        self.outcomes = outcomes
        self._caller_loop = event_loop
        self._loop_thread = EventLoopThread()
        self._hurry = False
        self._pool = WorkerPool(workers)
        joblog.install()  # the records of in-process jobs become their runs' output
        self._watchdog = Watchdog(self._time_out)
        self._lock = threading.Condition()
        self._inflight: dict[int, InFlight] = {}
        self._pending: list[tuple[datetime, int, StartOrder]] = []
        # How many held runs are due at each instant, and the instants held for with a burst (a heap; an
        # instant no longer a burst is dropped when it comes to the top): the starter makes a burst ready
        # ahead of it.
        self._held_per_instant: collections.Counter[datetime] = collections.Counter()
        self._bursts: list[datetime] = []
        # Runs made ready and not yet launched: in flight (a cancel finds them), but still waiting to be due.
        self._unlaunched: list[Prepared] = []
        self._unlaunched_ids: set[int] = set()
        self._starting = True

    # ---- runs claimed ahead ----------------------------------------------------------------------------

    def hold(self, orders: list[StartOrder]) -> None:
        """Keep claimed runs until they are due."""
        with self._lock:
            for order in orders:
                self._push_held(order)

    def next_pending_at(self) -> datetime | None:
        """When the earliest run claimed ahead and not started is due (held, or made ready)."""
        with self._lock:
            ready = (prepared.due_at for prepared in self._unlaunched if prepared.due_at is not None)
            return min(ready, default=self._pending[0][0] if self._pending else None)

    def next_held_at(self) -> datetime | None:
        """When the earliest held run (not yet taken) is due."""
        with self._lock:
            return self._pending[0][0] if self._pending else None

    def next_burst_at(self) -> datetime | None:
        """The earliest instant for which a burst (:data:`BURST` runs or more) is held."""
        with self._lock:
            bursts = self._bursts
            while bursts and self._held_per_instant[bursts[0]] < BURST:
                heapq.heappop(bursts)
            return bursts[0] if bursts else None

    def _push_held(self, order: StartOrder) -> None:
        heapq.heappush(self._pending, (order.due_at, order.run_id, order))
        held = self._held_per_instant[order.due_at] = self._held_per_instant[order.due_at] + 1
        if held == BURST:
            heapq.heappush(self._bursts, order.due_at)

    def _pop_held(self) -> StartOrder:
        order = heapq.heappop(self._pending)[2]
        self._forget_held_instant(order.due_at)
        return order

    def _forget_held_instant(self, due: datetime) -> None:
        left = self._held_per_instant[due] - 1
        if left > 0:
            self._held_per_instant[due] = left
        else:
            del self._held_per_instant[due]

    def held_job_ids(self, before: datetime) -> set[str]:
        """The jobs of the held runs due before ``before``."""
        with self._lock:
            return {order.spec.id for due_at, _, order in self._pending if due_at < before}

    def busy_soon(self, now: datetime, window: timedelta) -> bool:
        """Whether runs wait for a worker or are due within ``window``: a bad time for slow work."""
        pending = self.next_pending_at()
        return self._pool.backlog() > 0 or (pending is not None and pending - now < window)

    def take_due(self, now: datetime) -> list[StartOrder]:
        """Stop holding the runs due by ``now`` (none once stopping) and return them, to :meth:`start` or
        :meth:`release_taken`.  They are in flight from here, under the same lock: a cancel (an
        overlap=replace claim, a request heard by the heartbeat, a stop) that comes while they are vetted
        finds them, and they do not start."""
        due: list[StartOrder] = []
        with self._lock:
            while self._starting and self._pending and self._pending[0][0] <= now:
                order = self._pop_held()
                self._inflight[order.run_id] = InFlight(order)
                due.append(order)
        return due

    def release_taken(self, run_ids: list[int]) -> list[int]:
        """Taken runs that will not start (vetting refused them): no longer in flight.  Returns those that
        still were: one cancelled meanwhile has its outcome already, which a verdict must not overwrite."""
        with self._lock:
            released = [run_id for run_id in run_ids if self._inflight.pop(run_id, None) is not None]
            self._lock.notify_all()
        return released

    def start(self, due: list[StartOrder], *, then: Task | None = None) -> int:
        """Start these runs, taken by :meth:`take_due`, now (as the orders say: vetting may have brought a
        job's options up to date); returns how many.  See :meth:`prepare` and :meth:`launch`."""
        return self.launch(self._make_ready(due, waiting=False), then=then)

    def prepare(self, due: list[StartOrder]) -> Prepared:
        """Make runs taken by :meth:`take_due` (and vetted) ready to hand to the workers, ahead of their due
        time: what is left for :meth:`launch` on the dot is little more than that hand-over.  Only plain
        functions' runs are made ready: nothing of them runs or is recorded before their launch.  One lock
        for the whole batch: a burst of a thousand runs would otherwise take it a thousand times while the
        workers it feeds contend for it.  Once starting has stopped, the runs are held again, to be handed
        back."""
        return self._make_ready(due, waiting=True)

    def _make_ready(self, due: list[StartOrder], *, waiting: bool) -> Prepared:
        """:meth:`prepare`; ``waiting``: the runs wait to be due (else they are launched at once, and are
        not counted among the runs made ready)."""
        flights = []
        with self._lock:
            for order in due:
                flight = self._inflight.get(order.run_id)
                if flight is not None:
                    flight.order = order
                    flights.append(flight)
            if not self._starting:
                self._hold_again(flights)
                return Prepared([])
            prepared = Prepared(flights, min((flight.order.due_at for flight in flights), default=None))
            if waiting:
                self._unlaunched.append(prepared)
                self._unlaunched_ids.update(flight.order.run_id for flight in flights)
        for flight in flights:
            task = self._function_task(flight)
            if task is None:
                prepared.later.append(flight)
            else:
                prepared.tasks.append(task)
        return prepared

    def launch(self, prepared: Prepared, *, then: Task | None = None) -> int:
        """Hand runs made ready by :meth:`prepare` to the workers (the others start here); returns how many.
        ``then`` runs once the workers have taken every one of them.  A run cancelled since it was taken
        does not start.  Once starting has stopped, they are held again, to be handed back."""
        with self._lock:
            self._forget_unlaunched(prepared)
            if not self._starting:
                self._hold_again(prepared.flights)
                if then is not None:
                    then()
                return 0
        tasks = prepared.tasks
        for flight in prepared.later:
            try:
                task = self._start(flight)
            except Exception as exc:  # whatever failed, the run still ends
                order = flight.order
                log.exception("job %s: run %s could not be started", order.spec.id, order.run_id)
                self.complete(order.run_id, failure(exc))
                continue
            if task is not None:
                tasks.append(task)
        if then is not None:
            tasks.append(then)  # the workers take tasks in order
        children = sum(1 for flight in prepared.later if flight.cancel is not None)  # each waits on a child
        self._pool.submit_all(tasks, waiting=children)
        return len(prepared.flights)

    def hold_again(self, prepared: Prepared) -> None:
        """Hold runs made ready but not launched until due again (to be handed back at a stop)."""
        with self._lock:
            self._forget_unlaunched(prepared)
            self._hold_again(prepared.flights)

    def unprepare(self, prepared: Prepared) -> None:
        """Runs made ready are to be vetted again (and made ready anew): no longer ready, still in flight."""
        with self._lock:
            self._forget_unlaunched(prepared)

    def _forget_unlaunched(self, prepared: Prepared) -> None:
        """Under the lock: ``prepared`` is launched or held again."""
        for index, unlaunched in enumerate(self._unlaunched):
            if unlaunched is prepared:
                del self._unlaunched[index]
                self._unlaunched_ids.difference_update(flight.order.run_id for flight in prepared.flights)
                break

    def _hold_again(self, flights: Iterable[InFlight]) -> None:
        """Under the lock: taken runs no longer in flight, held again; one ended meanwhile (cancelled) stays
        ended."""
        for flight in flights:
            if self._inflight.pop(flight.order.run_id, None) is not None:
                self._push_held(flight.order)
        self._lock.notify_all()

    def stop_starting(self) -> None:
        """Start nothing more, whichever thread asks: runs held from now on stay held (to be handed back)."""
        with self._lock:
            self._starting = False

    def release_held(self) -> list[int]:
        """Forget every held run and return their ids (to hand back to the database)."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._held_per_instant.clear()
            self._bursts.clear()
        return [run_id for _, run_id, _ in pending]

    def _take_held(self, run_id: int) -> StartOrder | None:
        with self._lock:
            for index, (_, held_id, order) in enumerate(self._pending):
                if held_id == run_id:
                    self._pending.pop(index)
                    self._forget_held_instant(order.due_at)
                    heapq.heapify(self._pending)
                    return order
        return None

    # ---- starting --------------------------------------------------------------------------------------

    def _start(self, flight: InFlight) -> Task | None:
        """Start a run in flight: returns the task a worker thread must run, or None if it was started
        otherwise."""
        order = flight.order
        if order.run_id not in self._inflight:
            return None  # cancelled while the batch was being started: it ended as cancelled already
        target = order.spec.target
        if isinstance(target, CommandTarget) or (isinstance(target, CallableTarget) and target.isolate):
            return self._process_task(flight)
        try:
            if not isinstance(target, CallableTarget):  # a check-in job: never claimed, but never run either
                raise CronkeeperError(
                    "a check-in job runs elsewhere and reports its runs; cronkeeper does not run it"
                )
            func = self.registry.resolve(target.ref)
        except CronkeeperError as exc:
            log.error("job %s: %s", order.spec.id, exc)
            if self._begin(flight):
                self.complete(order.run_id, failure(exc))
            return None
        if self.registry.is_coroutine(target.ref):
            flight.in_process = True
            flight.output = TailBuffer(order.spec.output_limit)
            self._start_coroutine(flight, func)
            return None
        return self._function_task(flight)

    def _function_task(self, flight: InFlight) -> Task | None:
        """The worker's task of a plain function's run, made with nothing run or recorded (so it can be made
        ahead of time); None for any other run, or one whose function cannot be found here (:meth:`_start`
        then tries again at its launch, and records why it failed)."""
        target = flight.order.spec.target
        if not isinstance(target, CallableTarget) or target.isolate:
            return None
        try:
            func = self.registry.resolve(target.ref)
            if self.registry.is_coroutine(target.ref):
                return None
        except Exception:  # left to _start, which records why the run could not start
            return None
        flight.in_process = True
        flight.output = TailBuffer(flight.order.spec.output_limit)
        return functools.partial(self._call, flight, func, target)

    def _call(self, flight: InFlight, func: Callable[..., object], target: CallableTarget) -> None:
        """A function's run, in a worker thread: what it logs and prints is its output, ``current_run()``
        answers, and the timeout counts from here, not from the queue."""
        output = flight.output
        assert output is not None
        if not self._begin(flight):
            return  # cancelled while it waited for a worker: it must not run at all
        self._arm_timeout(flight)
        try:
            with running(run_context(flight.order)), capturing(output), self._around_job():
                execution = with_output(run_callable(func, target), output)
        except BaseException as exc:  # a runner bug must still end the run
            execution = failure(exc)
        self.complete(flight.order.run_id, execution)

    def _process_task(self, flight: InFlight) -> Task:
        """A command or isolated callable: a worker thread waits on the child process."""
        spec, cancel = flight.order.spec, threading.Event()
        flight.cancel = cancel
        flight.output = TailBuffer(spec.output_limit)
        env = run_context(flight.order).environment()
        if self._node is not None:
            env[NODE_VARIABLE] = self._node
        target = spec.target
        assert not isinstance(target, CheckinTarget)
        work = functools.partial(
            run_child,
            target,
            timeout=spec.timeout,
            output=flight.output,
            cancel=cancel,
            extra_env=env,
        )
        return self._task(flight, work)

    def _task(self, flight: InFlight, work: Callable[[], Execution]) -> Task:
        def task() -> None:
            if not self._begin(flight):
                return  # cancelled while it waited for a worker: it must not run at all
            if flight.cancel is not None and flight.cancel.is_set():
                execution = Execution(RunStatus.CANCELLED, RunOutcome(error="cancelled before it started"))
            else:
                try:
                    execution = work()
                except BaseException as exc:  # a runner bug must still end the run
                    execution = failure(exc)
            self.complete(flight.order.run_id, execution)

        return task

    def _start_coroutine(self, flight: InFlight, func: Callable[..., object]) -> None:
        target = flight.order.spec.target
        assert isinstance(target, CallableTarget)
        log_output = flight.output
        assert log_output is not None

        async def job() -> Execution:
            if not self._begin(flight):
                return Execution(RunStatus.CANCELLED)  # ended as cancelled already: this is dropped
            # The task's own copy of the context: its records and current_run() are its own.
            with running(run_context(flight.order)), capturing(log_output), self._around_job():
                execution = await run_coroutine(func, target, flight.order.spec.timeout)  # type: ignore[arg-type]
            return with_output(execution, log_output)

        coro = job()
        if self._caller_loop is not None:
            future = asyncio.run_coroutine_threadsafe(coro, self._caller_loop)
        else:
            future = self._loop_thread.submit(coro)
        flight.future = future
        future.add_done_callback(lambda done: self.complete(flight.order.run_id, _future_execution(done)))

    def _arm_timeout(self, flight: InFlight) -> None:
        if flight.order.spec.timeout is not None:
            self._watchdog.watch(flight.order.run_id, flight.order.spec.timeout.total_seconds())

    def _time_out(self, run_id: int) -> None:
        """The watchdog's verdict on a thread job past its timeout (harmless if the run has ended)."""
        with self._lock:
            flight = self._inflight.get(run_id)
        if flight is None or flight.order.spec.timeout is None:
            return
        seconds = flight.order.spec.timeout.total_seconds()
        message = (
            f"timed out after {seconds:g}s; the job's thread cannot be killed and was abandoned "
            "(use isolate=true for jobs that must be stopped)"
        )
        self.complete(run_id, _with_log(Execution(RunStatus.TIMED_OUT, RunOutcome(error=message)), flight))

    def _begin(self, flight: InFlight) -> bool:
        """Note the start of a run about to execute, unless it ended (was cancelled) meanwhile.  Under the
        lock :meth:`complete` takes: a run is then either noted started before it is noted finished, or
        not run at all, never started after its end (which would leave its live output behind for good)."""
        with self._lock:
            if flight.order.run_id not in self._inflight:
                return False
            self._mark_started(flight)
            return True

    def _mark_started(self, flight: InFlight) -> None:
        flight.started_at = self.clock.now()
        self.outcomes.note_started(flight.order, flight.started_at, flight.output)

    # ---- ending ----------------------------------------------------------------------------------------

    def complete(self, run_id: int, execution: Execution) -> None:
        """Accept the first outcome of a run; a later one (a thread ending after its timeout) is dropped."""
        with self._lock:
            flight = self._inflight.pop(run_id, None)
            if flight is None:
                return
            # Noted before waiters are told, so whoever waited for the run to end can write its outcome.
            self.outcomes.note_finished(
                _completion(flight, execution, self.clock.now()), flight.order, execution
            )
            self._lock.notify_all()

    def cancel(self, run_id: int, reason: str) -> bool:
        """Cancel a run of this process (kill its process group, or abandon its thread); True if ours."""
        held = self._take_held(run_id)
        if held is not None:
            with self._lock:
                self._inflight[run_id] = InFlight(held)
            self.complete(run_id, Execution(RunStatus.CANCELLED, RunOutcome(error=reason)))
            return True
        with self._lock:
            flight = self._inflight.get(run_id)
        if flight is None:
            return False
        if flight.cancel is not None:
            flight.cancel.set()
        # A flight with neither is still in the batch being started: it ends now, and is not started.
        if flight.in_process or flight.cancel is None:
            if flight.future is not None:
                flight.future.cancel()
            self.complete(run_id, _with_log(Execution(RunStatus.CANCELLED, RunOutcome(error=reason)), flight))
        return True

    def cancel_all(self, reason: str) -> None:
        with self._lock:
            run_ids = list(self._inflight)
        for run_id in run_ids:
            self.cancel(run_id, reason)

    def hurry(self) -> None:
        """End a hurriable :meth:`wait_idle` under way now (a second Ctrl-C: the stop is to cancel, not
        wait)."""
        with self._lock:
            self._hurry = True
            self._lock.notify_all()

    def wait_idle(self, timeout: float | None, *, hurriable: bool = False) -> bool:
        """Wait (real time) until no run is in flight (or, if ``hurriable``, until :meth:`hurry`); True if
        none is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._running() and not (hurriable and self._hurry):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._lock.wait(remaining)
            return not self._running()

    def _running(self) -> bool:
        """Under the lock: whether a run is in flight other than those made ready and waiting to be due."""
        if not self._unlaunched_ids:
            return bool(self._inflight)
        return not self._inflight.keys() <= self._unlaunched_ids

    def close(self) -> None:
        self._pool.shutdown()
        self._watchdog.close()
        self._loop_thread.close()


def with_output(execution: Execution, output: TailBuffer) -> Execution:
    """The execution with what its job logged and printed as its output, if anything."""
    if not output.version:
        return execution
    return dataclasses.replace(
        execution, outcome=dataclasses.replace(execution.outcome, output=output.text())
    )


def _with_log(execution: Execution, flight: InFlight) -> Execution:
    """An in-process run's verdict (timeout, cancel) with what it logged and printed until then."""
    if not flight.in_process or flight.output is None:
        return execution
    return with_output(execution, flight.output)


def run_context(order: StartOrder) -> RunContext:
    return RunContext(
        order.run_id,
        order.spec.id,
        order.scheduled_for,
        order.attempt,
        order.trigger_source,
        order.triggered_by,
    )


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
        outcome=execution.outcome,
        retry_at=retry_at,
        reports_every_run=_reports_every_run(order.spec),
    )


def _reports_every_run(spec: JobSpec) -> bool:
    """Whether the job asked to hear of runs that are not trouble (each success, each run with output)."""
    on = spec.notify.on
    return on is not None and not on.isdisjoint(EVERY_RUN_KINDS)


def _future_execution(future: Future[Execution]) -> Execution:
    if future.cancelled():
        return Execution(RunStatus.CANCELLED, RunOutcome(error="cancelled"))
    exc = future.exception()
    return failure(exc) if exc is not None else future.result()
