"""``cronkeeper exec``: a command run where it is, recorded as a run of a check-in job."""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import timedelta

from cronkeeper import Scheduler
from cronkeeper.models import RunStatus, TriggerSource
from tests.e2e.test_cli import CRONKEEPER, Cli, seed

CHECKIN_JOB = {"id": "nightly", "cron": "0 3 * * *", "checkin": True}


def test_exec_runs_the_command_passes_its_status_and_output_through_and_records_the_run(cli: Cli) -> None:
    seed(cli, CHECKIN_JOB)
    result = cli("exec", "nightly", "--", "sh", "-c", "echo exported 12 rows; exit 3")

    assert (result.returncode, result.stdout, result.stderr) == (3, "exported 12 rows\n", "")
    with Scheduler(cli.db_url, migrate=False) as reader:
        [run] = reader.runs(job_id="nightly")
        nodes = reader.status.nodes(now=reader.clock.now(), lease=reader.settings.lease)
    assert (run.status, run.exit_code, run.output) == (RunStatus.FAILED, 3, "exported 12 rows\n")
    assert run.trigger_source is TriggerSource.CHECKIN
    assert run.triggered_by == f"exec@{socket.gethostname()}"
    assert run.started_at is not None and run.finished_at is not None
    assert nodes == [], "exec runs no scheduler: it is no node of the status page"


def test_a_successful_command_is_a_succeeded_run(cli: Cli) -> None:
    seed(cli, CHECKIN_JOB)
    assert cli("exec", "nightly", "--", "true").returncode == 0
    with Scheduler(cli.db_url, migrate=False) as reader:
        assert [run.status for run in reader.runs(job_id="nightly")] == [RunStatus.SUCCEEDED]


def test_the_command_runs_even_when_the_run_cannot_be_recorded(cli: Cli) -> None:
    seed(cli, {"id": "ours", "cron": "0 3 * * *", "command": ["true"]})
    result = cli("exec", "ours", "--", "sh", "-c", "echo still ran; exit 4")
    assert (result.returncode, result.stdout) == (4, "still ran\n")
    assert result.stderr.startswith(
        "cronkeeper exec: not recording this run: job 'ours' is run by cronkeeper"
    )

    missing = cli("exec", "nightly", "--", "no-such-command-here")
    assert missing.returncode == 127
    assert "not recording this run: no job with id 'nightly'" in missing.stderr


def test_a_command_that_cannot_be_found_is_a_failed_run_with_status_127(cli: Cli) -> None:
    seed(cli, CHECKIN_JOB)
    assert cli("exec", "nightly", "--", "no-such-command-here").returncode == 127
    with Scheduler(cli.db_url, migrate=False) as reader:
        [run] = reader.runs(job_id="nightly")
    assert (run.status, run.exit_code) == (RunStatus.FAILED, 127)
    assert run.output == "cronkeeper exec: no-such-command-here: command not found\n"


def test_a_check_in_job_is_added_from_the_command_line_and_cannot_be_run_by_cronkeeper(cli: Cli) -> None:
    cli.ok("jobs", "add", "nightly", "--cron", "0 3 * * *", "--checkin")
    assert "(runs elsewhere: check-ins)" in cli.ok("jobs", "list")
    error = cli.fails(1, "jobs", "trigger", "nightly")
    assert "runs elsewhere and reports its runs" in error


def test_standard_error_stays_standard_error_and_both_are_recorded(cli: Cli) -> None:
    seed(cli, CHECKIN_JOB)
    result = cli("exec", "nightly", "--", "sh", "-c", "echo DATA; echo WARNING >&2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "DATA\n", "WARNING\n")
    with Scheduler(cli.db_url, migrate=False) as reader:
        [run] = reader.runs(job_id="nightly")
    assert sorted(run.output.split()) == ["DATA", "WARNING"]  # type: ignore[union-attr]


def test_a_reader_that_goes_away_stops_neither_the_command_nor_the_recording(cli: Cli) -> None:
    seed(cli, CHECKIN_JOB)
    piped = subprocess.run(
        f"{CRONKEEPER} exec nightly -- sh -c 'seq 1 200000; exit 5' | head -1; echo ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.stdout.split() == ["1", "5"], piped.stderr
    with Scheduler(cli.db_url, migrate=False) as reader:
        [run] = reader.runs(job_id="nightly")
    assert (run.status, run.exit_code) == (RunStatus.FAILED, 5)
    assert run.output is not None and run.output.rstrip().endswith("200000")


def test_the_command_runs_at_once_when_the_database_does_not_answer(cli: Cli) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never says a word
        port = silent.getsockname()[1]
        env = {**cli.env, "CRONKEEPER_DB": f"postgresql://cron@127.0.0.1:{port}/cron"}
        result = subprocess.run(
            [
                str(CRONKEEPER),
                "exec",
                "--record-timeout",
                "1",
                "nightly",
                "--",
                "sh",
                "-c",
                "echo ran; exit 2",
            ],
            cwd=cli.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert (result.returncode, result.stdout) == (2, "ran\n")
    assert "the database did not answer; this run is not recorded" in result.stderr


def test_exec_heartbeats_within_the_configured_lease(cli: Cli) -> None:
    seed(cli, CHECKIN_JOB)
    (cli.cwd / "cronkeeper.toml").write_text("[scheduler]\nheartbeat_interval = 0.5\nlease = 2\n")
    with Scheduler(cli.db_url, migrate=False) as watcher:
        lease = timedelta(seconds=2)
        result = subprocess.Popen(
            [str(CRONKEEPER), "exec", "nightly", "--", "sleep", "3"], cwd=cli.cwd, env=cli.env
        )
        deadline = time.monotonic() + 30
        while result.poll() is None:
            assert watcher.store.reap_lost(now=watcher.clock.now(), lease=lease) == []
            assert time.monotonic() < deadline
            time.sleep(0.2)
        [run] = watcher.runs(job_id="nightly")
    assert run.status is RunStatus.SUCCEEDED
