"""The loop: sleep until something is due, claim it in one transaction, hold it until due, write the
outcome down, and keep this process's heartbeat so that others can tell when it died.

One thread runs the loop and makes the scheduler's writes in batches: claims, starts, outcomes, the output
of commands still running, and the verdicts of vetting.  A second thread (:mod:`cronkeeper.engine.starter`)
starts held runs as they come due, reading the database but never writing to it.  Workers only run jobs and
note their outcomes in a buffer the loop writes, which keeps SQLite's single writer busy with few, large
transactions instead of many small ones.  (Edits made through the service write from the caller's thread.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import nullcontext
from datetime import datetime, timedelta

from cronkeeper.clock import Clock, SystemClock
from cronkeeper.engine.dispatch import AroundJob, Dispatcher
from cronkeeper.engine.lead import MAX_LEAD, ClaimLead
from cronkeeper.engine.outage import Outage
from cronkeeper.engine.outcomes import OutcomeBuffer
from cronkeeper.engine.starter import Starter
from cronkeeper.engine.vetting import Vetter
from cronkeeper.events import Listeners, RunEvent
from cronkeeper.exceptions import StoreError
from cronkeeper.executors.process import kill_leftovers
from cronkeeper.models import LoopHealth
from cronkeeper.registry import Registry
from cronkeeper.settings import SchedulerSettings
from cronkeeper.store.base import ClaimResult, JobStore

log = logging.getLogger(__name__)

# Outcomes wait for a burst of runs to get their workers, but never longer than this (seconds).
MAX_WRITE_DELAY = 1.0
# Writes are put off when runs claimed ahead are due this soon, and the heartbeat by at most the slack.
QUIET_BEFORE_DISPATCH = timedelta(milliseconds=100)
# The slack is at most half an interval too: a heartbeat is then never older than one and a half intervals,
# within the lease of two that SchedulerSettings asks for.
HEARTBEAT_SLACK = timedelta(seconds=1)
# How long a stop waits for the starter's pass under way (a read of the jobs it vets) before going on.
STARTER_STOP_WAIT = 5.0
# After cancelling at a stop, how long killed process groups get to be reaped and recorded (seconds).
CANCEL_WAIT = 10.0


def new_owner_id() -> str:
    """A token naming this process in the runs it owns: host, pid and a random part."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class SchedulerLoop:
    """Fires due jobs of one store.  Drive it with :meth:`start` (a thread) or :meth:`run_once` (tests)."""

    def __init__(
        self,
        store: JobStore,
        *,
        registry: Registry,
        clock: Clock,
        listeners: Listeners,
        settings: SchedulerSettings | None = None,
        event_loop: asyncio.AbstractEventLoop | None = None,
        instance_id: str | None = None,
        around_job: AroundJob = nullcontext,
    ) -> None:
        self.store = store
        # The scheduler object this loop claims for: jobs whose target only it holds are claimed here only.
        self.instance_id = instance_id
        self.clock = clock
        self.listeners = listeners
        self.settings = settings or SchedulerSettings()
        self.owner = new_owner_id()
        self.clock_skew: float | None = None
        self._clock_too_far = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._exiting = threading.Event()
        self.outcomes = OutcomeBuffer(on_first=self._outcomes_noted)
        self.dispatcher = Dispatcher(
            registry=registry,
            clock=clock,
            outcomes=self.outcomes,
            workers=self.settings.workers,
            event_loop=event_loop,
            around_job=around_job,
            node=self.owner,
        )
        self._thread: threading.Thread | None = None
        # Starts held runs as they come due while this loop's thread works (a started loop only).
        self._starter: Starter | None = None
        self._starter_death_logged = False
        self._watcher: threading.Thread | None = None
        self._next_heartbeat_at: datetime | None = None
        self._next_due_at: datetime | None = None
        self._claim_again = False
        # When the last claim ran (see _claim_at), and how long before a fire its claims begin.
        self._claimed_at: datetime | None = None
        self._lead = ClaimLead(self.settings.lookahead)
        self._vetter = Vetter(self.store, self.dispatcher, clock, on_verdict=self._wake.set)
        # When the output of running runs is next written (time.monotonic()), and whether the last
        # write due was put off.
        self._next_progress_at = 0.0
        self._progress_put_off = False
        # Loop health, for /metrics and /api/status: when the loop last completed a pass, and how many passes
        # failed on the database.
        self.last_loop_at: datetime | None = None
        self.loop_errors = 0
        # The database failing every pass: logged when it begins, every minute or so, and when it ends.
        self._outage = Outage(log)

    # ---- lifecycle -------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        starter = self._starter
        return (
            self._thread is not None
            and self._thread.is_alive()
            and (starter is None or starter.alive or self._stopping.is_set())
        )

    def health(self) -> LoopHealth:
        return LoopHealth(
            self.running,
            self.owner,
            self.last_loop_at,
            self.loop_errors,
            self.clock_skew,
            self._clock_too_far,
        )

    def start(self) -> None:
        """Run the loop in a background thread."""
        self._stopping.clear()
        self._exiting.clear()
        self._starter = Starter(
            self.dispatcher, self.clock, self._vetter, hold_gc_for_bursts=self.settings.hold_gc_for_bursts
        )
        self._thread = threading.Thread(target=self._loop, name="cronkeeper-loop", daemon=True)
        self._thread.start()
        self._watcher = self.store.watch_changes(self.wake, self._exiting)

    def _outcomes_noted(self) -> None:
        """Wake to write the first outcomes noted since the last write, unless a burst is being started:
        then once it has been (see engine.collector)."""
        starter = self._starter  # read once: a stop in another thread may clear it
        if starter is None or not starter.wake_after_burst(self._wake.set):
            self._wake.set()

    def wake(self) -> None:
        """Look at the database again now (a job was added, changed or triggered)."""
        self._vetter.versions.forget(self.clock.now())
        self._wake.set()

    def stop(self, *, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop claiming; with ``wait`` let running jobs finish for up to ``timeout`` seconds, then cancel
        what is left (killing process groups), record every outcome, and leave the cluster."""
        self._stopping.set()  # the loop stops claiming but keeps heartbeating and writing outcomes
        self.dispatcher.stop_starting()
        if self._starter is not None:
            # After its pass under way: what it took since is held again, for the hand-back below.
            self._starter.stop(STARTER_STOP_WAIT)
            self._starter = None
        self._wake.set()
        self._hand_back_held()
        if wait:
            self.dispatcher.wait_idle(timeout, hurriable=True)
        self.dispatcher.cancel_all("cancelled: the scheduler stopped before the run finished")
        self.dispatcher.wait_idle(CANCEL_WAIT if wait else 0)
        self._exiting.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._watcher is not None:
            self._watcher.join(5)
            self._watcher = None
        self._hand_back_held()  # anything a claim under way when stop began put on hold
        self._settle_or_hand_back()
        self._flush_safely()
        try:
            self.store.retire_node(owner=self.owner, now=self.clock.now())
        except StoreError:
            log.exception("could not record that node %s stopped", self.owner)
        self.dispatcher.close()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def hurry(self) -> None:
        """During a :meth:`stop` that waits for running jobs: stop waiting, cancel them now."""
        self.dispatcher.hurry()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait (real time) until no run is in flight, then write outcomes; True if everything finished."""
        idle = self.dispatcher.wait_idle(timeout)
        self._flush_safely()
        return idle

    def cancel_local(self, run_id: int, reason: str) -> bool:
        """Cancel a run of this process; True if it was one."""
        return self.dispatcher.cancel(run_id, reason)

    def next_pending_at(self) -> datetime | None:
        """When the earliest run claimed ahead of time is due."""
        return self.dispatcher.next_pending_at()

    def _settle_or_hand_back(self) -> None:
        """At a stop: write vetting's last verdicts, or, if the database refuses, hand their runs back (the
        next node's claim checks them against their jobs again, as it does any queued run)."""
        try:
            self._settle_verdicts()
        except StoreError:
            run_ids = self._vetter.take_verdicts()
            try:
                self.store.release_runs(run_ids, owner=self.owner)
            except StoreError:
                log.exception(
                    "could not hand back %d runs vetting refused; they will be marked lost", len(run_ids)
                )

    def _hand_back_held(self) -> None:
        held = self.dispatcher.release_held()
        try:
            self.store.release_runs(held, owner=self.owner)
        except StoreError:
            log.exception("could not hand back %d runs claimed ahead; they will be marked lost", len(held))

    # ---- the loop --------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._exiting.is_set():
            self._wake.clear()
            try:
                self.run_once()
                self.last_loop_at = self.clock.now()
            except StoreError as exc:
                self.loop_errors += 1
                retry = self.settings.retry_store_after
                self._outage.failed(
                    logging.ERROR, "database unavailable for %.0fs: %s; retrying every %ss", exc, retry
                )
                log.debug("the pass failed on the database", exc_info=True)
                time.sleep(retry)
                continue
            except Exception:
                log.exception("unexpected error in the scheduler loop; continuing")
            self._outage.ended("database reachable again after %.1fs")
            self._sleep()
        self._flush_safely()

    def _sleep(self) -> None:
        """Sleep until the next due time on the engine's clock, but no later than the next write of outcomes
        or of the output of running processes, in real time (the work of real processes is written on real
        time)."""
        now = self.clock.now()
        seconds = self._seconds_to_sleep(now)
        limit = self._real_time_limit()
        if limit is not None and seconds > limit:
            self._wake.wait(limit)
        else:
            self.clock.wait_until(self._wake, now + timedelta(seconds=seconds))

    def _real_time_limit(self) -> float | None:
        if self.outcomes:
            return self.settings.flush_interval
        if self.outcomes.has_live_output():
            return max(self._next_progress_at - time.monotonic(), self.settings.flush_interval)
        return None  # nothing running writes anything: sleep as long as the schedule allows

    def _seconds_to_sleep(self, now: datetime) -> float:
        if self._claim_again:
            return 0.0
        candidates = [self.settings.poll_interval]
        due = self._next_due_at
        if due is not None:
            if due - now > MAX_LEAD and self._lead.may_exceed_lookahead:
                # Wake to count the fires due then (see _plan_lead), before their claims may have to begin.
                candidates.append((due - MAX_LEAD - now).total_seconds())
            # Wake to claim ahead of time.  A job still unclaimed by a claim made inside its window was held
            # back by its overlap policy, and is looked at again when it is due; but if its claim time came
            # while the last pass ran, no claim has looked at it yet: claim now.
            early = self._claim_at(due)
            if early > now:
                candidates.append((early - now).total_seconds())
            elif self._claimed_at is None or self._claimed_at < early:
                candidates.append(0.0)
            else:
                candidates.append((due - now).total_seconds())
        heartbeat_at = self._heartbeat_at(now)
        if heartbeat_at is not None:
            candidates.append((heartbeat_at - now).total_seconds())
        return max(min(candidates), 0.0)

    def run_once(self) -> int:
        """Write outcomes and verdicts, keep the heartbeat, claim what is due within the look-ahead; without
        a starter (:meth:`Scheduler.run_pending`), start what is due too.  Returns how many runs this call
        started."""
        stopping = self._stopping.is_set()
        started = self._start_what_came_due()
        now = self.clock.now()
        self._next_due_at = self.store.next_due_at(instance_id=self.instance_id)
        self._plan_lead(now)
        horizon = now + self._lead.current
        claiming = (
            not stopping
            and not self._clock_too_far
            and self._starter_alive()
            and self._next_due_at is not None
            and self._next_due_at <= horizon  # else the claim would find nothing: an empty write
            and (self._claim_again or self._claim_at(self._next_due_at) <= now)
        )
        # Writing outcomes and the heartbeat can wait a little: not while a burst of runs still waits for
        # workers or is about to be started, which they would only hold up.  Before a claim, outcomes are
        # written all the same: a finished run still active in the database would count against overlap.
        self._settle_verdicts()  # before a claim, which would count their runs as still active
        quiet = not self.dispatcher.busy_soon(now, QUIET_BEFORE_DISPATCH)
        if quiet or claiming or self.outcomes.waiting_for() > MAX_WRITE_DELAY:
            self._flush_safely()  # a failed write is kept for the next try; heartbeat and claims go on
        heartbeat_at = self._next_heartbeat_at
        if heartbeat_at is None or (
            now >= heartbeat_at and (quiet or now - heartbeat_at >= self._heartbeat_slack)
        ):
            self._heartbeat(now)
        self._write_progress(quiet)  # after the outcomes: a run's start is written before its output
        if not claiming:
            # Nothing to claim: a read, not a write transaction, is all an idle poll costs.
            self._claim_again = False
            return started
        began = time.perf_counter()
        claim = self.store.claim_due(
            now=now,
            owner=self.owner,
            limit=self.settings.batch_size,
            horizon=horizon,
            instance_id=self.instance_id,
        )
        self._lead.note_claim(len(claim.to_start) + len(claim.recorded), time.perf_counter() - began)
        self._claim_again = len(claim.to_start) + len(claim.recorded) >= self.settings.batch_size
        self._claimed_at = now
        self._apply(claim)  # first: the claim is committed, its runs must not be dropped by a later error
        started += self._start_what_came_due()
        self._settle_verdicts()
        self._next_due_at = self.store.next_due_at(instance_id=self.instance_id)
        return started

    def _plan_lead(self, now: datetime) -> None:
        """Count the fires due with the next when their claims could have to begin before the look-ahead,
        and plan the lead by them, once per due instant.  Best effort: a count the database fails keeps the
        lead as it was (the pass's own reads and writes tell of an outage)."""
        due = self._next_due_at
        if due is None or due - now > MAX_LEAD:
            self._lead.reset()
        elif due - now > self.settings.lookahead and self._lead.needs_plan(due):
            try:
                together = self.store.count_due(
                    until=due + self.settings.lookahead,
                    limit=self._lead.counting_limit(),
                    instance_id=self.instance_id,
                )
            except StoreError:
                log.debug("could not count the fires due at %s", due, exc_info=True)
                return
            self._lead.plan(together, due)

    def _start_what_came_due(self) -> int:
        """Without a starter, start the held runs due by now, vetted; returns how many."""
        if self._starter is not None:
            return 0
        held = self.dispatcher.take_due(self.clock.now())
        return self.dispatcher.start(self._vetter.vetted(held)) if held else 0

    def _settle_verdicts(self) -> None:
        """Write what vetting decided for runs it did not start (a failure raises, as any write of a pass)."""
        for run in self._vetter.settle(owner=self.owner):
            log.info("job %s: run %s %s: %s", run.job_id, run.id, run.status.value, run.error)
            if self.listeners:
                self.listeners.emit(RunEvent.from_run(run))

    def _heartbeat_at(self, now: datetime) -> datetime | None:
        """When the loop must wake for the heartbeat.  One that is due but put off (runs are about to start)
        is written on the first quiet pass or at the end of its slack: waking for it before that only spun
        the loop, hundreds of passes a second, each reading the database."""
        heartbeat_at = self._next_heartbeat_at
        if heartbeat_at is not None and heartbeat_at <= now:
            return heartbeat_at + self._heartbeat_slack
        return heartbeat_at

    def _starter_alive(self) -> bool:
        """Whether runs claimed now would be started (without a starter, this thread starts them).  A dead
        starter is a defect: claim nothing more, which this node would hold without ever starting."""
        starter = self._starter
        if starter is None or starter.alive:
            return True
        if not self._starter_death_logged:
            log.error("the thread that starts runs died: this node claims nothing more; restart it")
            self._starter_death_logged = True
        return False

    @property
    def _heartbeat_slack(self) -> timedelta:
        return min(HEARTBEAT_SLACK, self.settings.heartbeat_interval / 2)

    def _claim_at(self, due: datetime) -> datetime:
        """When to claim a fire due at ``due``: a lead before it (a look-ahead, or more for a burst: see
        :mod:`cronkeeper.engine.lead`), but no sooner than an eighth of a lead after the last claim, unless
        it is due within a quarter of one.  Fires spread over the second (a thousand jobs, each at its own
        offset) are then claimed several times a second, in batches, instead of one write transaction per
        fire, and each is still claimed before it is due."""
        lead = self._lead.current
        early = due - lead
        if self._claimed_at is None:
            return early
        return min(max(early, self._claimed_at + lead / 8), due - lead / 4)

    def _apply(self, claim: ClaimResult) -> None:
        for run in claim.recorded:
            log.info("job %s: run %s %s: %s", run.job_id, run.id, run.status.value, run.error)
            if self.listeners:
                self.listeners.emit(RunEvent.from_run(run))
        for run_id in claim.to_cancel:
            self.dispatcher.cancel(run_id, "cancelled: replaced by a newer run (overlap=replace)")
        self.dispatcher.hold(claim.to_start)
        starter = self._starter  # read once: a stop in another thread may clear it
        if starter is not None and claim.to_start:
            starter.nudge()

    def _heartbeat(self, now: datetime) -> None:
        first = self._next_heartbeat_at is None
        # Leases are judged by one clock for the whole cluster: the database's, where it has one.
        lease_now = self._lease_time(now)
        cancel_ids = self.store.heartbeat(
            owner=self.owner, now=lease_now, hostname=socket.gethostname(), pid=os.getpid()
        )
        self._next_heartbeat_at = now + self.settings.heartbeat_interval
        for run_id in cancel_ids:
            self.dispatcher.cancel(run_id, "cancelled on request")
        lost = self.store.reap_lost(now=lease_now, lease=self.settings.lease)
        for run in lost:
            log.warning("job %s: run %s lost (owner %s stopped heartbeating)", run.job_id, run.id, run.owner)
            if self.listeners:
                self.listeners.emit(RunEvent.from_run(run))
        if lost:
            # What its dead node started here may still run (a command's descendants): end it.
            for leftover in kill_leftovers({(str(run.id), run.owner) for run in lost if run.owner}):
                log.warning("killed process %s, left running by a lost run", leftover)
        # Every live node watches every job: silence is heard while the node that should run a job is down.
        # Not at a node's first heartbeat, before its first claims: those report the fires an outage missed.
        if not first:
            self.store.flag_overdue(now=lease_now, margin=self.settings.lease)
        self.store.flag_long_runs(now=now, owner=self.owner)

    def _lease_time(self, now: datetime) -> datetime:
        """The database's clock where there is one (PostgreSQL) and this process runs on the real time:
        what heartbeats are written and judged by, so that a node whose clock is off never declares live
        nodes' runs lost.  The skew is measured on the way; past ``max_clock_skew`` this node claims nothing
        (it would fire early or late) until its clock is set right."""
        if not isinstance(self.clock, SystemClock):
            return now
        database = self.store.database_time()
        if database is None:
            return now
        skew = (database - self.clock.now()).total_seconds()
        too_far = abs(skew) > self.settings.max_clock_skew.total_seconds()
        if too_far != self._clock_too_far:
            if too_far:
                log.warning(
                    "this node's clock is %+.1f s off the database's: it claims nothing until set right",
                    -skew,
                )
            else:
                log.info("this node's clock is within %.1f s of the database's again: claiming", abs(skew))
        self.clock_skew, self._clock_too_far = skew, too_far
        return database

    def _write_progress(self, quiet: bool) -> None:
        """Write the output of running runs once per ``progress_interval``, for those who follow them
        live.  A write due while runs are about to start, which it would only hold up, waits for the next
        interval, but never twice in a row: output still shows while every worker is busy."""
        if not self.outcomes.has_live_output():
            return
        now = time.monotonic()
        if now < self._next_progress_at:
            return
        self._next_progress_at = now + self.settings.progress_interval.total_seconds()
        if quiet or self._progress_put_off:
            self._progress_put_off = False
            self.outcomes.write_progress(self.store, owner=self.owner)
        else:
            self._progress_put_off = True

    def _flush(self) -> None:
        retry_at = self.outcomes.flush(
            self.store, owner=self.owner, now=self.clock.now(), listeners=self.listeners
        )
        # A retry is due at its own time, not at the next poll: nothing else tells this loop about it.
        if retry_at is not None and (self._next_due_at is None or retry_at < self._next_due_at):
            self._next_due_at = retry_at

    def _flush_safely(self) -> None:
        try:
            self._flush()
        except StoreError:
            log.exception("could not write run outcomes; they stay queued in memory")
