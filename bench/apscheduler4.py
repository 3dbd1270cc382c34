"""APScheduler 4.0 alpha side of the benchmarks (4.0.0a6, its SQLAlchemy data store on SQLite).

APScheduler 3 and 4 share one PyPI name, so this side runs in a virtualenv of its own (see
``python -m bench.compare --help``): it imports only ``bench.figures``, ``bench.failures``, ``bench.soak``,
APScheduler 4 and SQLAlchemy, never ``bench.apscheduler3`` or cronkeeper.

It mirrors the set-up of ``bench/apscheduler3.py`` as closely as APScheduler 4 allows:

* the synchronous ``Scheduler`` (APScheduler 4's counterpart of ``BackgroundScheduler``: it runs the
  asynchronous scheduler on an event loop in a thread of its own) with a ``SQLAlchemyDataStore`` on a
  fresh SQLite file in a temporary directory;
* every SQLite connection in WAL mode with ``synchronous=NORMAL`` and a 5 s busy timeout, set by a
  SQLAlchemy ``connect`` event;
* a ``runs`` history table in the same file, written by a ``JobReleased`` subscriber: one insert and one
  commit per run that started (success or error), as in the APScheduler 3 listener;
* a misfire grace time of 1 s, no coalescing, and a ``ThreadPoolJobExecutor`` of 20 threads, the size of
  cronkeeper's worker pool.

Where APScheduler 4 differs, or could not be set up the same:

* **Asynchronous engine.** The data store is written for asyncio and prefers an asynchronous engine: it
  is given the URL ``sqlite+aiosqlite:///FILE`` (aiosqlite runs each SQLite connection in a thread of its
  own), so it builds that engine itself and disposes of it when the scheduler stops.  It also accepts a
  synchronous engine, as APScheduler 3 uses, but 4.0.0a6 reads some query results after handing the
  connection back to the pool (``get_next_schedule_run_time``, ``get_schedules``), which with SQLite's
  pool crashed the scheduler (``Cannot operate on a closed database``) in the first small run.  Because
  the store builds its engine, the pragmas are set by a ``connect`` listener on SQLAlchemy's ``Engine``
  class, the pattern SQLAlchemy documents for SQLite pragmas, which reaches the asynchronous engine's
  connections too.  The history table is written through a second, synchronous engine on the same file
  with the same pragmas: the subscriber is a plain function, as users of the synchronous ``Scheduler``
  write it, and cannot use the asynchronous engine.
* **Schedules, tasks and jobs.** An APScheduler 3 *job* is a *task* (the callable and its limits) plus
  a *schedule* (the trigger) in APScheduler 4; each fire then becomes a *job* row, inserted by the
  scheduler loop, acquired by the worker loop and deleted when released.  Every schedule here runs one
  task, ``probe``, configured once, as APScheduler 4 is meant to be used for one callable on many
  triggers.
* **No per-job instance limit.** ``max_running_jobs``, APScheduler 4's ``max_instances``, belongs to the
  task, so with one task it could only cap the runs of all schedules together (its default, 1, would run
  one job of the whole benchmark at a time); it is set to ``None``, no limit.  Keeping APScheduler 3's
  limit of one running instance per job would take a task per schedule, which in one small run executed
  fewer fires and added schedules about 1.7 times slower; the probe returns at once, so no fire here ever
  meets the limit on the other sides.  Fires are never dropped for a running instance in APScheduler 4
  (a job over its task's limit stays queued), so ``skipped_fires`` is always 0 here.
* **Misfires and coalescing.** The misfire grace time becomes each job's start deadline (fire time +
  1 s); a job that cannot start by then is released with outcome ``missed_start_deadline``, counted in
  ``missed_fires``.  ``CoalescePolicy.all`` on every schedule is APScheduler 4's "no coalescing": every due
  fire time becomes a job.
* **Threads.** ``ThreadPoolJobExecutor(max_workers=20)`` bounds the threads that run jobs.  The scheduler
  also caps the jobs it holds at once with ``max_concurrent_jobs``, left at its default of 100.  The data
  store's statements are awaited on the event loop (aiosqlite's threads do the SQLite work), and the
  ``JobReleased`` subscriber runs in one AnyIO worker thread at a time (APScheduler 4 delivers a
  synchronous subscriber's events one by one), where APScheduler 3 calls its listener in the pool thread
  that ran the job.
* **Lateness** is the job's own start: the job records ``time.time()`` under its job id (read from
  ``apscheduler.current_job``) and the subscriber takes it minus the event's ``scheduled_start``.  The
  event's own ``started_at`` is not used: the scheduler takes it before the job waits for a free thread,
  so it would leave that wait out.  The job's return value is not in the event; keeping it would need a
  stored job result (``result_expiration_time`` > 0), an extra insert per run.
* **Set-up.** Schedules are added before the scheduler starts, as in APScheduler 3, but APScheduler 4
  writes each one at once (a task look-up and the schedule insert, one transaction each) instead of at
  ``start()``; the common first fire time leaves room for that.
* **bulk-add** adds the schedules to the running scheduler; the restart figure runs until
  ``start_in_background()`` has returned and ``get_schedules()`` (which loads and unpickles every stored
  schedule) has answered, and ``restart_jobs_loaded`` counts schedules.

APScheduler's own log records are raised to ERROR for the duration of each scenario, as on the
APScheduler 3 side.

The postgres-nodes scenario has no APScheduler 4 side (``bench.compare`` prints n/a): this comparison is
of SQLite set-ups, and sharing one PostgreSQL store between several APScheduler 4 schedulers would need
a PostgreSQL driver and event broker in this virtualenv and a node set-up of its own, not a mirror of the
one-process APScheduler 3 side.

Run ``python -m bench.apscheduler4`` from the repository root, in that virtualenv, for a quick run with
small sizes.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
from apscheduler import CoalescePolicy, JobOutcome, JobReleased, Scheduler, TaskDefaults, current_job
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.executors.thread import ThreadPoolJobExecutor
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, create_engine, event

from bench.baseline import METADATA, RUNS, count_history, print_result, set_sqlite_pragmas
from bench.failures import BenchFailure
from bench.figures import ON_TIME_SECONDS, WORKER_THREADS, BulkResult, FireResult, iso, percentile
from bench.soak import Sampler, SoakResult, soak_result

__all__ = [
    "bulk_add",
    "burst",
    "fire_every_second",
    "fires_per_second",
    "main",
    "soak",
    "spread_every_second",
]

#: Misfire grace time of every job, as ``misfire_grace_time`` on the APScheduler 3 side.
MISFIRE_GRACE_SECONDS = 1.0
# The one task every schedule runs (see the module docstring).
_TASK = "probe"
# The first fire of the fire scenarios must come after every schedule is in the store.  Adding one takes
# two transactions (about 3 ms on the reference machine), so 5 ms per schedule plus two seconds leaves a
# margin.
_LEAD_SECONDS = 2.0
_SETUP_SECONDS_PER_JOB = 0.005
# How long to wait after the last scheduled fire for late runs and their events before giving up on them.
_DRAIN_SECONDS = 5.0


# When each job started, by APScheduler job id: written by the job, taken by the subscriber (see the
# module docstring).  One key per running job, so a plain dict under the GIL is enough.
_STARTED: dict[UUID, float] = {}


def _probe() -> None:
    """The job: do nothing but record when it started, so the subscriber can compute lateness."""
    _STARTED[current_job.get().id] = time.time()


def _listen_for_connections() -> None:
    """Set the pragmas on every new connection of every engine, the data store's own one included."""
    if not event.contains(Engine, "connect", set_sqlite_pragmas):
        event.listen(Engine, "connect", set_sqlite_pragmas)


