"""What must not break the scheduler or lose a run: odd processes, odd outputs, odd modules, stops."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler, current_run
from cronkeeper.config import expand_job
from cronkeeper.exceptions import StoreError, ValidationError
from cronkeeper.executors.output import TailBuffer
from cronkeeper.executors.process import run_process
from cronkeeper.settings import SchedulerSettings
from cronkeeper.testing import advance
from tests.e2e.test_cli import wait_for
from tests.integration.test_engine import is_alive
from tests.sinks import wait_until

FAST = SchedulerSettings(
    workers=4, heartbeat_interval=timedelta(seconds=0.2), lease=timedelta(seconds=1), poll_interval=0.1
)


def test_a_command_that_closes_its_output_is_still_held_to_its_timeout() -> None:
    import threading

    began = time.monotonic()
    outcome = run_process(
        ["sh", "-c", "exec >/dev/null 2>&1; sleep 30"],
        env=None,
        cwd=None,
        timeout=timedelta(seconds=0.5),
        output=TailBuffer(100),
        cancel=threading.Event(),
    )
    assert outcome.timed_out
    assert time.monotonic() - began < 10


def test_a_run_cancelled_while_waiting_for_a_worker_never_runs(
    make_scheduler: object, clock: FakeClock, db_url: str, tmp_path: Path
) -> None:
    scheduler = Scheduler(db_url, clock=clock, settings=SchedulerSettings(workers=1))
    try:
        scheduler.add_job("tests.jobs:sleep", id="busy", every="1h", kwargs={"seconds": 1})
        marker = tmp_path / "ran"
        scheduler.add_job("tests.jobs:touch", id="victim", every="1h", kwargs={"path": str(marker)})
        clock.advance(timedelta(hours=1))
        scheduler.run_pending(wait=False)
        victim = scheduler.runs(job_id="victim")[0]
        scheduler.cancel(victim.id)
        assert scheduler.loop is not None
        scheduler.loop.drain(5)
        assert scheduler.get_run(victim.id).status is RunStatus.CANCELLED
        assert not marker.exists()
    finally:
        scheduler.close()


def test_a_thread_jobs_timeout_counts_from_its_start_not_its_queueing(db_url: str, clock: FakeClock) -> None:
    scheduler = Scheduler(db_url, clock=clock, settings=SchedulerSettings(workers=1))
    try:
        scheduler.add_job("tests.jobs:sleep", id="first", every="1h", kwargs={"seconds": 0.6})
        scheduler.add_job(
            "tests.jobs:sleep", id="second", every="1h", timeout="0.5s", kwargs={"seconds": 0.1}
        )
        advance(scheduler, clock, timedelta(hours=1))
        assert scheduler.runs(job_id="second")[0].status is RunStatus.SUCCEEDED
    finally:
        scheduler.close()


def test_a_stopping_scheduler_keeps_its_heartbeat_while_runs_finish(db_url: str) -> None:
    scheduler = Scheduler(db_url, settings=FAST)
    reaper = Scheduler(db_url, settings=FAST)
    try:
        scheduler.add_job(id="slow", cron="0 0 1 1 *", command=["sleep", "2"])
        scheduler.start()
        run_id = scheduler.trigger("slow")
        deadline = time.monotonic() + 10
        while scheduler.get_run(run_id).status is not RunStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.05)
        reaper.start()  # only now: started earlier, it could claim the triggered run itself
        scheduler.stop(wait=True, timeout=10)  # longer than the lease: a silent node would be declared dead
        assert scheduler.get_run(run_id).status is RunStatus.SUCCEEDED
    finally:
        reaper.close()
        scheduler.close()


def test_output_with_nul_bytes_and_nan_results_are_stored(any_db_url: str) -> None:
    clock = FakeClock("2026-03-02T08:00:00+00:00")
    with Scheduler(any_db_url, clock=clock) as scheduler:
        scheduler.add_job(id="nul", every="1h", command=["printf", "a\\000b"])
        scheduler.add_job("tests.jobs:not_a_number", id="nan", every="1h")
        advance(scheduler, clock, timedelta(hours=2))
        nul = scheduler.runs(job_id="nul")
        assert [run.status for run in nul] == [RunStatus.SUCCEEDED] * 2
        assert nul[0].output == "a\ufffdb"
        assert scheduler.runs(job_id="nan")[0].result == {"value": "{'ratio': nan}"}


def test_a_module_that_exits_on_import_fails_the_run_not_the_scheduler(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.add_job("tests.exits_on_import:job", id="exits", every="1h")
    advance(scheduler, clock, timedelta(hours=2))
    runs = scheduler.runs(job_id="exits")
    assert [run.status for run in runs] == [RunStatus.FAILED] * 2
    assert runs[0].error is not None and "SystemExit" in runs[0].error


def test_a_declared_one_off_in_the_past_is_refused_before_anything_is_written(scheduler: Scheduler) -> None:
    declared = [
        {"id": "fine", "every": "1h", "command": "true"},
        {"id": "late", "at": "2020-01-01T00:00:00+00:00", "command": "true"},
    ]
    with pytest.raises(ValidationError) as excinfo:
        scheduler.service.sync_jobs(declared, origin="config")
    assert excinfo.value.field == "at"
    assert scheduler.jobs() == []


def test_an_edited_one_off_that_already_ran_stays_done(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job(id="once", at=(clock.now() + timedelta(minutes=5)).isoformat(), command="true")
    advance(scheduler, clock, timedelta(hours=1))
    job = scheduler.edit("once", description="ran already")
    assert job.next_due_at is None


def test_substituted_values_in_a_shell_command_stay_one_word() -> None:
    table = {"id": "x", "every": "1h", "shell": True, "command": "echo ${NAME}"}
    expanded = expand_job(table, {"NAME": "x; rm -rf /"}, "jobs[0]")
    assert expanded["command"] == "echo 'x; rm -rf /'"


def test_jobs_do_not_inherit_the_database_url(
    scheduler: Scheduler, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRONKEEPER_DB", "postgresql://user:secret@db/app")
    scheduler.add_job(id="env", every="1h", command=["sh", "-c", "echo ${CRONKEEPER_DB:-unset}"])
    advance(scheduler, clock, timedelta(hours=1))
    assert scheduler.runs(job_id="env")[0].output == "unset\n"
    assert os.environ["CRONKEEPER_DB"]  # the scheduler's own environment is untouched


def test_an_isolated_job_dies_with_a_scheduler_killed_by_sigkill(tmp_path: Path) -> None:
    """kill -9 of the scheduler process must not leave its isolated job running, re-parented to init, where
    a restarted node could run the job beside it."""
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import time
        from cronkeeper import Scheduler
        sched = Scheduler("sqlite:///{tmp_path / "x.db"}")
        sched.add_job("tests.jobs:write_pid_and_sleep", id="long", every="1h", isolate=True,
                      args=[{str(pid_file)!r}, 60])
        sched.start()
        sched.trigger("long")
        time.sleep(60)
        """
    )
    scheduler = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", "the isolated job to start")
        child = int(pid_file.read_text())
        assert psutil.Process(child).ppid() == scheduler.pid
        scheduler.kill()
        scheduler.wait(10)
        wait_for(lambda: not is_alive(child), "the isolated job to end with its scheduler", 10)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()


