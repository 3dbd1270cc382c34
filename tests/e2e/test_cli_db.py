"""``cronkeeper db backup``, ``restore`` and ``prune``, and the built-in jobs ``serve`` declares, run for real
in subprocesses against a SQLite file."""

from __future__ import annotations

import re
import resource
import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from cronkeeper import Scheduler
from cronkeeper.store.schema import runs
from cronkeeper.testing import sql_engine
from tests.e2e.test_cli import CRONKEEPER, Cli, make_cli, seed, serve

JOB = {"id": "report", "every": "1h", "command": ["echo", "hi"]}
BACKUP_LINE = re.compile(r"(?P<path>/\S+\.sqlite3) \((?P<size>[\d,]+) bytes\)\n")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def job_ids(cli: Cli) -> list[str]:
    return [job["id"] for job in cli.json("jobs", "list")]


def add_history(cli: Cli, count: int, *, days_ago: int = 200) -> None:
    """``count`` ended runs of the job, one an hour from ``days_ago`` days back."""
    start = datetime.now(UTC) - timedelta(days=days_ago)
    with Scheduler(cli.db_url) as scheduler, sql_engine(scheduler).begin() as conn:
        conn.execute(
            insert(runs),
            [
                {
                    "job_id": JOB["id"],
                    "scheduled_for": start + timedelta(hours=n),
                    "trigger_source": "schedule",
                    "status": "succeeded",
                    "due_at": start + timedelta(hours=n),
                    "queued_at": start + timedelta(hours=n),
                    "output": "hi\n" * 100,
                }
                for n in range(count)
            ],
        )


def test_db_backup_writes_a_checked_copy_beside_the_database_that_restore_brings_back(cli: Cli) -> None:
    seed(cli, JOB)

    made = BACKUP_LINE.fullmatch(cli.ok("db", "backup"))
    assert made, "one line: the path and the size"
    path = Path(made["path"])
    assert path.parent == cli.cwd / "backups"
    assert path.stat().st_size == int(made["size"].replace(",", ""))

    cli.ok("jobs", "remove", "report", "--yes")
    restored = cli.ok("db", "restore", str(path), "--yes")

    assert restored == f"restored sqlite:///{cli.cwd / 'x.db'} from {path}\n"
    assert job_ids(cli) == ["report"]


def test_db_backup_to_a_file_or_a_folder_and_keep_rotates_that_folder(cli: Cli) -> None:
    seed(cli, JOB)

    to_file = cli.ok("db", "backup", "copy.sqlite3")
    rotated = [cli.ok("db", "backup", "saved", "--keep", "1") for _ in range(2)]

    assert to_file.startswith(f"{cli.cwd / 'copy.sqlite3'} (")
    assert "removed " in rotated[1]
    assert len(list((cli.cwd / "saved").iterdir())) == 1


def test_db_restore_is_refused_while_a_scheduler_runs_on_the_database(cli: Cli) -> None:
    seed(cli, JOB)
    backup = cli.cwd / "copy.sqlite3"
    cli.ok("db", "backup", str(backup))
    cli.ok("jobs", "remove", "report", "--yes")
    with Scheduler(cli.db_url) as scheduler:
        now = datetime.now(UTC)
        scheduler.store.heartbeat(owner="live-node", now=now, hostname=socket.gethostname(), pid=4242)

    error = cli.fails(1, "db", "restore", str(backup), "--yes")

    assert error.startswith("error: a scheduler is running on this database (live-node (pid 4242 on ")
    assert error.endswith("stop it before restoring\n")
    assert job_ids(cli) == []


def test_db_restore_of_a_missing_or_damaged_file_is_one_clear_line_and_changes_nothing(cli: Cli) -> None:
    seed(cli, JOB)
    add_history(cli, 300)
    backup = cli.cwd / "copy.sqlite3"
    cli.ok("db", "backup", str(backup))
    data = bytearray(backup.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 8192] = b"\x00\xff" * 4096
    backup.write_bytes(bytes(data))
    cli.ok("jobs", "remove", "report", "--yes")

    missing = cli.fails(2, "db", "restore", "nowhere.sqlite3", "--yes")
    damaged = cli.fails(1, "db", "restore", str(backup), "--yes")

    assert missing == "error: path: nowhere.sqlite3 does not exist\n"
    assert re.match(f"error: {backup} is (damaged|not a sound SQLite database): ", damaged), damaged
    assert job_ids(cli) == []


def test_db_prune_counts_on_a_dry_run_deletes_on_demand_and_refuses_bad_input(cli: Cli) -> None:
    seed(cli, JOB)
    add_history(cli, 50)

    dry = cli.json("db", "prune", "--dry-run")
    bad = cli.fails(2, "db", "prune", "--older-than", "soon")
    done = cli.ok("db", "prune", "--older-than", "400d", "--keep", "10")

    assert dry == {
        "dry_run": True,
        "deleted": {
            "runs": 49,  # 200 days old, all but the job's latest
            "audit_events": 0,
            "alerts": 0,
            "incidents": 0,
            "sessions": 0,
            "idempotency_keys": 0,
            "login_attempts": 0,
            "nodes": 0,
        },
    }
    assert bad.startswith("error: older_than: 'soon' is not a duration")
    assert done.startswith("deleted 40 runs, 0 audit events, ")
    assert len(cli.json("runs", "list", "--limit", "100")) == 10


def test_a_backup_that_runs_out_of_space_fails_and_leaves_no_file(cli: Cli) -> None:
    seed(cli, JOB)
    add_history(cli, 500)
    limit = 64 * 1024  # bytes: past this, every write fails as on a full disk

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [str(CRONKEEPER), "db", "backup", "full"],
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=small_disk,  # the only way to give the child a file size limit of its own
        timeout=60,
    )

    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: the backup of ")
    assert list((cli.cwd / "full").iterdir()) == []


def test_serve_declares_the_built_in_jobs_and_turning_maintenance_off_disables_them(cli: Cli) -> None:
    seed(cli, JOB)

    first = serve(cli)
    declared = {job["id"]: job for job in cli.json("jobs", "list")}
    (cli.cwd / "cronkeeper.toml").write_text("[maintenance]\nenabled = false\n")
    second = serve(cli)
    after = {job["id"]: job["enabled"] for job in cli.json("jobs", "list")}

    assert (first.returncode, second.returncode) == (0, 0), first.log + second.log
    builtin = {job_id: job for job_id, job in declared.items() if job["origin"] == "builtin"}
    assert sorted(builtin) == ["cronkeeper.backup", "cronkeeper.housekeeping", "cronkeeper.prune"]
    assert builtin["cronkeeper.prune"]["schedule"] == "17 3 * * *"
    assert builtin["cronkeeper.prune"]["spec"]["kwargs"] == {
        "older_than": "90d",
        "keep": 10000,
        "audit_older_than": "365d",
    }
    assert after == {
        "cronkeeper.backup": False,
        "cronkeeper.housekeeping": False,
        "cronkeeper.prune": False,
        "report": True,
    }
