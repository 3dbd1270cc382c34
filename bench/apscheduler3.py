"""APScheduler 3 side of the benchmarks, so cronkeeper's figures have a baseline measured in the same run.

The comparison is only meaningful if APScheduler pays for the same durability cronkeeper pays for, so every
scenario here uses the set-up a careful user would choose for persistent jobs with a run history:

* ``BackgroundScheduler`` with a ``SQLAlchemyJobStore`` on a fresh SQLite file in a temporary directory;
* the SQLite connection in WAL mode with ``synchronous=NORMAL`` and a busy timeout, set by a SQLAlchemy
  ``connect`` event on the engine handed to the job store (cronkeeper's own SQLite settings);
* a ``runs`` history table in the same file, written by an ``add_listener`` callback on
  ``EVENT_JOB_EXECUTED | EVENT_JOB_ERROR``: one insert and one commit per run, as users write it;
* ``job_defaults={"misfire_grace_time": 1, "coalesce": False, "max_instances": 1}`` and a 20-thread pool,
  the size of cronkeeper's worker pool.

Jobs are a trivial module-level function that returns ``time.time()`` taken when it starts; APScheduler hands
that return value to the listener as ``event.retval`` next to ``event.scheduled_run_time``, so lateness is
measured per run with no shared state between the job and the listener.

APScheduler's own log records (one WARNING per missed run) are raised to ERROR for the duration of each
scenario: otherwise the default last-resort handler would print thousands of lines to stderr and the
benchmark would measure terminal I/O instead of scheduling.

Run ``python bench/apscheduler3.py`` for a quick run with small sizes; the functions take the full sizes.
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

import psutil
from apscheduler.events import (  # type: ignore[import-untyped, unused-ignore]
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
)
from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped, unused-ignore]
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped, unused-ignore]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped, unused-ignore]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped, unused-ignore]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Engine, create_engine, event

from bench.baseline import METADATA, RUNS, count_history, print_result, set_sqlite_pragmas
from bench.failures import BenchFailure
from bench.figures import ON_TIME_SECONDS, WORKER_THREADS, BulkResult, FireResult, iso, percentile
from bench.ladder import Ladder, climb, postgres_server
from bench.soak import Sampler, SoakResult, soak_result

__all__ = [
    "bulk_add",
    "burst",
    "fire_every_second",
    "fires_per_second",
    "main",
    "postgres_nodes",
    "soak",
    "spread_every_second",
]

#: The job defaults the comparison is specified with (see the module docstring).
JOB_DEFAULTS: dict[str, Any] = {"misfire_grace_time": 1, "coalesce": False, "max_instances": 1}
# The first fire of the fire scenarios must come after every job is in the store; persisting takes about
# 0.2 ms per job on the reference machine, so 1 ms per job plus two seconds leaves a wide margin.
_LEAD_SECONDS = 2.0
_SETUP_SECONDS_PER_JOB = 0.001
# How long to wait after the last scheduled fire for late runs and their events before giving up on them.
_DRAIN_SECONDS = 5.0


def _probe() -> float:
    """The job: do nothing but report when it started, so the listener can compute lateness."""
    return time.time()


def _make_engine(path: Path) -> Engine:
    """An engine on ``path`` whose connections are configured by a ``connect`` event, as users do it."""
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", set_sqlite_pragmas)
    return engine


def _make_scheduler(engine: Engine) -> Any:
    """A persistent BackgroundScheduler set up as the comparison requires (UTC: tzlocal plays no part)."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        executors={"default": ThreadPoolExecutor(WORKER_THREADS)},
        job_defaults=JOB_DEFAULTS,
        timezone=UTC,
    )


def _stop(scheduler: Any) -> None:
    """Shut down if running, waiting for running jobs so nothing touches the file after we delete it."""
    if scheduler.running:
        scheduler.shutdown(wait=True)


@contextmanager
def _quiet_apscheduler() -> Iterator[None]:
    """Silence per-run WARNING records for the duration of a scenario (see the module docstring)."""
    logger = logging.getLogger("apscheduler")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