def _history_engine(path: Path) -> Engine:
    """The subscriber's synchronous engine on the data store's file, with the ``runs`` table created."""
    _listen_for_connections()
    engine = create_engine(f"sqlite:///{path}")
    METADATA.create_all(engine)
    return engine


def _make_scheduler(path: Path) -> Any:
    """A synchronous Scheduler on a SQLAlchemy data store at ``path``, set up as the comparison requires.

    The data store gets a URL, so it builds the asynchronous engine and disposes of it when the scheduler
    stops.  The task defaults carry the settings of APScheduler 3's ``job_defaults`` that APScheduler 4
    keeps per task (see the module docstring).  Entering the scheduler starts the data store; the
    ``probe`` task is configured after that, by :func:`_configure`.
    """
    _listen_for_connections()
    return Scheduler(
        SQLAlchemyDataStore(f"sqlite+aiosqlite:///{path}"),
        job_executors={"threadpool": ThreadPoolJobExecutor(max_workers=WORKER_THREADS)},
        task_defaults=TaskDefaults(
            job_executor="threadpool",
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            max_running_jobs=None,
        ),
    )


def _configure(scheduler: Any) -> None:
    """Store the one task every schedule runs, with the task defaults above."""
    scheduler.configure_task(_TASK, func=_probe)