def test_a_command_dies_with_a_scheduler_killed_by_sigkill(tmp_path: Path) -> None:
    """kill -9 of the scheduler must not leave its command running, re-parented to init, where a restarted
    node could run the job beside it."""
    if shutil.which("setpriv") is None:
        message = "setpriv (Debian package util-linux) ties a command to its scheduler"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    pid_file = tmp_path / "command.pid"
    script = textwrap.dedent(
        f"""
        import time
        from cronkeeper import Scheduler
        sched = Scheduler("sqlite:///{tmp_path / "x.db"}")
        sched.add_job(id="long", every="1h", command=["sh", "-c", "echo $$ > {pid_file}; exec sleep 60"])
        sched.start()
        sched.trigger("long")
        time.sleep(60)
        """
    )
    scheduler = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", "the command to start")
        command = int(pid_file.read_text())
        assert psutil.Process(command).ppid() == scheduler.pid
        scheduler.kill()
        scheduler.wait(10)
        wait_for(lambda: not is_alive(command), "the command to end with its scheduler", 10)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()


def test_a_command_that_does_not_exist_fails_naming_it(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job(id="typo", every="1h", command=["no-such-program-here", "--flag"])
    advance(scheduler, clock, timedelta(hours=1))
    [run] = scheduler.runs(job_id="typo")
    assert run.status == "failed"
    assert run.error == "FileNotFoundError: [Errno 2] No such file or directory: 'no-such-program-here'"


def test_a_node_of_the_same_host_ends_what_a_dead_schedulers_run_left_running(tmp_path: Path) -> None:
    """The command itself dies with its scheduler; a process it started outlives both, until the node that
    finds the run lost ends it."""
    leftover_file = tmp_path / "leftover.pid"
    db = tmp_path / "x.db"
    script = textwrap.dedent(
        f"""
        import time
        from cronkeeper import Scheduler
        sched = Scheduler("sqlite:///{db}")
        command = ["sh", "-c", "sleep 60 & echo $! > {leftover_file}; wait"]
        sched.add_job(id="long", every="1h", command=command)
        sched.start()
        sched.trigger("long")
        time.sleep(60)
        """
    )
    doomed = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    try:
        wait_for(lambda: leftover_file.exists() and leftover_file.read_text().strip() != "", "the command")
        leftover = int(leftover_file.read_text())
        doomed.kill()
        doomed.wait(10)
        assert is_alive(leftover), "the command's child outlives its scheduler"
        fast = SchedulerSettings(lease=timedelta(seconds=1), heartbeat_interval=timedelta(seconds=0.2))
        with Scheduler(f"sqlite:///{db}", settings=fast) as survivor:
            survivor.start()
            wait_for(
                lambda: not is_alive(leftover), "the node that finds the run lost to end its leftovers", 15
            )
            [run] = survivor.runs(job_id="long")
        assert run.status == "lost"
    finally:
        if doomed.poll() is None:
            doomed.kill()


def test_a_database_outage_is_logged_when_it_begins_and_ends_not_at_every_retry(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = Scheduler(db_url, settings=SchedulerSettings(retry_store_after=0.02))
    failures = [0]
    next_due_at = scheduler.store.next_due_at

    def away(*args: Any, **kwargs: Any) -> Any:
        if failures[0] < 20:
            failures[0] += 1
            raise StoreError("database read failed: connection refused\n\tIs the server running?")
        return next_due_at(*args, **kwargs)

    monkeypatch.setattr(scheduler.store, "next_due_at", away)
    caplog.set_level(logging.INFO, logger="cronkeeper.engine.loop")
    try:
        scheduler.start()
        wait_until(lambda: failures[0] >= 20 and "reachable again" in caplog.text)
    finally:
        scheduler.close()
    lines = [record.getMessage() for record in caplog.records if record.name == "cronkeeper.engine.loop"]
    unavailable = [line for line in lines if line.startswith("database unavailable")]
    assert len(unavailable) == 1 and "connection refused Is the server running?" in unavailable[0]
    assert "\n" not in unavailable[0]
    assert any(line.startswith("database reachable again after") for line in lines)


STARTED: list[str] = []


def begun(runs: int) -> bool:
    return len(STARTED) == runs


def note_start() -> None:
    run = current_run()
    assert run is not None
    STARTED.append(run.job_id)


def test_vetting_reads_failing_start_due_runs_as_claimed_and_log_once(
    make_scheduler: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database fails the reads that check held runs against their jobs (the connection went away
    after the claim): every run still starts, on time, and the failure is one line, not one per fire."""
    scheduler: Scheduler = make_scheduler()
    due = clock.now() + timedelta(minutes=1)
    fires = [due + timedelta(milliseconds=10 * index) for index in range(20)]
    for index, fire in enumerate(fires):
        scheduler.add_job("tests.integration.test_robustness:note_start", id=f"job-{index}", at=fire)
    scheduler.start()
    loop = scheduler.loop
    assert loop is not None
    clock.set(due - timedelta(seconds=0.3))
    wait_until(lambda: len(loop.dispatcher.held_job_ids(due + timedelta(seconds=1))) == 20)

    def away(*_args: Any, **_kwargs: Any) -> Any:
        raise StoreError("database read failed: connection refused")

    monkeypatch.setattr(scheduler.store, "job_versions", away)
    caplog.set_level(logging.WARNING, logger="cronkeeper.engine.vetting")

    STARTED.clear()
    for index, fire in enumerate(fires):
        clock.set(fire)
        # Until the run has begun: its start is stamped by the worker, on the clock as it is then.
        wait_until(functools.partial(begun, index + 1))
    monkeypatch.undo()
    scheduler.stop()
    assert sorted(run.status for run in scheduler.runs()) == [RunStatus.SUCCEEDED] * 20
    assert all(run.started_at == run.due_at for run in scheduler.runs())
    warnings = [record.getMessage() for record in caplog.records if record.name.endswith(".vetting")]
    assert len(warnings) == 1 and "connection refused" in warnings[0], warnings
