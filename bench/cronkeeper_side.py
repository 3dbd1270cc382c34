"""cronkeeper's side of the benchmarks: the same workloads as :mod:`bench.apscheduler3`, the same figures.

cronkeeper writes every run to its own history (a row inserted when the fire is claimed, updated when it
ends), so no listener is needed for durability.  Lateness is the run's ``started_at`` (taken by the worker
when the job starts) minus the instant it was due, read back from the database: the figures are what the
history says, not what a probe saw.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from sqlalchemy import func, select

from bench.failures import BenchFailure
from bench.figures import ON_TIME_SECONDS, WORKER_THREADS, BulkResult, FireResult, iso, percentile
from bench.ladder import Ladder, PostgresServer, climb, postgres_server
from bench.soak import Sampler, SoakResult, soak_result
from cronkeeper import RunStatus, Scheduler
from cronkeeper.settings import SchedulerSettings
from cronkeeper.store.schema import runs
from cronkeeper.testing import sql_engine

_LEAD_SECONDS = 2.0
_DRAIN_SECONDS = 5.0


def probe() -> None:
    """The trivial job."""


def _settings() -> SchedulerSettings:
    return SchedulerSettings(workers=WORKER_THREADS)


def _executed_by_owner(scheduler: Scheduler) -> dict[str, int]:
    """Succeeded runs by the node that ran them (``host:pid:token``)."""
    with sql_engine(scheduler).connect() as conn:
        rows = conn.execute(
            select(runs.c.owner, func.count())
            .where(runs.c.status == RunStatus.SUCCEEDED.value)
            .group_by(runs.c.owner)
        ).all()
    return {str(owner): int(count) for owner, count in rows}


def _check_processes(
    children: list[subprocess.Popen[bytes]], logs: list[Path], executed: dict[str, int]
) -> None:
    """Fail loudly unless every ``serve`` the bench started is still running and executed some runs."""
    by_pid: dict[int, int] = {}
    for owner, count in executed.items():
        pid = owner.split(":")[1] if owner.count(":") >= 2 else ""
        if pid.isdigit():
            by_pid[int(pid)] = by_pid.get(int(pid), 0) + count
    for number, (child, log) in enumerate(zip(children, logs, strict=True), 1):
        said = log.read_text(errors="replace").strip()[-2000:]
        if child.poll() is not None:
            raise BenchFailure(
                f"serve process {number} (pid {child.pid}) exited with {child.returncode}: {said}"
            )
        if not by_pid.get(child.pid):
            raise BenchFailure(f"serve process {number} (pid {child.pid}) executed nothing: {said}")


def _finished_runs(scheduler: Scheduler) -> int:
    """Runs that ended, told by two index lookups (the bench's runs are numbered without gaps): counting
    them by status would scan the table four times a second, in the process whose CPU is measured."""
    with sql_engine(scheduler).connect() as conn:
        highest = conn.execute(select(func.max(runs.c.id))).scalar() or 0
        active = conn.execute(
            select(func.count()).select_from(runs).where(runs.c.status.in_(["queued", "running"]))
        ).scalar_one()
    return int(highest) - int(active)


def _run_interval_jobs(
    jobs: int, interval: float, seconds: float, *, spread: bool = False, sampler: Sampler | None = None
) -> FireResult:
    """``jobs`` jobs every ``interval`` for ``seconds``: all on one instant, or each ``interval / jobs``
    after the one before when ``spread``; ``sampler`` is polled while the bench waits."""
    fires_per_job = max(1, round(seconds / interval))
    expected = jobs * fires_per_job
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        scheduler = Scheduler(f"sqlite:///{Path(tmp) / 'ck.db'}", settings=_settings())
        anchor = float(math.ceil(time.time() + _LEAD_SECONDS + jobs * 0.0001))
        scheduler.add_jobs(
            {
                "id": f"fire-{i}",
                "call": "bench.cronkeeper_side:probe",
                "every": interval,
                "start": iso(anchor + (offset := i * interval / jobs if spread else 0.0)),
                "end": iso(anchor + offset + (fires_per_job - 0.5) * interval),
                "misfire_grace": 1,
                "catchup": "skip",
            }
            for i in range(jobs)
        )
        try:
            scheduler.start()
            if time.time() > anchor - 0.5:
                raise RuntimeError(f"set-up of {jobs} jobs overran the common start time")
            cpu_start = time.process_time()
            deadline = anchor + (fires_per_job - 1) * interval + 1 + _DRAIN_SECONDS
            if sampler:
                sampler.began = anchor
            while _finished_runs(scheduler) < expected and time.time() < deadline:
                time.sleep(0.25)
                if sampler:
                    sampler.poll(lambda: _finished_runs(scheduler))
            cpu = time.process_time() - cpu_start
            scheduler.stop()
            result = _fire_result(scheduler, jobs, interval, seconds, expected, cpu)
            if not result.executed_fires:
                raise BenchFailure("the scheduler executed nothing")
            return result
        finally:
            scheduler.close()


def _fire_result(
    scheduler: Scheduler, jobs: int, interval: float, seconds: float, expected: int, cpu: float
) -> FireResult:
    with sql_engine(scheduler).connect() as conn:
        rows = conn.execute(select(runs.c.status, runs.c.started_at, runs.c.due_at)).all()
    lateness = sorted(
        (row.started_at - row.due_at).total_seconds()
        for row in rows
        if row.status == RunStatus.SUCCEEDED.value
    )
    executed = len(lateness)
    on_time = sum(1 for late in lateness if late <= ON_TIME_SECONDS)
    missed = sum(1 for row in rows if row.status == RunStatus.MISSED.value)
    skipped = sum(1 for row in rows if row.status == RunStatus.SKIPPED.value)
    errored = sum(1 for row in rows if row.status in ("failed", "lost", "timed_out"))
    return FireResult(
        jobs=jobs,
        interval_seconds=interval,
        seconds=float(seconds),
        expected_fires=expected,
        executed_fires=executed,
        missed_fires=missed,
        skipped_fires=skipped,
        errored_fires=errored,
        percent_executed=100.0 * executed / expected,
        percent_on_time=100.0 * on_time / expected,
        lateness_p50_ms=1000.0 * percentile(lateness, 50),
        lateness_p99_ms=1000.0 * percentile(lateness, 99),
        lateness_max_ms=1000.0 * lateness[-1] if lateness else math.nan,
        cpu_us_per_fire=1e6 * cpu / executed if executed else math.nan,
        history_rows=len(rows),
    )


def fire_every_second(jobs: int = 1000, seconds: float = 30) -> FireResult:
    """``jobs`` interval jobs firing every second, all anchored at the same instant."""
    return _run_interval_jobs(jobs, 1.0, seconds)


def spread_every_second(jobs: int = 1000, seconds: float = 30) -> FireResult:
    """``jobs`` interval jobs firing every second, each at its own offset in the second."""
    return _run_interval_jobs(jobs, 1.0, seconds, spread=True)


def burst(jobs: int = 10_000) -> FireResult:
    """``jobs`` jobs due once, all in the same second (on the same instant)."""
    return _run_interval_jobs(jobs, 1.0, 1.0)


def soak(rate: int = 1000, seconds: float = 3600, window: float = 60) -> SoakResult:
    """``rate`` jobs every second, each at its own offset, for ``seconds``; sampled every ``window``."""
    sampler = Sampler(seconds, window)
    return soak_result(sampler, _run_interval_jobs(rate, 1.0, seconds, spread=True, sampler=sampler))


def fires_per_second(rate: int = 10_000, seconds: float = 10, interval: float = 1.0) -> FireResult:
    """``round(rate * interval)`` jobs firing every ``interval`` seconds (see bench.apscheduler3)."""
    return _run_interval_jobs(max(1, round(rate * interval)), interval, seconds)


def bulk_add(jobs: int = 100_000, idle_window: float = 10.0) -> BulkResult:
    """Add ``jobs`` jobs due tomorrow in bulk; then idle CPU with nothing due, and time to ready after a
    restart (a new scheduler on the same file, started, and its first claim done)."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    definitions = [
        {
            "id": f"bulk-{i}",
            "call": "bench.cronkeeper_side:probe",
            **(
                {"cron": f"{i % 60} {tomorrow.hour} {tomorrow.day} {tomorrow.month} *"}
                if i % 2
                else {"every": "1d", "start": tomorrow.isoformat()}
            ),
        }
        for i in range(jobs)
    ]
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'ck.db'}"
        scheduler = Scheduler(url, settings=_settings())
        began = time.perf_counter()
        scheduler.add_jobs(definitions)
        add_seconds = time.perf_counter() - began
        del definitions  # the bench's own input, not the scheduler's memory
        gc.collect()
        scheduler.start()
        process = psutil.Process()
        cpu_before = sum(process.cpu_times()[:2])
        time.sleep(idle_window)
        idle = 100.0 * (sum(process.cpu_times()[:2]) - cpu_before) / idle_window
        idle_rss = process.memory_info().rss / 2**20
        scheduler.close()
        began = time.perf_counter()
        restarted = Scheduler(url, settings=_settings())
        restarted.start()
        assert restarted.loop is not None
        restarted.run_pending(wait=False)
        ready = time.perf_counter() - began
        loaded = len(restarted.jobs())
        restarted.close()
    return BulkResult(
        jobs=jobs,
        jobs_added=jobs,
        add_seconds=add_seconds,
        add_seconds_measured=add_seconds,
        extrapolated=False,
        idle_cpu_percent=idle,
        restart_ready_seconds=ready,
        restart_jobs_loaded=loaded,
        idle_rss_mb=idle_rss,
    )