def _add(scheduler: Any, schedule_id: str, trigger: Any) -> None:
    """Add one schedule of the ``probe`` task, without coalescing; written to the store before returning."""
    scheduler.add_schedule(_TASK, trigger, id=schedule_id, coalesce=CoalescePolicy.all)


@contextmanager
def _quiet_apscheduler() -> Iterator[None]:
    """Silence APScheduler's log records below ERROR for the duration of a scenario."""
    logger = logging.getLogger("apscheduler")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


class _Recorder:
    """The ``JobReleased`` subscriber: one history row per run, and the counters the figures come from.

    APScheduler 4 calls a synchronous subscriber in a worker thread while the wait loop reads the
    counters from the main thread, so the counters are guarded by a lock; the database write happens
    outside it, as it would in a user's subscriber.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self.lateness: list[float] = []
        self.executed = 0
        self.errored = 0
        self.missed = 0

    @property
    def accounted(self) -> int:
        """Fires whose fate is known: executed, errored or missed."""
        with self._lock:
            return self.executed + self.errored + self.missed

    def on_released(self, ev: Any) -> None:
        """Count a missed start; write and count any run that started, with its lateness if it succeeded."""
        if ev.outcome is JobOutcome.missed_start_deadline:
            with self._lock:
                self.missed += 1
            return
        finished = time.time()
        scheduled = float(ev.scheduled_start.timestamp())
        ok = ev.outcome is JobOutcome.success
        own_start = _STARTED.pop(ev.job_id, None)
        started = own_start if own_start is not None else finished
        with self._engine.begin() as conn:
            conn.execute(
                RUNS.insert().values(
                    job_id=str(ev.schedule_id),
                    scheduled_for=iso(scheduled),
                    started_at=iso(started),
                    finished_at=iso(finished),
                    status="ok" if ok else str(ev.outcome.name),
                )
            )
        with self._lock:
            if ok:
                self.executed += 1
                self.lateness.append(started - scheduled)
            else:
                self.errored += 1


def _wait_for(recorder: _Recorder, expected: int, deadline: float, sampler: Sampler | None) -> None:
    """Sleep until every expected fire is accounted for or the deadline (a time.time() value) passes."""
    while recorder.accounted < expected and time.time() < deadline:
        time.sleep(0.05)
        if sampler:
            sampler.poll(lambda: recorder.executed)
    if sampler:
        sampler.close(lambda: recorder.executed)


def _fire_result(
    recorder: _Recorder, jobs: int, interval: float, seconds: float, expected: int, cpu: float, rows: int
) -> FireResult:
    """Turn the recorder's counters into figures; called once the scheduler has stopped, so they are final."""
    lateness = sorted(recorder.lateness)
    on_time = sum(1 for late in lateness if late <= ON_TIME_SECONDS)
    executed = recorder.executed
    return FireResult(
        jobs=jobs,
        interval_seconds=interval,
        seconds=float(seconds),
        expected_fires=expected,
        executed_fires=executed,
        missed_fires=recorder.missed,
        skipped_fires=0,
        errored_fires=recorder.errored,
        percent_executed=100.0 * executed / expected if expected else math.nan,
        percent_on_time=100.0 * on_time / expected if expected else math.nan,
        lateness_p50_ms=1000.0 * percentile(lateness, 50),
        lateness_p99_ms=1000.0 * percentile(lateness, 99),
        lateness_max_ms=1000.0 * lateness[-1] if lateness else math.nan,
        cpu_us_per_fire=1e6 * cpu / executed if executed else math.nan,
        history_rows=rows,
        processes_executing=1 if executed else 0,
    )


