"""examples/command_service: its cronkeeper.toml through a simulated day on a fake clock, then `cronkeeper
serve` and `cronkeeper jobs trigger` for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronkeeper import FakeClock, Run, RunStatus, Scheduler, TriggerSource
from cronkeeper.config import load_config
from cronkeeper.testing import run_until

EXAMPLE = Path(__file__).parents[2] / "examples" / "command_service"
CRONKEEPER = Path(sys.executable).with_name("cronkeeper")
DAY = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """What the service's environment would hold: the backup schedule, and where the scripts write."""
    return {
        "BACKUP_SCHEDULE": "30 1 * * *",
        "BACKUP_DIR": str(tmp_path / "backups"),
        "STATE_DIR": str(tmp_path / "state"),
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(DAY)


@pytest.fixture
def scheduler(
    tmp_path: Path, clock: FakeClock, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Scheduler]:
    """The toml's jobs in a scheduler on a fake clock, synchronised as `cronkeeper serve` does at start."""
    config = load_config(EXAMPLE / "cronkeeper.toml", environ)
    sched = Scheduler(
        f"sqlite:///{tmp_path / 'cronkeeper.db'}",
        clock=clock,
        timezone=config.timezone or "UTC",
        settings=config.settings,
    )
    report = sched.service.sync_jobs(config.jobs(), origin=config.origin)
    assert report.added == ["backup", "sync", "export"]
    monkeypatch.chdir(EXAMPLE)  # serve runs in this directory: the jobs' scripts are relative to it
    yield sched
    sched.close()


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def oldest_first(scheduler: Scheduler, job_id: str) -> list[Run]:
    return list(reversed(scheduler.runs(job_id=job_id, limit=100)))


def test_a_simulated_day_of_the_command_service(
    scheduler: Scheduler, clock: FakeClock, environ: dict[str, str]
) -> None:
    run_until(scheduler, clock, at(3, 59))
    # 03:59: bob starts an export by hand, and it hangs.
    scheduler.trigger("export", triggered_by="bob")
    scheduler.run_pending(wait=False)
    # 04:00: the nightly export is due while bob's still runs; then bob's is killed by its 1 s timeout.
    clock.set(at(4))
    scheduler.run_pending()
    run_until(scheduler, clock, DAY + timedelta(days=1, minutes=1))  # the retries of midnight's sync too

    backup = oldest_first(scheduler, "backup")
    assert [(run.scheduled_for, run.status) for run in backup] == [(at(1, 30), RunStatus.SUCCEEDED)]
    assert backup[0].output == f"wrote {environ['BACKUP_DIR']}/backup-run-{backup[0].id}.sql\n"
    assert (Path(environ["BACKUP_DIR"]) / f"backup-run-{backup[0].id}.sql").exists()

    by_hand, nightly = oldest_first(scheduler, "export")
    assert (by_hand.status, by_hand.trigger_source, by_hand.triggered_by) == (
        RunStatus.TIMED_OUT,
        TriggerSource.MANUAL,
        "bob",
    )
    assert by_hand.output == "exporting...\n"
    assert (nightly.status, nightly.scheduled_for) == (RunStatus.SKIPPED, at(4))
    assert nightly.error is not None and "overlap=forbid" in nightly.error

    sync = oldest_first(scheduler, "sync")
    assert sorted({run.scheduled_for for run in sync}) == [at(6), at(12), at(18), at(0) + timedelta(days=1)]
    for first, second, third in zip(sync[::3], sync[1::3], sync[2::3], strict=True):
        assert [run.status for run in (first, second, third)] == [
            RunStatus.FAILED,
            RunStatus.FAILED,
            RunStatus.SUCCEEDED,
        ]
        assert [run.attempt for run in (first, second, third)] == [0, 1, 2]
        assert [run.trigger_source for run in (first, second, third)] == [
            TriggerSource.SCHEDULE,
            TriggerSource.RETRY,
            TriggerSource.RETRY,
        ]
        assert (second.parent_run_id, third.parent_run_id) == (first.id, second.id)
        assert first.exit_code == 1
        assert first.output == "partner API did not answer (attempt 1)\n"
        assert third.output == "synced 42 records\n"
        # Exponential backoff: 10 s, then 20 s, each ±10% jitter.
        assert first.finished_at is not None and second.finished_at is not None
        assert 9 <= (second.due_at - first.finished_at).total_seconds() <= 11
        assert 18 <= (third.due_at - second.finished_at).total_seconds() <= 22


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_serve_runs_a_backup_triggered_from_the_cli_as_alice(tmp_path: Path, environ: dict[str, str]) -> None:
    db_url = f"sqlite:///{tmp_path / 'cronkeeper.db'}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("CRONKEEPER")}
    env.update(environ)
    log_path = tmp_path / "serve.log"
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [str(CRONKEEPER), "--db", db_url, "serve", "--no-web"],  # no dashboard: its port could be taken
            cwd=EXAMPLE,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as serve,
        Scheduler(db_url) as reader,
    ):
        try:
            wait_for(lambda: "cronkeeper serving" in log_path.read_text(), "serve to start")
            trigger = subprocess.run(
                [str(CRONKEEPER), "--db", db_url, "jobs", "trigger", "backup", "--as", "alice", "--json"],
                cwd=EXAMPLE,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            run_id = json.loads(trigger.stdout)["run_id"]
            wait_for(lambda: not reader.get_run(run_id).status.is_active, "the backup to finish")
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(timeout=30) == 0, log_path.read_text()
        finally:
            if serve.poll() is None:
                serve.kill()
        run = reader.get_run(run_id)
        assert (run.status, run.trigger_source, run.triggered_by) == (
            RunStatus.SUCCEEDED,
            TriggerSource.MANUAL,
            "alice",
        )
        assert (Path(environ["BACKUP_DIR"]) / f"backup-run-{run_id}.sql").exists()
        assert reader.get_job("backup").spec.trigger.describe().startswith("At 01:30")
