"""The ``cronkeeper`` command, run for real in subprocesses against a SQLite file in a temp dir."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.testing import run_until

CRONKEEPER = Path(sys.executable).with_name("cronkeeper")
USER = "ck-tester"
STABLE_JOB_FIELDS = {
    "id",
    "name",
    "enabled",
    "paused",
    "schedule",
    "schedule_description",
    "timezone",
    "next_due_at",
    "next_run_at",
    "origin",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "spec",
}
_serve_numbers = count(1)


@dataclass(frozen=True)
class Cli:
    """Runs ``cronkeeper`` in ``cwd`` with ``CRONKEEPER_DB`` pointing at a file there."""

    cwd: Path
    env: dict[str, str]

    @property
    def db_url(self) -> str:
        return self.env["CRONKEEPER_DB"]

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CRONKEEPER), *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def many(self, *argvs: Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
        """Independent commands at once (each one mostly spends its time importing)."""
        with ThreadPoolExecutor(len(argvs)) as pool:
            return list(pool.map(lambda argv: self(*argv), argvs))

    def ok(self, *args: str) -> str:
        """Standard output of a command that must succeed quietly."""
        result = self(*args)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return result.stdout

    def json(self, *args: str) -> Any:
        """The one JSON document a ``--json`` command prints."""
        return json.loads(self.ok(*args, "--json"))

    def fails(self, status: int, *args: str, stdin: str = "") -> str:
        """Standard error of a command that must exit with ``status`` and print nothing on stdout."""
        result = self(*args, stdin=stdin)
        assert result.returncode == status, (result.stdout, result.stderr)
        assert result.stdout == "" or result.stdout.endswith("[y/N]: ")
        return result.stderr


def make_cli(directory: Path) -> Cli:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRONKEEPER")}
    # getpass.getuser() reads LOGNAME first: who the CLI records as created_by/updated_by.
    env.update(CRONKEEPER_DB=f"sqlite:///{directory / 'x.db'}", LOGNAME=USER, USER=USER, COLUMNS="200")
    return Cli(directory, env)


def seed(cli: Cli, *definitions: Mapping[str, Any]) -> None:
    """Create the database in-process (quicker than a subprocess) with these jobs, as `jobs add` would."""
    with Scheduler(cli.db_url) as scheduler:
        for data in definitions:
            scheduler.service.add_job(data, by=USER, origin="cli")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class Served:
    returncode: int
    log: str


def serve(cli: Cli, until: Callable[[], bool] = lambda: True, *args: str) -> Served:
    """Run ``cronkeeper serve`` until it is serving and ``until()`` holds, then SIGTERM it and return how it
    ended.  A serve that exits by itself (a bad configuration) is returned as it is."""
    log_path = cli.cwd / f"serve-{next(_serve_numbers)}.log"
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            # No dashboard: these tests are about scheduling, and a fixed port could be taken.
            [str(CRONKEEPER), "serve", "--no-web", *args],
            cwd=cli.cwd,
            env=cli.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as proc,
    ):
        try:
            # The signal handlers are installed before this line is logged: SIGTERM is a graceful stop.
            wait_for(
                lambda: proc.poll() is not None or "cronkeeper serving" in log_path.read_text(),
                "serve to start",
            )
            if proc.poll() is None:
                wait_for(until, "the condition")
                proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    return Served(returncode, log_path.read_text())


def runs_finished(reader: Scheduler, *run_ids: int) -> Callable[[], bool]:
    return lambda: not any(reader.get_run(run_id).status.is_active for run_id in run_ids)


def utc(text: str) -> datetime:
    """An instant the JSON gives in UTC."""
    instant = datetime.fromisoformat(text)
    assert instant.utcoffset() == timedelta(0), text
    return instant


# ---- next -----------------------------------------------------------------------------------------------


def test_next_prints_the_fires_across_a_dst_change_as_one_json_document(cli: Cli) -> None:
    data = cli.json(
        "next", "0 2 * * *", "--tz", "America/New_York", "--after", "2026-03-07T00:00", "--count", "3"
    )

    assert data == {
        "expression": "0 2 * * *",
        "timezone": "America/New_York",
        "description": "At 02:00 every day",
        "after": "2026-03-07T00:00:00-05:00",
        # 02:00 does not exist on 8 March 2026 in New York: the job runs once, right after the jump.
        "next": [
            "2026-03-07T02:00:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:00:00-04:00",
        ],
    }


def test_next_answers_on_the_day_chatham_sets_its_clock_back_45_minutes(cli: Cli) -> None:
    data = cli.json(
        "next", "* 3 * * *", "--tz", "Pacific/Chatham", "--after", "2026-04-04T13:59:00+00:00", "--count", "2"
    )
    # 03:44 +13:45 is the last minute of the first pass; 03:00-03:44 comes again at +12:45.
    assert data["next"] == ["2026-04-05T03:00:00+12:45", "2026-04-05T03:01:00+12:45"]


def test_next_rejects_invalid_expressions_with_exit_2_and_one_line_naming_the_field(cli: Cli) -> None:
    expected = {
        "0 0 30 2 *": "'0 0 30 2 *' can never fire (day 30 never occurs in the chosen months)",
        "61 * * * *": "minute field '61' is invalid (allowed: 0-59)",
        "* * * *": "expected 5 fields, got 4 in '* * * *'",
    }

    results = cli.many(*(["next", expression] for expression in expected))

    for result, message in zip(results, expected.values(), strict=True):
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.startswith(f"error: expression: {message}")
        assert result.stderr.count("\n") == 1, "one line, no traceback"


# ---- jobs -----------------------------------------------------------------------------------------------


def test_jobs_add_creates_cron_interval_and_one_off_jobs_that_list_and_show_print_as_stable_json(
    cli: Cli,
) -> None:
    seed(cli)
    added = cli.many(
        ["jobs", "add", "nightly", "--cron", "0 3 * * 1-5", "--tz", "Europe/Paris",
         "--command", "pg_dump -f '/backups/app one.sql' app", "--timeout", "10m",
         "--name", "Nightly backup", "--tag", "db", "--tag", "backup", "--json"],
        ["jobs", "add", "metrics", "--every", "5m", "--call", "cronkeeper.demo:count_items",
         "--kwargs", '{"items": 3}', "--max-retries", "2", "--json"],
        ["jobs", "add", "launch", "--at", "2031-01-01T09:00:00+01:00", "--command", "echo go", "--json"],
    )  # fmt: skip
    assert all(result.returncode == 0 for result in added), [result.stderr for result in added]
    nightly, every, once = (json.loads(result.stdout) for result in added)

    assert nightly["schedule"] == "0 3 * * 1-5"
    assert nightly["timezone"] == "Europe/Paris"
    assert nightly["spec"]["command"] == ["pg_dump", "-f", "/backups/app one.sql", "app"]
    assert nightly["spec"]["timeout"] == 600.0
    assert nightly["name"] == "Nightly backup"
    assert nightly["spec"]["tags"] == ["db", "backup"]
    local = utc(nightly["next_due_at"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute, local.weekday() < 5) == (3, 0, True)

    assert every["schedule"] == "every 5m"
    assert every["timezone"] is None
    assert every["spec"]["call"] == "cronkeeper.demo:count_items"
    assert every["spec"]["kwargs"] == {"items": 3}
    assert every["spec"]["max_retries"] == 2
    assert every["name"] == "metrics", "the display name defaults to the id"
    assert utc(every["next_due_at"]) > datetime.now(UTC)

    assert once["schedule"] == "at 2031-01-01T08:00:00+00:00"
    assert once["next_due_at"] == "2031-01-01T08:00:00+00:00"

    for job in (nightly, every, once):
        assert job.keys() >= STABLE_JOB_FIELDS
        assert (job["enabled"], job["paused"], job["origin"], job["version"]) == (True, False, "cli", 1)
        assert (job["created_by"], job["updated_by"]) == (USER, USER)
        assert job["created_at"] == job["updated_at"]
        assert job["spec"]["id"] == job["id"]

    listed, shown = cli.many(["jobs", "list", "--json"], ["jobs", "show", "metrics", "--json"])
    assert json.loads(listed.stdout) == [{**job, "last_run": None} for job in (once, every, nightly)], (
        "sorted by id, none has run"
    )
    assert json.loads(shown.stdout) == every


def test_a_job_whose_function_does_not_import_here_is_added_with_a_warning(cli: Cli) -> None:
    added = cli("jobs", "add", "elsewhere", "--every", "1h", "--call", "billing.tasks:invoice")
    assert added.returncode == 0, added.stderr
    assert added.stderr.startswith(
        "warning: call: cannot import 'billing.tasks:invoice': ModuleNotFoundError"
    )
    assert cli.json("jobs", "show", "elsewhere")["spec"]["call"] == "billing.tasks:invoice"


def test_jobs_add_with_invalid_options_exits_2_naming_the_option_and_writes_nothing(cli: Cli) -> None:
    cases = {
        "error: cron: minute field '61'": ["bad-cron", "--cron", "61 * * * *", "--command", "true"],
        "error: target: give exactly one of command, call or checkin = true": ["no-target", "--every", "5m"],
        "error: schedule: give exactly one of cron, every or at": [
            "two-schedules", "--cron", "@daily", "--every", "5m", "--command", "true",
        ],
        "error: at: 2020-01-01T00:00:00+00:00 is in the past": [
            "past", "--at", "2020-01-01T00:00", "--command", "true",
        ],
        "error: args: is not valid JSON": [
            "bad-json", "--every", "5m", "--call", "cronkeeper.demo:count_items", "--args", "[1,",
        ],
    }  # fmt: skip
    seed(cli)

    results = cli.many(*(["jobs", "add", *args] for args in cases.values()))

    for result, message in zip(results, cases, strict=True):
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.startswith(message)
    with Scheduler(cli.db_url, migrate=False) as reader:
        assert reader.jobs() == []


def test_jobs_edit_changes_the_timeout_in_place_and_a_new_cron_reschedules_in_the_same_zone(
    cli: Cli,
) -> None:
    seed(cli, {"id": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Paris", "command": "echo hi"})
    with Scheduler(cli.db_url, migrate=False) as reader:
        added = reader.get_job("nightly")

    timeout = cli.json("jobs", "edit", "nightly", "--timeout", "90s")

    assert timeout["spec"]["timeout"] == 90.0
    assert timeout["version"] == 2
    assert timeout["schedule"] == "0 3 * * *"
    assert added.next_due_at is not None
    assert utc(timeout["next_due_at"]) == added.next_due_at, "not rescheduled"

    rescheduled = cli.json("jobs", "edit", "nightly", "--cron", "30 4 * * *")

    assert rescheduled["schedule"] == "30 4 * * *"
    assert rescheduled["timezone"] == "Europe/Paris"
    assert rescheduled["spec"]["timeout"] == 90.0
    assert rescheduled["version"] == 3
    local = utc(rescheduled["next_due_at"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (4, 30)
    assert utc(rescheduled["updated_at"]) > utc(timeout["updated_at"])
    assert rescheduled["updated_by"] == USER


def test_jobs_pause_resume_and_remove_change_the_job_and_remove_asks_first(cli: Cli) -> None:
    seed(cli, {"id": "tick", "every": "10m", "command": "true"})
    with Scheduler(cli.db_url, migrate=False) as reader:
        assert cli.ok("jobs", "pause", "tick") == "paused tick\n"
        paused = reader.get_job("tick")
        assert (paused.paused, paused.next_due_at) == (True, None)

        resumed = cli.ok("jobs", "resume", "tick")
        job = reader.get_job("tick")
        assert job.next_due_at is not None
        assert (job.paused, resumed) == (
            False,
            f"resumed tick; next run {job.next_due_at.isoformat(timespec='seconds')}\n",
        )

        assert cli.fails(1, "jobs", "remove", "tick", stdin="n\n").endswith("aborted\n")
        assert reader.get_job("tick").paused is False, "still there"
        assert cli.ok("jobs", "remove", "tick", "--yes") == "removed tick\n"
        assert reader.jobs() == []


def test_commands_on_an_unknown_job_or_run_exit_1_with_one_line_on_stderr(cli: Cli) -> None:
    seed(cli)

    results = cli.many(
        ["jobs", "show", "ghost", "--json"],
        ["jobs", "trigger", "ghost", "--as", "alice", "--json"],
        ["runs", "show", "42", "--json"],
    )

    assert [(result.returncode, result.stdout, result.stderr) for result in results] == [
        (1, "", "error: no job with id 'ghost'\n"),
        (1, "", "error: no job with id 'ghost'\n"),
        (1, "", "error: no run with id 42\n"),
    ]


# ---- runs and serve -------------------------------------------------------------------------------------


def test_triggered_runs_are_executed_by_serve_which_stops_gracefully_and_runs_show_them(cli: Cli) -> None:
    seed(
        cli,
        {
            "id": "hello",
            "cron": "0 0 1 1 *",
            "shell": True,
            "command": "sleep 0.5; echo hello from cronkeeper",
        },
        {"id": "metrics", "cron": "0 0 1 1 *", "call": "cronkeeper.demo:count_items", "kwargs": {"items": 3}},
    )
    triggered = cli.many(
        ["jobs", "trigger", "hello", "--as", "alice", "--json"],
        ["jobs", "trigger", "metrics", "--as", "alice", "--json"],
    )
    assert all(result.returncode == 0 for result in triggered), [result.stderr for result in triggered]
    documents = [json.loads(result.stdout) for result in triggered]
    assert sorted(documents, key=str) == [{"run_id": 1}, {"run_id": 2}]
    hello, metrics = (document["run_id"] for document in documents)

    with Scheduler(cli.db_url, migrate=False) as reader:
        # Stop once "hello" has started (it sleeps 0.5 s): a graceful stop lets it finish.
        served = serve(
            cli,
            lambda: reader.get_run(hello).status is not RunStatus.QUEUED and runs_finished(reader, metrics)(),
        )

    assert served.returncode == 0, served.log
    assert "received SIGTERM" in served.log
    assert served.log.rstrip().endswith("stopped")

    listed, shown = cli.many(["runs", "list", "--json"], ["runs", "show", str(hello), "--json"])
    runs = json.loads(listed.stdout)
    assert [(run["id"], run["job_id"], run["status"]) for run in runs] == sorted(
        [(hello, "hello", "succeeded"), (metrics, "metrics", "succeeded")], reverse=True
    ), "newest first"
    assert all("output" not in run for run in runs)
    by_job = {run["job_id"]: run for run in runs}
    assert by_job["metrics"]["result"]["items_processed"] == 3

    run = json.loads(shown.stdout)
    assert {key: run[key] for key in ("job_id", "status", "trigger_source", "triggered_by", "exit_code")} == {
        "job_id": "hello",
        "status": "succeeded",
        "trigger_source": "manual",
        "triggered_by": "alice",
        "exit_code": 0,
    }
    assert run["output"] == "hello from cronkeeper\n"
    assert run["duration_seconds"] >= 0.5
    assert {key: run[key] for key in by_job["hello"]} == by_job["hello"]


# ---- database -------------------------------------------------------------------------------------------


def test_db_upgrade_uses_the_db_option_over_the_environment_and_a_second_upgrade_is_a_no_op(
    cli: Cli,
) -> None:
    other = cli.cwd / "other.db"

    first = cli.ok("--db", f"sqlite:///{other}", "db", "upgrade")
    second = cli.ok("--db", f"sqlite:///{other}", "db", "upgrade")

    revision = re.fullmatch(r"upgraded database from empty to (\w+) \(head \1\)\n", first)
    assert revision, first
    assert second == f"database is up to date (revision {revision.group(1)})\n"
    assert other.exists()
    assert not (cli.cwd / "x.db").exists(), "CRONKEEPER_DB was not used"


def test_an_unreachable_database_is_one_clear_line_and_exit_status_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CRONKEEPER), "--db", f"sqlite:///{tmp_path}/missing/dir/x.db", "jobs", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot open the database sqlite:///")
    assert "Traceback" not in result.stderr


# ---- figures and history by time window -----------------------------------------------------------------


@pytest.fixture
def hourly(cli: Cli) -> datetime:
    """Fires of "ok" (succeeds) and "boom" (fails) every hour from 49 h to 1 h before now, "idle" never;
    returns that now, to the second."""
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FakeClock(now - timedelta(hours=50))
    with Scheduler(cli.db_url, clock=clock) as scheduler:
        scheduler.add_job("tests.jobs:metrics", id="ok", every="1h")
        scheduler.add_job("tests.jobs:boom", id="boom", every="1h")
        scheduler.add_job("tests.jobs:metrics", id="idle", cron="0 0 1 1 *")
        run_until(scheduler, clock, now - timedelta(hours=1))
    return now


def test_jobs_stats_prints_every_jobs_figures_as_a_table_or_json(cli: Cli, hourly: datetime) -> None:
    table, data = cli.ok("jobs", "stats"), cli.json("jobs", "stats")
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["JOB", "RUNS", "OK", "FAILED", "SUCCESS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["ok"][1:5] == ["49", "49", "0", "100.0%"]
    assert rows["boom"][1:5] == ["49", "0", "49", "0.0%"]
    assert rows["idle"][1:] == ["0", "0", "0", "-", "-", "-", "-", "-", "-"]
    assert lines[1].endswith("RuntimeError: boom")
    assert (data["since"], data["until"]) == (None, None)
    assert [(job["job_id"], job["total"], job["failures"]) for job in data["jobs"]] == [
        ("boom", 49, 49),
        ("idle", 0, 0),
        ("ok", 49, 0),
    ]
    ok = data["jobs"][2]
    assert ok["success_rate"] == 1.0 and ok["last_failure"] is None
    assert utc(ok["last_success"]["at"]) == hourly - timedelta(hours=1)


def test_jobs_stats_of_named_jobs_over_the_last_day(cli: Cli, hourly: datetime) -> None:
    data = cli.json("jobs", "stats", "ok", "boom", "--since", "24h")
    assert [(job["job_id"], job["total"]) for job in data["jobs"]] == [("ok", 23), ("boom", 23)]
    assert utc(data["since"]) <= hourly - timedelta(hours=23)
    since, until = (hourly - timedelta(hours=10)).isoformat(), (hourly - timedelta(hours=5)).isoformat()
    window = cli.json("jobs", "stats", "ok", "--since", since, "--until", until)
    assert window["jobs"][0]["total"] == 5
    naive = cli.json("jobs", "stats", "ok", "--since", since.removesuffix("+00:00"), "--until", until)
    assert naive["jobs"] == window["jobs"]


def test_runs_list_keeps_the_runs_scheduled_for_the_window(cli: Cli, hourly: datetime) -> None:
    since, until = (hourly - timedelta(hours=4)).isoformat(), (hourly - timedelta(hours=2)).isoformat()
    runs = cli.json("runs", "list", "--job", "ok", "--since", since, "--until", until)
    assert [utc(run["scheduled_for"]) for run in runs] == [
        hourly - timedelta(hours=3),
        hourly - timedelta(hours=4),
    ]
    assert len(cli.json("runs", "list", "--since", "3h")) == 4


def test_bad_windows_exit_2_naming_the_option_and_unknown_jobs_exit_1(cli: Cli, hourly: datetime) -> None:
    results = cli.many(
        ["jobs", "stats", "--since", "yesterday"],
        ["runs", "list", "--until", "2026-02-30T00:00"],
        ["jobs", "stats", "--since", "2026-03-02T10:00", "--until", "2026-03-02T09:00"],
        ["jobs", "stats", "ok", "ghost"],
    )
    assert [result.returncode for result in results] == [2, 2, 2, 1]
    assert all(result.stdout == "" for result in results)
    assert "'--since'" in results[0].stderr and "'yesterday'" in results[0].stderr
    assert "'--until'" in results[1].stderr
    assert results[2].stderr == "error: until: must not be before since\n"
    assert results[3].stderr == "error: no job with id 'ghost'\n"