class _Recorder:
    """The listeners: write one history row per run and keep the counters the figures are built from.

    Runs listeners are called from the pool thread that ran the job, so counters are guarded by a lock;
    the database write happens outside it, as it would in a user's listener.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self.lateness: list[float] = []
        self.executed = 0
        self.errored = 0
        self.missed = 0
        self.skipped = 0

    @property
    def accounted(self) -> int:
        """Fires whose fate is known: executed, errored, missed or skipped."""
        with self._lock:
            return self.executed + self.errored + self.missed + self.skipped

    def on_run(self, ev: Any) -> None:
        """EVENT_JOB_EXECUTED | EVENT_JOB_ERROR: one insert and one commit, then count."""
        finished = time.time()
        scheduled = float(ev.scheduled_run_time.timestamp())
        ok = ev.code == EVENT_JOB_EXECUTED
        started = float(ev.retval) if ok else finished
        with self._engine.begin() as conn:
            conn.execute(
                RUNS.insert().values(
                    job_id=str(ev.job_id),
                    scheduled_for=iso(scheduled),
                    started_at=iso(started),
                    finished_at=iso(finished),
                    status="ok" if ok else "error",
                )
            )
        with self._lock:
            if ok:
                self.executed += 1
                self.lateness.append(started - scheduled)
            else:
                self.errored += 1

    def on_loss(self, ev: Any) -> None:
        """EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES: count the fires that will never run."""
        with self._lock:
            if ev.code == EVENT_JOB_MISSED:
                self.missed += 1
            else:
                self.skipped += len(ev.scheduled_run_times)


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
    """Turn the recorder's counters into figures; a snapshot taken before shutdown, so it is final."""
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
        skipped_fires=recorder.skipped,
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
    jobs: int,
    interval: float,
    seconds: float,
    *,
    spread: bool = False,
    sampler: Sampler | None = None,
    url: str | None = None,
) -> FireResult:
    """Shared body of the fire scenarios: ``jobs`` interval jobs with one common anchor, for ``seconds``.

    Jobs are added to the stopped scheduler and persisted by ``start()`` (one insert+commit each), which
    keeps set-up out of the measured window; the anchor is far enough ahead for that to finish first.
    Each job gets ``round(seconds / interval)`` fires, bounded by the trigger's ``end_date``.
    """
    fires_per_job = max(1, round(seconds / interval))
    expected = jobs * fires_per_job
    with _quiet_apscheduler(), tempfile.TemporaryDirectory(prefix="ck-aps3-") as tmp:
        engine = create_engine(url) if url else _make_engine(Path(tmp) / "aps.db")
        METADATA.create_all(engine)
        recorder = _Recorder(engine)
        scheduler = _make_scheduler(engine)
        scheduler.add_listener(recorder.on_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.add_listener(recorder.on_loss, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        anchor = float(math.ceil(time.time() + _LEAD_SECONDS + jobs * _SETUP_SECONDS_PER_JOB))
        start = datetime.fromtimestamp(anchor, UTC)
        try:
            for i in range(jobs):
                first = start + timedelta(seconds=i * interval / jobs if spread else 0.0)
                end = first + timedelta(seconds=(fires_per_job - 0.5) * interval)
                trigger = IntervalTrigger(seconds=interval, start_date=first, end_date=end, timezone=UTC)
                scheduler.add_job(_probe, trigger, id=f"fire-{i}")
            scheduler.start()
            if time.time() > anchor - 0.5:
                raise RuntimeError(
                    f"set-up of {jobs} jobs overran the common start time; raise _LEAD_SECONDS"
                )
            cpu_start = time.process_time()
            last_fire = anchor + (fires_per_job - 1) * interval
            if sampler:
                sampler.began = anchor
            deadline = last_fire + JOB_DEFAULTS["misfire_grace_time"] + _DRAIN_SECONDS
            _wait_for(recorder, expected, deadline, sampler)
            cpu = time.process_time() - cpu_start
            _stop(scheduler)
            if not recorder.executed:
                raise BenchFailure("APScheduler 3 executed nothing")
            return _fire_result(recorder, jobs, interval, seconds, expected, cpu, count_history(engine))
        finally:
            _stop(scheduler)
            engine.dispose()


def fire_every_second(jobs: int = 1000, seconds: float = 30) -> FireResult:
    """``jobs`` interval jobs firing every second, all anchored at the same instant, for ``seconds`` seconds.

    This is the steady "many jobs, same second" load: every second the scheduler thread must load, submit
    and re-persist every job, and the listener must write one history row per run.
    """
    return _run_interval_jobs(jobs, 1.0, seconds)


def spread_every_second(jobs: int = 1000, seconds: float = 30) -> FireResult:
    """``jobs`` interval jobs firing every second, each at its own offset in the second."""
    return _run_interval_jobs(jobs, 1.0, seconds, spread=True)


def burst(jobs: int = 10_000) -> FireResult:
    """``jobs`` jobs due once, all on the same instant."""
    return _run_interval_jobs(jobs, 1.0, 1.0)


def soak(rate: int = 1000, seconds: float = 3600, window: float = 60) -> SoakResult:
    """``rate`` jobs every second, each at its own offset, for ``seconds``; sampled every ``window``."""
    sampler = Sampler(seconds, window)
    return soak_result(sampler, _run_interval_jobs(rate, 1.0, seconds, spread=True, sampler=sampler))


def fires_per_second(rate: int = 10_000, seconds: float = 10, interval: float = 1.0) -> FireResult:
    """A load of ``rate`` fires per second for ``seconds`` seconds; on time means at most 1 s late.

    The load is built as ``round(rate * interval)`` jobs each firing every ``interval`` seconds. The
    default, and the shape to compare with cronkeeper, is ``rate`` jobs every second: one load, submit
    and re-persist of a job per fire, as in :func:`fire_every_second`. APScheduler also accepts
    ``interval=0.1`` (rate/10 jobs every 0.1 s), but that load is easier for it and not comparable: once a
    scheduler pass takes longer than 0.1 s, each due job comes back with several run times at once
    (``coalesce=False``), so one unpickle, one UPDATE and one pool task serve several fires.
    """
    jobs = max(1, round(rate * interval))
    return _run_interval_jobs(jobs, interval, seconds)


def postgres_nodes(
    nodes: int = 3, seconds: float = 15, start_rate: int = 250, top_rate: int = 32_000
) -> Ladder:
    """The highest rate of fires one scheduler sustains on a PostgreSQL job store with 99.9 % on time.

    One process whatever ``nodes`` says: APScheduler 3 cannot share a job store between running
    schedulers (each would run every job), so one process is the most it can be given.
    """
    with postgres_server() as server:
        return climb(
            lambda rate: _run_interval_jobs(rate, 1.0, seconds, url=server.new_database()),
            nodes=1,
            seconds=seconds,
            start_rate=start_rate,
            top_rate=top_rate,
        )


def _tomorrow_trigger(i: int, base: datetime) -> Any:
    """Alternate cron and interval triggers whose first fire is at least a day away, spread over a day."""
    if i % 2:
        return IntervalTrigger(days=1, start_date=base + timedelta(minutes=(i // 2) % 1440), timezone=UTC)
    return CronTrigger(hour=(i // 2) % 24, minute=(i // 48) % 60, start_date=base, timezone=UTC)


def _add_tomorrow_jobs(scheduler: Any, jobs: int, time_budget: float | None) -> tuple[int, float]:
    """Add jobs one by one to the running scheduler until done or over budget; (added, wall seconds)."""
    base = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    started = time.perf_counter()
    added = 0
    for i in range(jobs):
        if time_budget is not None and time.perf_counter() - started > time_budget:
            break
        scheduler.add_job(_probe, _tomorrow_trigger(i, base), id=f"bulk-{i}")
        added += 1
    return added, time.perf_counter() - started


def bulk_add(jobs: int = 100_000, time_budget: float | None = 60.0, idle_window: float = 10.0) -> BulkResult:
    """Add ``jobs`` cron/interval jobs due tomorrow, then restart on the same file and idle.

    Jobs are added to a *running* scheduler: that is when ``add_job`` returns only after the job is in the
    database (on a stopped scheduler it merely queues in memory until ``start()``), which is the durability
    cronkeeper gives each add. If adding passes ``time_budget`` seconds the loop stops and ``add_seconds``
    is extrapolated linearly from the jobs added so far; the restart and idle figures then concern the
    ``jobs_added`` jobs actually stored. After the adds the scheduler is shut down and a new engine and
    scheduler are built on the same file: ``restart_ready_seconds`` runs until ``start()`` has returned and
    ``get_jobs()`` has answered (which loads every stored job), and the idle CPU is measured right after.
    """
    with _quiet_apscheduler(), tempfile.TemporaryDirectory(prefix="ck-aps3-") as tmp:
        path = Path(tmp) / "aps.db"
        engine = _make_engine(path)
        scheduler = _make_scheduler(engine)
        try:
            scheduler.start()
            added, measured = _add_tomorrow_jobs(scheduler, jobs, time_budget)
        finally:
            _stop(scheduler)
            engine.dispose()

        ready_start = time.perf_counter()
        engine = _make_engine(path)
        scheduler = _make_scheduler(engine)
        try:
            scheduler.start()
            loaded = len(scheduler.get_jobs())
            ready = time.perf_counter() - ready_start
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            time.sleep(idle_window)
            idle = 100.0 * (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
            idle_rss = psutil.Process().memory_info().rss / 2**20
        finally:
            _stop(scheduler)
            engine.dispose()

    extrapolated = added < jobs
    return BulkResult(
        jobs=jobs,
        jobs_added=added,
        add_seconds=measured * jobs / added if extrapolated and added else measured,
        add_seconds_measured=measured,
        extrapolated=extrapolated,
        idle_cpu_percent=idle,
        restart_ready_seconds=ready,
        restart_jobs_loaded=loaded,
        idle_rss_mb=idle_rss,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run all three scenarios; the defaults are small enough for a quick check on a laptop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=200, help="jobs for fire_every_second")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of fire_every_second")
    parser.add_argument("--rate", type=int, default=2000, help="fires per second for fires_per_second")
    parser.add_argument("--rate-seconds", type=float, default=3.0, help="duration of fires_per_second")
    parser.add_argument("--interval", type=float, default=1.0, help="job interval for fires_per_second")
    parser.add_argument("--bulk", type=int, default=5000, help="jobs for bulk_add")
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
