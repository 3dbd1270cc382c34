"""Two real `cronkeeper serve` processes on one SQLite file: every fire runs exactly once."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cronkeeper import RunStatus, Scheduler
from cronkeeper.planning import is_overlap_skip
from tests.sinks import wait_until

JOBS = 20
SERVE_SECONDS = 4.0


def serve(db_url: str, cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CRONKEEPER_DB": db_url}
    command = Path(sys.executable).with_name("cronkeeper")
    return subprocess.Popen(
        [str(command), "serve", "--no-web", "--log-level", "warning"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_two_serve_processes_run_every_fire_exactly_once(tmp_path: Path, db_url: str) -> None:
    ledger = tmp_path / "ledger"
    # Small claim batches make the two processes take turns, so their claims really contend; the built-in
    # maintenance jobs stay out of the count.
    config = "[scheduler]\nbatch_size = 2\n\n[maintenance]\nenabled = false\n"
    (tmp_path / "cronkeeper.toml").write_text(config, encoding="utf-8")
    with Scheduler(db_url) as setup:
        for index in range(JOBS):
            setup.add_job(
                id=f"job-{index}", every="1s", command=["sh", "-c", f'echo "$CRONKEEPER_RUN_ID" >> {ledger}']
            )
    processes = [serve(db_url, tmp_path) for _ in range(2)]
    with Scheduler(db_url) as watch:
        # A busy machine may start one process seconds after the other: count from when both claim.
        wait_until(lambda: len({run.owner for run in watch.runs(limit=200)} - {None}) == 2, timeout=60)
    time.sleep(SERVE_SECONDS)
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr.decode()

    with Scheduler(db_url) as check:
        runs = check.runs(limit=1000)
    executed = ledger.read_text().split()
    assert len(executed) == len(set(executed)), "a run executed twice"
    succeeded = [run for run in runs if run.status is RunStatus.SUCCEEDED]
    unrecorded = [run_id for run_id in executed if int(run_id) not in {run.id for run in succeeded}]
    assert sorted(map(int, executed)) == sorted(run.id for run in succeeded), (
        f"executed but not recorded as succeeded: {unrecorded}"
    )
    # A machine slow to start the processes (more than a second after the jobs were added) coalesces the
    # fires due meanwhile into the newest, recording the others missed: a record, never a run.
    missed = [run for run in runs if run.status is RunStatus.MISSED]
    assert all(run.started_at is None and (run.error or "").startswith("missed") for run in missed)
    # A machine so loaded that a second's `sh` was not yet recorded ended when the next fire came makes the
    # overlap policy skip that fire: a record, never a run either.
    skipped = [run for run in runs if run.status is RunStatus.SKIPPED]
    assert all(run.started_at is None and is_overlap_skip(run.error) for run in skipped)
    assert {run.status for run in runs} <= {
        RunStatus.SUCCEEDED,
        RunStatus.QUEUED,
        RunStatus.MISSED,
        RunStatus.SKIPPED,
    }
    # Fires claimed ahead of time but not due before the stop are handed back for the next process.
    assert all(run.owner is None for run in runs if run.status is RunStatus.QUEUED)
    per_job = collections.Counter(run.job_id for run in runs)
    assert len(per_job) == JOBS
    assert min(per_job.values()) >= SERVE_SECONDS - 2
    owners = collections.Counter(run.owner for run in runs if run.owner is not None)
    assert len(owners) == 2, f"both processes should have claimed fires: {owners}"
