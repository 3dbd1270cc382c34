"""The dashboard and API over a large history: how fast do the pages people open most answer?

    python -m bench.history                 # 1,000,000 runs over 200 jobs
    python -m bench.history --small         # 50,000 runs: a quick check
    python -m bench.history --db FILE       # keep the filled database (filled once, reused after)

The database is filled directly (runs of the shapes the engine writes, with realistic statuses, durations and
short outputs), then the web app is served by uvicorn on a loopback port and each page is fetched over real
HTTP, one request at a time, and timed from the client.  APScheduler 3 keeps no run history and has no
dashboard, so there is nothing of it to measure here: the figures stand alone.
"""

from __future__ import annotations

import argparse
import gc
import random
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import uvicorn
from sqlalchemy import func, insert, select

from bench.compare import machine
from cronkeeper import Scheduler
from cronkeeper.models import Role
from cronkeeper.services.accounts import Actor
from cronkeeper.store.schema import runs
from cronkeeper.testing import sql_engine
from cronkeeper.web import create_app

REQUESTS = 200
WARMUP = 10
STATUSES = ["succeeded"] * 90 + ["failed"] * 6 + ["timed_out", "skipped", "missed", "cancelled"]
SOURCES = ["schedule"] * 95 + ["manual"] * 3 + ["retry", "api"]


@dataclass(frozen=True, slots=True)
class Timing:
    page: str
    p50_ms: float
    p95_ms: float
    p99_ms: float


def fill(scheduler: Scheduler, *, jobs: int, total_runs: int) -> None:
    """Jobs through the service (valid specs), runs straight into the table in large batches."""
    scheduler.add_jobs(
        {"id": f"job-{i:04d}", "cron": f"{i % 60} * * * *", "command": ["echo", str(i)], "tags": ["bench"]}
        for i in range(jobs)
    )
    rng = random.Random(7)
    per_job = total_runs // jobs
    # The history ends now, so that the windows the pages read (the last day, week, month) are full.
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=per_job)
    batch: list[dict[str, object]] = []
    with sql_engine(scheduler).begin() as conn:
        for n in range(per_job):
            for j in range(jobs):
                due = start + timedelta(hours=n, minutes=j % 60)
                duration = timedelta(seconds=rng.lognormvariate(0, 1))
                status = rng.choice(STATUSES)
                ran = status not in ("skipped", "missed")
                batch.append(
                    {
                        "job_id": f"job-{j:04d}",
                        "scheduled_for": due,
                        "attempt": 0,
                        "trigger_source": rng.choice(SOURCES),
                        "owner": "bench-node",
                        "status": status,
                        "due_at": due,
                        "queued_at": due,
                        "started_at": due + timedelta(milliseconds=3) if ran else None,
                        "finished_at": due + duration if ran else due,
                        "exit_code": (0 if status == "succeeded" else 1) if ran else None,
                        "output": f"processed {n} items\n" if ran else None,
                        "error": None if status == "succeeded" else f"{status} at step {n % 7}",
                    }
                )
                if len(batch) == 20_000:
                    conn.execute(insert(runs), batch)
                    batch.clear()
        if batch:
            conn.execute(insert(runs), batch)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(scheduler: Scheduler) -> Iterator[str]:
    app = create_app(scheduler)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    # As `cronkeeper serve` does once started: what is loaded by now lives as long as the process, and kept
    # out of the collector's full passes it no longer adds 60 ms pauses to a request now and then.
    gc.collect()
    gc.freeze()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def measure(client: httpx.Client, page: str, path: str) -> Timing:
    for _ in range(WARMUP):
        client.get(path).raise_for_status()
    samples = []
    for _ in range(REQUESTS):
        began = time.perf_counter()
        client.get(path).raise_for_status()
        samples.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(samples, n=100)
    return Timing(page, statistics.median(samples), cuts[94], cuts[98])


def arguments(description: str, *, jobs: int) -> argparse.Namespace:
    """The options every history benchmark takes: sizes, and a database file to keep."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=jobs)
    parser.add_argument("--small", action="store_true", help="50,000 runs")
    parser.add_argument("--db", type=Path, help="database file to fill once and reuse")
    return parser.parse_args()


@contextmanager
def filled(args: argparse.Namespace) -> Iterator[tuple[Scheduler, int]]:
    """A scheduler on a history of the size asked (filled unless the file given has it already), and that
    size."""
    total = 50_000 if args.small else args.runs
    with tempfile.TemporaryDirectory(prefix="ck-history-") as tmp:
        path = args.db or Path(tmp) / "history.db"
        scheduler = Scheduler(f"sqlite:///{path}")
        with sql_engine(scheduler).connect() as conn:
            present = int(conn.execute(select(func.count()).select_from(runs)).scalar_one())
        if present < total:
            began = time.perf_counter()
            fill(scheduler, jobs=args.jobs, total_runs=total)
            print(f"filled {total:,} runs over {args.jobs} jobs in {time.perf_counter() - began:.1f} s")
        try:
            yield scheduler, total
        finally:
            scheduler.close()


def main() -> None:
    args = arguments(__doc__.splitlines()[0], jobs=200)
    with filled(args) as (scheduler, total):
        report(scheduler, total)


def report(scheduler: Scheduler, total: int) -> None:
    accounts = scheduler.accounts
    token = accounts.create_token(f"bench-{time.time_ns()}", Role.VIEWER, actor=Actor("bench"))[1]
    with sql_engine(scheduler).connect() as conn:
        deep = int(conn.execute(select(func.min(runs.c.id))).scalar_one()) + total // 2
    pages = {
        "jobs page": "/",
        "job page (history, newest)": "/jobs/job-0007",
        "job page (history, middle)": f"/jobs/job-0007?before_id={deep}",
        "run page": f"/runs/{deep}",
        "timeline, last 24 h": "/timeline?window=24h",
        "timeline, last 7 days": "/timeline?window=7d",
        "upcoming fires": "/upcoming",
        "runs API, newest 50": "/api/runs?limit=50",
        "runs API, failed only": "/api/runs?limit=50&status=failed",
        "job runs API, middle": f"/api/jobs/job-0007/runs?limit=50&before_id={deep}",
    }
    headers = {"Authorization": f"Bearer {token}"}
    with served(scheduler) as url, httpx.Client(base_url=url, headers=headers) as client:
        timings = [measure(client, page, path) for page, path in pages.items()]
    print(f"\n== history with {total:,} runs; {machine()}")
    print(f"{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for timing in timings:
        print(f"{timing.page:32} {timing.p50_ms:8.1f} {timing.p95_ms:8.1f} {timing.p99_ms:8.1f}")


if __name__ == "__main__":
    main()
