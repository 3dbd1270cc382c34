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
from cronkeeper.store.schema import jobs, nodes, runs
from cronkeeper.testing import sql_engine

_LEAD_SECONDS = 2.0
_DRAIN_SECONDS = 5.0


def probe() -> None:
    """The trivial job."""


def _settings() -> SchedulerSettings:
    return SchedulerSettings(workers=WORKER_THREADS)


# Only the bench's own jobs count: a ``serve`` also declares the built-in maintenance jobs (turned off for the
# bench, and filtered out all the same).
_BENCH_JOB = runs.c.job_id.like("fire-%")


def _executed_by_owner(scheduler: Scheduler) -> dict[str, int]:
    """Succeeded runs by the node that ran them (``host:pid:token``)."""
    with sql_engine(scheduler).connect() as conn:
        rows = conn.execute(
            select(runs.c.owner, func.count())
            .where(runs.c.status == RunStatus.SUCCEEDED.value, _BENCH_JOB)
            .group_by(runs.c.owner)
        ).all()
    return {str(owner): int(count) for owner, count in rows}


def _check_processes(
    children: list[subprocess.Popen[bytes]],
    logs: list[Path],
    executed: dict[int, int],
    heartbeats: dict[int, datetime],
) -> None:
    """Fail loudly unless every ``serve`` the bench started is still running, logged no error (they run at
    ``--log-level error``: any line is one), executed runs, and still beats (a node that hung halfway, its
    load taken over by the others, must not count as a node)."""
    now = datetime.now(UTC)
    for number, (child, log) in enumerate(zip(children, logs, strict=True), 1):
        said = log.read_text(errors="replace").strip()[-2000:]
        if child.poll() is not None:
            raise BenchFailure(
                f"serve process {number} (pid {child.pid}) exited with {child.returncode}: {said}"
            )
        if said:
            raise BenchFailure(f"serve process {number} (pid {child.pid}) logged errors: {said}")
        if not executed.get(child.pid):
            raise BenchFailure(f"serve process {number} (pid {child.pid}) executed nothing")
        beat = heartbeats.get(child.pid)
        if beat is None or now - beat > _HEARTBEAT_AGE:
            raise BenchFailure(f"serve process {number} (pid {child.pid}) stopped beating (last: {beat})")


# A running node beats every heartbeat interval (5 s), or up to a second later while runs are about to start.
_HEARTBEAT_AGE = SchedulerSettings().heartbeat_interval + timedelta(seconds=2)


def _heartbeats(scheduler: Scheduler) -> dict[int, datetime]:
    """The last heartbeat of each node, by pid."""
    with sql_engine(scheduler).connect() as conn:
        return {int(pid): at for pid, at in conn.execute(select(nodes.c.pid, nodes.c.heartbeat_at))}


def _by_pid(executed: dict[str, int]) -> dict[int, int]:
    by_pid: dict[int, int] = {}
    for owner, count in executed.items():
        pid = owner.split(":")[1] if owner.count(":") >= 2 else ""
        if pid.isdigit():
            by_pid[int(pid)] = by_pid.get(int(pid), 0) + count
    return by_pid


def _stop_processes(children: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """SIGTERM each ``serve`` and fail unless each ends cleanly (exit 0) within a minute; one that does
    not is killed."""
    for child in children:
        child.send_signal(signal.SIGTERM)
    problems = []
    for number, (child, log) in enumerate(zip(children, logs, strict=True), 1):
        try:
            code = child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            problems.append(f"serve process {number} did not stop within a minute of SIGTERM")
            continue
        if code != 0:
            said = log.read_text(errors="replace").strip()[-2000:]
            problems.append(f"serve process {number} stopped with exit code {code}: {said}")
    if problems:
        raise BenchFailure("; ".join(problems))


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
            last_fire = anchor + (fires_per_job - 1) * interval
            deadline = last_fire + 1 + _DRAIN_SECONDS
            if sampler:
                sampler.began = anchor
            # Nothing to count before the last fire is due: the bench's own reads stay out of the measured
            # process until then.
            while time.time() < last_fire:
                time.sleep(0.25)
                if sampler:
                    sampler.poll(lambda: _executed_runs(scheduler))
            while _finished_runs(scheduler) < expected and time.time() < deadline:
                time.sleep(0.25)
                if sampler:
                    sampler.poll(lambda: _executed_runs(scheduler))
            if sampler:
                sampler.close(lambda: _executed_runs(scheduler))
            cpu = time.process_time() - cpu_start
            scheduler.stop()
            result = _fire_result(scheduler, jobs, interval, seconds, expected, cpu)
            if not result.executed_fires:
                raise BenchFailure("the scheduler executed nothing")
            if scheduler.loop is not None and scheduler.loop.loop_errors:
                raise BenchFailure(f"the scheduler's loop failed {scheduler.loop.loop_errors} pass(es)")
            return result
        finally:
            scheduler.close()


_ENDED_NOT_RUN = [
    status.value
    for status in RunStatus
    if status not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED)
]