def _run_interval_jobs(
    jobs: int, interval: float, seconds: float, *, spread: bool = False, sampler: Sampler | None = None
) -> FireResult:
    """Shared body of the fire scenarios: ``jobs`` interval schedules with one common anchor, for ``seconds``.

    Schedules are added before the scheduler starts (each is written at once), which keeps set-up out of
    the measured window; the anchor is far enough ahead for that to finish first.  Each schedule gets
    ``round(seconds / interval)`` fires, bounded by the trigger's ``end_time``.
    """
    fires_per_job = max(1, round(seconds / interval))
    expected = jobs * fires_per_job
    with _quiet_apscheduler(), tempfile.TemporaryDirectory(prefix="ck-aps4-") as tmp:
        path = Path(tmp) / "aps.db"
        engine = _history_engine(path)
        recorder = _Recorder(engine)
        anchor = float(math.ceil(time.time() + _LEAD_SECONDS + jobs * _SETUP_SECONDS_PER_JOB))
        start = datetime.fromtimestamp(anchor, UTC)
        try:
            with _make_scheduler(path) as scheduler:
                _configure(scheduler)
                scheduler.subscribe(recorder.on_released, JobReleased)
                for i in range(jobs):
                    first = start + timedelta(seconds=i * interval / jobs if spread else 0.0)
                    end = first + timedelta(seconds=(fires_per_job - 0.5) * interval)
                    trigger = IntervalTrigger(seconds=interval, start_time=first, end_time=end)
                    _add(scheduler, f"fire-{i}", trigger)
                scheduler.start_in_background()
                if time.time() > anchor - 0.5:
                    raise RuntimeError(
                        f"set-up of {jobs} schedules overran the common start time; raise _LEAD_SECONDS"
                    )
                cpu_start = time.process_time()
                last_fire = anchor + (fires_per_job - 1) * interval
                if sampler:
                    sampler.began = anchor
                deadline = last_fire + MISFIRE_GRACE_SECONDS + _DRAIN_SECONDS
                _wait_for(recorder, expected, deadline, sampler)
                cpu = time.process_time() - cpu_start
                scheduler.stop()
                scheduler.wait_until_stopped()
            if not recorder.executed:
                raise BenchFailure("APScheduler 4 executed nothing")
            return _fire_result(recorder, jobs, interval, seconds, expected, cpu, count_history(engine))
        finally:
            engine.dispose()


def fire_every_second(jobs: int = 1000, seconds: float = 30) -> FireResult:
    """``jobs`` interval schedules firing every second, all anchored at the same instant, for ``seconds``.

    The steady "many jobs, same second" load: every second the scheduler loop must turn every schedule
    into a job row and re-persist the schedule, the worker loop must acquire, run and release every job,
    and the subscriber must write one history row per run.
    """
    return _run_interval_jobs(jobs, 1.0, seconds)


def spread_every_second(jobs: int = 1000, seconds: float = 30) -> FireResult:
    """``jobs`` interval schedules firing every second, each at its own offset in the second."""
    return _run_interval_jobs(jobs, 1.0, seconds, spread=True)


def burst(jobs: int = 10_000) -> FireResult:
    """``jobs`` schedules due once, all on the same instant."""
    return _run_interval_jobs(jobs, 1.0, 1.0)


def soak(rate: int = 1000, seconds: float = 3600, window: float = 60) -> SoakResult:
    """``rate`` schedules every second, each at its own offset, for ``seconds``; sampled every ``window``."""
    sampler = Sampler(seconds, window)
    return soak_result(sampler, _run_interval_jobs(rate, 1.0, seconds, spread=True, sampler=sampler))


def fires_per_second(rate: int = 10_000, seconds: float = 10, interval: float = 1.0) -> FireResult:
    """A load of ``rate`` fires per second for ``seconds`` seconds; on time means at most 1 s late.

    Built as ``round(rate * interval)`` schedules each firing every ``interval`` seconds, as on the
    APScheduler 3 side; the default (``rate`` schedules every second) is the shape to compare.  Unlike
    APScheduler 3, a shorter interval does not make the load easier: with ``CoalescePolicy.all`` each due
    fire time still becomes a job row of its own.
    """
    jobs = max(1, round(rate * interval))
    return _run_interval_jobs(jobs, interval, seconds)


