"""The physical limit a scheduler on SQLite runs against: how many run rows SQLite itself inserts and then
finishes per second, in batches, with no scheduler at all.

The rows, the table (cronkeeper's own ``ck_runs``, with its indexes) and the connection settings (WAL,
``synchronous=NORMAL``, one ``BEGIN IMMEDIATE`` transaction per batch) are those of cronkeeper's claims and
outcome writes; the statements are plain ``executemany`` calls of the sqlite3 module.  A scheduler's
fires per second divided by this rate says how much of the machine's SQLite it uses.

A claim also advances each job's next fire (``UPDATE ck_jobs``), so a fire's whole write is three statements;
:func:`fire_writes_per_second` measures all three, and its inverse is the floor under any scheduler's CPU per
fire on this database: SQLite's own work, with no planning, no thread and no job run.

    python -m bench.sqlite_limit     # 200,000 runs in batches of 500, without and with the jobs' advance
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cronkeeper import Scheduler

_INSERT = (
    "INSERT INTO ck_runs (job_id, scheduled_for, attempt, trigger_source, owner, status, due_at, queued_at) "
    "VALUES (?, ?, 0, 'schedule', 'limit', 'queued', ?, ?)"
)
_ADVANCE = "UPDATE ck_jobs SET next_fire_at = ?, next_run_at = ? WHERE id = ?"
_FINISH = (
    "UPDATE ck_runs SET status = 'succeeded', started_at = ?, finished_at = ?, exit_code = 0 "
    "WHERE id = ? AND owner = 'limit' AND status IN ('queued', 'running')"
)


def _text(instant: datetime) -> str:
    return instant.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def runs_per_second(runs: int = 200_000, batch: int = 500, jobs: int = 10_000) -> float:
    """Runs inserted and finished per second: each batch inserted in one transaction, then finished in
    another, as a claim and an outcome write do."""
    return _rate(runs, batch, jobs, advance=False)


def fire_writes_per_second(runs: int = 200_000, batch: int = 500, jobs: int = 10_000) -> float:
    """:func:`runs_per_second` with each run's job advanced to its next fire in the insert's transaction, as
    a claim does: every row a fire writes, and nothing else."""
    return _rate(runs, batch, jobs, advance=True)


def _rate(runs: int, batch: int, jobs: int, *, advance: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="ck-limit-") as tmp:
        path = Path(tmp) / "limit.db"
        start = datetime(2026, 1, 1, tzinfo=UTC)
        scheduler = Scheduler(f"sqlite:///{path}")  # cronkeeper's schema, indexes included
        if advance:
            scheduler.add_jobs(
                {
                    "id": f"job-{n}",
                    "call": "bench.cronkeeper_side:probe",
                    "every": 1,
                    "start": start.isoformat(),
                }
                for n in range(jobs)
            )
        scheduler.close()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        began = time.perf_counter()
        for first in range(0, runs, batch):
            rows = []
            advances = []
            for n in range(first, min(first + batch, runs)):
                due = _text(start + timedelta(seconds=n // jobs))
                rows.append((f"job-{n % jobs}", due, due, due))
                if advance:
                    following = _text(start + timedelta(seconds=n // jobs + 1))
                    advances.append((following, following, f"job-{n % jobs}"))
            conn.execute("BEGIN IMMEDIATE")
            if advances:
                conn.executemany(_ADVANCE, advances)
            cursor = conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
            last = cursor.lastrowid or 0
            ids = range(last - len(rows) + 1, last + 1)
            done = _text(datetime.now(UTC))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_FINISH, [(done, done, run_id) for run_id in ids])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - began
        conn.close()
    return runs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    rate = runs_per_second(args.runs, args.batch)
    print(f"{rate:,.0f} runs/s inserted and finished in batches of {args.batch}")
    fires = fire_writes_per_second(args.runs, args.batch)
    print(
        f"{fires:,.0f} fires/s with each job advanced too: {1e6 / fires:.1f} µs of SQLite per fire, "
        "the floor under a scheduler's CPU per fire"
    )


if __name__ == "__main__":
    main()