def _executed_runs(scheduler: Scheduler) -> int:
    """Runs that ended and succeeded: those that ended, less the few that did not run (missed, skipped,
    failed), which the status index counts cheaply; once a minute, for the soak's samples."""
    with sql_engine(scheduler).connect() as conn:
        not_run = conn.execute(
            select(func.count()).select_from(runs).where(runs.c.status.in_(_ENDED_NOT_RUN))
        ).scalar_one()
    return _finished_runs(scheduler) - int(not_run)


def _fire_result(
    scheduler: Scheduler,
    jobs: int,
    interval: float,
    seconds: float,
    expected: int,
    cpu: float,
    executors: dict[int, int] | None = None,
) -> FireResult:
    with sql_engine(scheduler).connect() as conn:
        rows = conn.execute(select(runs.c.status, runs.c.started_at, runs.c.due_at).where(_BENCH_JOB)).all()
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
        processes_executing=len(executors) if executors is not None else (1 if executed else 0),
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
        cpu_before, wall_before = sum(process.cpu_times()[:2]), time.perf_counter()
        time.sleep(idle_window)
        idle = 100.0 * (sum(process.cpu_times()[:2]) - cpu_before) / (time.perf_counter() - wall_before)
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
        ladder = climb(
            lambda rate: _on_fresh_database(server, rate, seconds, nodes),
            nodes=nodes,
            seconds=seconds,
            start_rate=start_rate,
            top_rate=top_rate,
        )
    if ladder.sustained_fires_per_second and ladder.nodes_executing_at_sustained < nodes:
        raise BenchFailure(
            f"only {ladder.nodes_executing_at_sustained} of {nodes} nodes executed runs at the rate they "
            f"sustained ({ladder.sustained_fires_per_second}/s): that is not a figure of {nodes} nodes"
        )
    return ladder


def postgres_one_node(seconds: float = 15, start_rate: int = 250, top_rate: int = 32_000, **_: int) -> Ladder:
    """:func:`postgres_nodes` with one node: the figure the several nodes are compared with."""
    return postgres_nodes(1, seconds, start_rate, top_rate)


def _on_fresh_database(server: PostgresServer, rate: int, seconds: float, nodes: int) -> FireResult:
    with tempfile.TemporaryDirectory(prefix="ck-bench-") as tmp:
        return _served(server.new_database(), Path(tmp), rate, seconds, nodes, each_must_execute=False)


def _served(
    url: str, folder: Path, rate: int, seconds: float, processes: int, *, each_must_execute: bool = True
) -> FireResult:
    """``rate`` jobs every second for ``seconds``, on ``url``, fired by ``processes`` `serve` processes;
    their logs go to ``folder``.  Fails the bench unless each of them ran to the end without an error and
    (``each_must_execute``) executed runs: at a light load one node may rightly claim every fire, so the
    ladder asks that only of the rate it reports (see :func:`postgres_nodes`)."""
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
    # No maintenance jobs: only the load is measured (their runs are filtered out all the same).
    config = folder / "bench.toml"
    config.write_text("[maintenance]\nenabled = false\n", encoding="utf-8")
    env = {**os.environ, "CRONKEEPER_DB": url}
    # No dashboard: each would want the same port, and only the scheduling is measured here.
    cronkeeper = str(Path(sys.executable).with_name("cronkeeper"))
    command = [cronkeeper, "--config", str(config), "serve", "--no-web", "--log-level", "error"]
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
        with Scheduler(url) as check:
            while time.time() < anchor - 0.2:
                time.sleep(0.05)
            if _nodes_up(check) < processes:
                raise BenchFailure(
                    f"only {_nodes_up(check)} of {processes} serve processes were up at the first fire"
                )
            cpu_start = sum(sum(p.cpu_times()[:2]) for p in watched)
            last_fire = anchor + fires_per_job - 1
            deadline = last_fire + 1 + _DRAIN_SECONDS
            while time.time() < last_fire:  # the database serves the nodes alone until the last fire is due
                time.sleep(0.25)
            while _unsettled(check) and time.time() < deadline:
                time.sleep(0.25)
            cpu = sum(sum(p.cpu_times()[:2]) for p in watched) - cpu_start
            executors = _by_pid(_executed_by_owner(check))
            required = executors if each_must_execute else {child.pid: 1 for child in children}
            _check_processes(children, logs, required, _heartbeats(check))
            result = _fire_result(check, rate, 1.0, seconds, expected, cpu, executors)
    finally:
        _stop_processes(children, logs)
    return result


def _nodes_up(scheduler: Scheduler) -> int:
    """Nodes that wrote a heartbeat: a ``serve`` is up once its loop made its first pass."""
    with sql_engine(scheduler).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(nodes)).scalar_one())


def _unsettled(scheduler: Scheduler) -> int:
    """Runs still active, and jobs whose last fire is not claimed yet (a job past its end has no next due
    time): two indexed counts, where counting ended runs would scan the table (and on PostgreSQL run ids
    have gaps, so the highest id does not count them either)."""
    with sql_engine(scheduler).connect() as conn:
        active = conn.execute(
            select(func.count()).select_from(runs).where(runs.c.status.in_(["queued", "running"]))
        ).scalar_one()
        due = conn.execute(
            select(func.count()).select_from(jobs).where(jobs.c.next_due_at.is_not(None))
        ).scalar_one()
    return int(active) + int(due)