def _tomorrow_trigger(i: int, base: datetime) -> Any:
    """Alternate cron and interval triggers whose first fire is at least a day away, spread over a day."""
    if i % 2:
        return IntervalTrigger(days=1, start_time=base + timedelta(minutes=(i // 2) % 1440))
    return CronTrigger(hour=(i // 2) % 24, minute=(i // 48) % 60, start_time=base, timezone=UTC)


def _add_tomorrow_jobs(scheduler: Any, jobs: int, time_budget: float | None) -> tuple[int, float]:
    """Add schedules one by one to the running scheduler until done or over budget; (added, wall seconds)."""
    base = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    started = time.perf_counter()
    added = 0
    for i in range(jobs):
        if time_budget is not None and time.perf_counter() - started > time_budget:
            break
        _add(scheduler, f"bulk-{i}", _tomorrow_trigger(i, base))
        added += 1
    return added, time.perf_counter() - started


def bulk_add(jobs: int = 100_000, time_budget: float | None = 60.0, idle_window: float = 10.0) -> BulkResult:
    """Add ``jobs`` cron/interval schedules due tomorrow, then restart on the same file and idle.

    Schedules are added to a *running* scheduler, as on the APScheduler 3 side; each is in the database
    when its call returns.  If adding passes ``time_budget`` seconds the loop stops and ``add_seconds`` is
    extrapolated linearly from the schedules added so far.  After the adds the scheduler stops and a new
    data store and scheduler are built on the same file: ``restart_ready_seconds`` runs until
    ``start_in_background()`` has returned and ``get_schedules()`` has answered, and the idle CPU is
    measured right after.
    """
    with _quiet_apscheduler(), tempfile.TemporaryDirectory(prefix="ck-aps4-") as tmp:
        path = Path(tmp) / "aps.db"
        with _make_scheduler(path) as scheduler:
            _configure(scheduler)
            scheduler.start_in_background()
            added, measured = _add_tomorrow_jobs(scheduler, jobs, time_budget)
            scheduler.stop()
            scheduler.wait_until_stopped()

        ready_start = time.perf_counter()
        with _make_scheduler(path) as scheduler:
            scheduler.start_in_background()
            loaded = len(scheduler.get_schedules())
            ready = time.perf_counter() - ready_start
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            time.sleep(idle_window)
            idle = 100.0 * (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
            idle_rss = psutil.Process().memory_info().rss / 2**20
            scheduler.stop()
            scheduler.wait_until_stopped()

    if not added:
        raise BenchFailure("APScheduler 4 added nothing")
    extrapolated = added < jobs
    return BulkResult(
        jobs=jobs,
        jobs_added=added,
        add_seconds=measured * jobs / added if extrapolated else measured,
        add_seconds_measured=measured,
        extrapolated=extrapolated,
        idle_cpu_percent=idle,
        restart_ready_seconds=ready,
        restart_jobs_loaded=loaded,
        idle_rss_mb=idle_rss,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run three scenarios with sizes small enough for a quick check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=200, help="schedules for fire_every_second")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of fire_every_second")
    parser.add_argument("--rate", type=int, default=2000, help="fires per second for fires_per_second")
    parser.add_argument("--rate-seconds", type=float, default=3.0, help="duration of fires_per_second")
    parser.add_argument("--interval", type=float, default=1.0, help="schedule interval for fires_per_second")
    parser.add_argument("--bulk", type=int, default=5000, help="schedules for bulk_add")
    parser.add_argument("--budget", type=float, default=60.0, help="time budget for bulk_add adds")
    parser.add_argument("--idle", type=float, default=10.0, help="idle window for bulk_add")
    args = parser.parse_args(argv)
    print_result(
        f"fire_every_second(jobs={args.jobs}, seconds={args.seconds})",
        fire_every_second(args.jobs, args.seconds),
    )
    print_result(
        f"fires_per_second(rate={args.rate}, seconds={args.rate_seconds}, interval={args.interval})",
        fires_per_second(args.rate, args.rate_seconds, args.interval),
    )
    print_result(
        f"bulk_add(jobs={args.bulk}, time_budget={args.budget})",
        bulk_add(args.bulk, args.budget, args.idle),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