def fires_per_second_processes(rate: int = 10_000, seconds: float = 10, processes: int = 2) -> FireResult:
    """The load of :func:`fires_per_second` served by ``processes`` `cronkeeper serve` processes on one
    SQLite file, as a deployment that needs more than one core would run it.  CPU is that of all of them."""
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        return _served(f"sqlite:///{Path(tmp) / 'ck.db'}", Path(tmp), rate, seconds, processes)


def postgres_nodes(
    nodes: int = 3, seconds: float = 15, start_rate: int = 250, top_rate: int = 32_000
) -> Ladder:
    """The highest rate of fires ``nodes`` `serve` processes sustain on one PostgreSQL database with
    99.9 % on time (bench.ladder)."""
    with postgres_server() as server:
        return climb(
            lambda rate: _on_fresh_database(server, rate, seconds, nodes),
            nodes=nodes,
            seconds=seconds,
            start_rate=start_rate,
            top_rate=top_rate,
        )


def postgres_one_node(seconds: float = 15, start_rate: int = 250, top_rate: int = 32_000, **_: int) -> Ladder:
    """:func:`postgres_nodes` with one node: the figure the several nodes are compared with."""
    return postgres_nodes(1, seconds, start_rate, top_rate)


def _on_fresh_database(server: PostgresServer, rate: int, seconds: float, nodes: int) -> FireResult:
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        return _served(server.new_database(), Path(tmp), rate, seconds, nodes)


def _served(url: str, folder: Path, rate: int, seconds: float, processes: int) -> FireResult:
    """``rate`` jobs every second for ``seconds``, on ``url``, fired by ``processes`` `serve` processes;
    their logs go to ``folder``.  Fails the bench unless each of them ran to the end and executed runs."""
    fires_per_job = max(1, round(seconds))
    expected = rate * fires_per_job
    anchor = float(math.ceil(time.time() + 4 + rate * 0.0002))
    start = datetime.fromtimestamp(anchor, UTC)
    end = start + timedelta(seconds=fires_per_job - 0.5)
    with Scheduler(url) as setup:
        setup.add_jobs(
            {
                "id": f"fire-{i}",
                "call": "bench.cronkeeper_side:probe",
                "every": 1,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "misfire_grace": 1,
                "catchup": "skip",
            }
            for i in range(rate)
        )
    env = {**os.environ, "CRONKEEPER_DB": url}
    # No dashboard: each would want the same port, and only the scheduling is measured here.
    command = [str(Path(sys.executable).with_name("cronkeeper")), "serve", "--no-web", "--log-level", "error"]
    root = Path(__file__).resolve().parent.parent
    logs = [folder / f"serve-{n}.log" for n in range(processes)]
    children = []
    for log in logs:
        with log.open("wb") as out:
            children.append(
                subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
            )
    try:
        watched = [psutil.Process(child.pid) for child in children]
        while time.time() < anchor - 0.2:
            time.sleep(0.05)
        cpu_start = sum(sum(p.cpu_times()[:2]) for p in watched)
        with Scheduler(url) as check:
            deadline = anchor + fires_per_job + _DRAIN_SECONDS
            # Counted by status: the bench's own process is not measured here, and on PostgreSQL run ids
            # have gaps (a claim that loses ON CONFLICT still takes a number).
            while _ended_runs(check) < expected and time.time() < deadline:
                time.sleep(0.25)
            _check_processes(children, logs, _executed_by_owner(check))
            cpu = sum(sum(p.cpu_times()[:2]) for p in watched) - cpu_start
            return _fire_result(check, rate, 1.0, seconds, expected, cpu)
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(60)


def _ended_runs(scheduler: Scheduler) -> int:
    with sql_engine(scheduler).connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(runs).where(runs.c.status.not_in(["queued", "running"]))
            ).scalar_one()
        )
