"""``cronkeeper.toml``: loading, ``${VAR}`` substitution, and jobs as code synced by ``cronkeeper serve``."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from cronkeeper import ConfigError, Scheduler, ValidationError
from cronkeeper.cli.serve import web_settings
from cronkeeper.config import Config, WebConfig, load_config, substitute
from cronkeeper.settings import SchedulerSettings
from cronkeeper.web.settings import WebSettings
from tests.e2e.test_cli import Cli, make_cli, seed, serve, utc


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def write(directory: Path, text: str) -> Path:
    path = directory / "cronkeeper.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---- substitute -----------------------------------------------------------------------------------------


def test_substitute_replaces_variables_and_uses_the_default_when_a_variable_is_unset_or_empty() -> None:
    environ = {"HOUR": "3", "EMPTY": ""}

    assert substitute("0 ${HOUR} * * *", environ, "cron") == "0 3 * * *"
    assert substitute("0 ${HOUR:-4} * * *", environ, "cron") == "0 3 * * *"
    assert substitute("0 ${MINUTE:-15} * * *", environ, "cron") == "0 15 * * *"
    assert substitute("${EMPTY:-5m}", environ, "every") == "5m"
    assert substitute("[${EMPTY}]", environ, "command") == "[]", "set but empty, and no default"
    assert substitute("${MISSING:-}", environ, "command") == ""
    assert substitute("echo $HOUR ${HOUR}${HOUR}", environ, "command") == "echo $HOUR 33"


def test_substitute_raises_a_config_error_naming_the_field_for_a_missing_variable_without_default() -> None:
    with pytest.raises(ConfigError) as caught:
        substitute("0 ${HOUR} * * *", {}, "cronkeeper.toml: jobs[0].cron")

    assert caught.value.field == "cronkeeper.toml: jobs[0].cron"
    assert caught.value.reason == "environment variable HOUR is not set and has no default"


# ---- load_config ----------------------------------------------------------------------------------------


def test_load_config_reads_the_database_zone_scheduler_settings_and_jobs_with_variables_substituted(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
        db = "sqlite:///${DATA_DIR:-/var/lib}/ck.db"
        timezone = "Europe/Paris"

        [scheduler]
        workers = 3
        batch_size = 50
        poll_interval = 0.5
        heartbeat_interval = 2
        lease = 20.5
        progress_interval = 0.25
        hold_gc_for_bursts = false

        [[jobs]]
        id = "backup"
        cron = "${BACKUP_CRON:-0 3 * * *}"
        command = ["pg_dump", "-f", "${BACKUP_DIR}/app.sql", "app"]
        env = { PGHOST = "${PGHOST:-localhost}" }
        description = "Costs ${BUDGET}"
        timeout = "10m"

        [[jobs]]
        id = "metrics"
        every = "${METRICS_EVERY}"
        call = "cronkeeper.demo:count_items"
        kwargs = { items = 3 }
        """,
    )

    config = load_config(path, {"BACKUP_DIR": "/backups", "METRICS_EVERY": "5m", "PGHOST": ""})

    assert config.jobs() == [
        {
            "id": "backup",
            "cron": "0 3 * * *",
            "command": ["pg_dump", "-f", "/backups/app.sql", "app"],
            "env": {"PGHOST": "localhost"},
            "description": "Costs ${BUDGET}",  # only the schedule and the command are substituted
            "timeout": "10m",
        },
        {"id": "metrics", "every": "5m", "call": "cronkeeper.demo:count_items", "kwargs": {"items": 3}},
    ]
    assert dataclasses.replace(config, job_tables=[]) == Config(
        path=path,
        db="sqlite:////var/lib/ck.db",
        timezone="Europe/Paris",
        settings=SchedulerSettings(
            workers=3,
            batch_size=50,
            poll_interval=0.5,
            heartbeat_interval=timedelta(seconds=2),
            lease=timedelta(seconds=20.5),
            progress_interval=timedelta(seconds=0.25),
            hold_gc_for_bursts=False,
        ),
    )


def test_an_empty_file_is_a_config_with_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")

    assert load_config(path, {}) == Config(path=path)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('cron = "${CRON}"\ncommand = "true"', "cronkeeper.toml: jobs[0].cron"),
        ('every = "1h"\ncommand = ["echo", "${GREETING}"]', "cronkeeper.toml: jobs[0].command[1]"),
        ('every = "1h"\ncommand = "env"\nenv = { TOKEN = "${TOKEN}" }', "cronkeeper.toml: jobs[0].env.TOKEN"),
    ],
)
def test_a_missing_variable_without_default_is_a_config_error_naming_the_job_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, field: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path, f'[[jobs]]\nid = "bad"\n{table}\n\n[[jobs]]\nid = "fine"\nevery = "1h"\ncommand = "true"\n'
    )

    config = load_config(Path("cronkeeper.toml"), {})  # reading the file needs no job's variables
    with pytest.raises(ConfigError) as caught:
        config.jobs()

    assert caught.value.field == field
    assert "is not set and has no default" in caught.value.reason


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        pytest.param('scheduller = "typo"', "scheduller", "unknown setting", id="unknown-top-level-key"),
        pytest.param("[schedule]\nworkers = 2", "schedule", "unknown setting", id="unknown-top-level-table"),
        pytest.param('timezone = "Mars/Olympus"', "timezone", "unknown time zone 'Mars/Olympus'", id="zone"),
        pytest.param("db = 5", "db", "must be a string", id="db-not-text"),
        pytest.param('scheduler = "fast"', "scheduler", "must be a table", id="scheduler-not-table"),
        pytest.param('[jobs]\nid = "x"', "jobs", "must be [[jobs]] tables", id="jobs-not-array"),
    ],
)
def test_load_config_rejects_a_bad_top_level_setting_naming_it(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert (caught.value.field, caught.value.reason) == (f"{path}: {field}", reason)


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        pytest.param("threads = 4", "unknown setting", id="unknown"),
        pytest.param("workers = 0", "must be a positive whole number", id="zero-workers"),
        pytest.param("workers = 0.5", "must be a positive whole number", id="fractional-workers"),
        pytest.param("batch_size = 2.5", "must be a positive whole number", id="fractional-batch"),
        pytest.param("poll_interval = true", "must be a positive number", id="boolean"),
        pytest.param("heartbeat_interval = -1", "must be a positive number", id="negative"),
        pytest.param('lease = "30s"', "must be a positive number", id="duration-text"),
        pytest.param("hold_gc_for_bursts = 1", "must be true or false", id="not-a-boolean"),
    ],
)
def test_load_config_rejects_a_bad_scheduler_setting_naming_it(
    tmp_path: Path, setting: str, reason: str
) -> None:
    path = write(tmp_path, f"[scheduler]\n{setting}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    key = setting.partition(" ")[0]
    assert (caught.value.field, caught.value.reason) == (f"{path}: scheduler.{key}", reason)


def test_a_lease_shorter_than_two_heartbeats_is_refused_in_the_file_and_in_code(tmp_path: Path) -> None:
    # Other nodes would declare a live node's runs lost between two of its heartbeats.
    path = write(tmp_path, "[scheduler]\nheartbeat_interval = 20\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert (caught.value.field, caught.value.reason) == (
        f"{path}: scheduler.lease",
        "must be at least twice heartbeat_interval",
    )
    with pytest.raises(ValidationError, match="lease: must be at least twice heartbeat_interval"):
        SchedulerSettings(heartbeat_interval=timedelta(seconds=1), lease=timedelta(seconds=1.5))


def test_load_config_rejects_a_job_id_declared_twice_naming_the_second(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[jobs]]\nid = "a"\nevery = "1m"\ncommand = "true"\n'
        '[[jobs]]\nid = "b"\nevery = "1m"\ncommand = "true"\n'
        '[[jobs]]\nid = "a"\nevery = "2m"\ncommand = "true"\n',
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert (caught.value.field, caught.value.reason) == (f"{path}: jobs[2].id", "'a' is declared twice")


def test_jobs_without_a_text_id_are_not_mistaken_for_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[jobs]]\nevery = "1m"\ncommand = "true"\n'
        '[[jobs]]\nevery = "1m"\ncommand = "true"\n'
        '[[jobs]]\nid = ["a"]\nevery = "1m"\ncommand = "true"\n',
    )

    # Validating each job (as `serve` does) then says what is wrong with the id.
    assert [job.get("id") for job in load_config(path, {}).job_tables] == [None, None, ["a"]]


def test_load_config_reports_unreadable_files_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is not valid TOML") as caught:
        load_config(write(tmp_path, "[[jobs]\nid = 1"))
    assert caught.value.field == str(tmp_path / "cronkeeper.toml")


# ---- [web] ----------------------------------------------------------------------------------------------


def test_load_config_reads_the_web_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [web]
        host = "${WEB_HOST:-0.0.0.0}"
        port = 9000
        public_metrics = true
        session_lifetime = "8h"
        secure_cookies = false
        """,
    )

    assert load_config(path, {}).web == WebConfig(
        host="0.0.0.0",
        port=9000,
        public_metrics=True,
        session_lifetime=timedelta(hours=8),
        secure_cookies=False,
    )
    assert load_config(write(tmp_path, "[web]\n"), {}).web == WebConfig(), "absent: the defaults decide"


PORT_RANGE = "must be a whole number from 1 to 65535"
FLAG = "must be true or false"


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        pytest.param("prot = 80", "unknown setting", id="unknown"),
        pytest.param("port = 0", PORT_RANGE, id="port-0"),
        pytest.param("port = 65536", PORT_RANGE, id="port-too-big"),
        pytest.param('port = "8787"', PORT_RANGE, id="port-text"),
        pytest.param("port = true", PORT_RANGE, id="port-boolean"),
        pytest.param('host = ""', "must be a host name or address, such as 127.0.0.1", id="empty-host"),
        pytest.param('public_metrics = "yes"', FLAG, id="flag-text"),
        pytest.param("secure_cookies = 1", FLAG, id="flag-number"),
        pytest.param(
            'session_lifetime = "a day"',
            "'a day' is not a duration; write e.g. 30s, 5m, 1h30m or 2d",
            id="lifetime-text",
        ),
        pytest.param('session_lifetime = "0s"', "must be longer than zero", id="lifetime-zero"),
    ],
)
def test_load_config_rejects_a_bad_web_setting_naming_it(tmp_path: Path, setting: str, reason: str) -> None:
    path = write(tmp_path, f"[web]\n{setting}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    key = setting.partition(" ")[0]
    assert (caught.value.field, caught.value.reason) == (f"{path}: web.{key}", reason)


def test_a_web_setting_that_is_not_a_table_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, 'web = "on"')

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert (caught.value.field, caught.value.reason) == (f"{path}: web", "must be a table")


def test_the_command_line_overrides_the_web_table_which_overrides_the_defaults() -> None:
    from_file = WebConfig(host="0.0.0.0", port=9000, session_lifetime=timedelta(hours=1))

    assert web_settings(WebConfig(), None, None) == WebSettings()
    assert web_settings(from_file, None, 9100) == WebSettings(
        host="0.0.0.0", port=9100, session_lifetime=timedelta(hours=1)
    )
    assert web_settings(from_file, "127.0.0.1", None).host == "127.0.0.1"


# ---- jobs as code, through `cronkeeper serve` ----------------------------------------------------------


def declared_in_files(cli: Cli) -> list[dict[str, Any]]:
    """The jobs, less the built-in maintenance jobs ``serve`` declares besides the file's."""
    return [job for job in json.loads(cli.ok("jobs", "list", "--json")) if job["origin"] != "builtin"]


def test_serve_adds_config_jobs_then_updates_changed_ones_and_disables_removed_ones_keeping_history(
    cli: Cli,
) -> None:
    write(
        cli.cwd,
        """
        [[jobs]]
        id = "report"
        cron = "${REPORT_CRON:-0 6 * * *}"
        command = "echo report"

        [[jobs]]
        id = "beat"
        every = "1s"
        command = ["echo", "beat"]
        """,
    )

    first = serve(cli, lambda: runs_of(cli, "beat") > 0)

    assert first.returncode == 0, first.log
    assert "cronkeeper.toml: 2 added, 0 updated, 0 unchanged, 0 disabled" in first.log
    listed = declared_in_files(cli)
    origin = f"config {(cli.cwd / 'cronkeeper.toml').resolve()}"
    assert [(job["id"], job["origin"], job["enabled"], job["created_by"]) for job in listed] == [
        ("beat", origin, True, "config"),
        ("report", origin, True, "config"),
    ]
    assert listed[1]["schedule"] == "0 6 * * *"

    write(cli.cwd, '[[jobs]]\nid = "report"\ncron = "30 7 * * *"\ncommand = "echo report"\n')
    second = serve(cli)

    assert second.returncode == 0, second.log
    assert "cronkeeper.toml: 0 added, 1 updated, 0 unchanged, 1 disabled" in second.log
    report, beat, beat_runs = cli.many(
        ["jobs", "show", "report", "--json"],
        ["jobs", "show", "beat", "--json"],
        ["runs", "list", "--job", "beat", "--json"],
    )
    report_job = json.loads(report.stdout)
    assert (report_job["schedule"], report_job["enabled"], report_job["version"]) == ("30 7 * * *", True, 2)
    next_run = utc(report_job["next_due_at"]).astimezone(UTC)
    assert (next_run.hour, next_run.minute) == (7, 30)
    beat_job = json.loads(beat.stdout)
    assert (beat_job["enabled"], beat_job["next_due_at"], beat_job["origin"]) == (False, None, origin)
    history = json.loads(beat_runs.stdout)
    assert history
    assert {run["job_id"] for run in history} == {"beat"}
    assert history[-1]["status"] == "succeeded"


def test_two_services_with_files_of_their_own_on_one_database_leave_each_others_jobs_alone(
    cli: Cli, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "billing"
    elsewhere.mkdir()
    billing = Cli(elsewhere, cli.env)  # the same database
    write(cli.cwd, '[[jobs]]\nid = "report"\nevery = "1h"\ncommand = "true"\n')
    write(elsewhere, 'name = "billing"\n\n[[jobs]]\nid = "invoice"\nevery = "1h"\ncommand = "true"\n')
    for service in (cli, billing, cli):
        served = serve(service)
        assert served.returncode == 0, served.log
    assert "0 disabled" in served.log
    listed = declared_in_files(cli)
    assert [(job["id"], job["origin"], job["enabled"]) for job in listed] == [
        ("invoice", "config billing", True),
        ("report", f"config {(cli.cwd / 'cronkeeper.toml').resolve()}", True),
    ]


@pytest.mark.parametrize(
    ("second_job", "message"),
    [
        pytest.param(
            'cron = "61 * * * *"',
            "error: cronkeeper.toml: jobs[1].cron: minute field '61' is invalid",
            id="bad-cron",
        ),
        pytest.param(
            'cron = "${NIGHTLY_CRON}"',
            "error: cronkeeper.toml: jobs[1].cron: environment variable NIGHTLY_CRON",
            id="missing-variable",
        ),
    ],
)
def test_serve_with_an_invalid_job_in_the_config_exits_2_naming_it_and_writes_no_job(
    cli: Cli, second_job: str, message: str
) -> None:
    write(
        cli.cwd,
        f'[[jobs]]\nid = "fine"\nevery = "1h"\ncommand = "true"\n\n'
        f'[[jobs]]\nid = "broken"\n{second_job}\ncommand = "true"\n',
    )

    served = serve(cli)

    assert served.returncode == 2, served.log
    assert served.log.splitlines()[-1].startswith(message)
    assert "Traceback" not in served.log
    assert not (cli.cwd / "x.db").exists()  # checked before the database is even made


def test_commands_that_only_read_the_database_work_while_a_jobs_variable_is_unset(cli: Cli) -> None:
    seed(cli, {"id": "adhoc", "every": "1h", "command": "true"})
    write(cli.cwd, '[[jobs]]\nid = "nightly"\ncron = "${NIGHTLY_CRON}"\ncommand = "true"\n')
    assert [job["id"] for job in json.loads(cli.ok("jobs", "list", "--json"))] == ["adhoc"]
    assert cli("jobs", "trigger", "adhoc").returncode == 0
    assert [run["job_id"] for run in json.loads(cli.ok("runs", "list", "--json"))] == ["adhoc"]
    served = serve(cli)  # syncing the jobs needs the variable: refused, naming it
    assert served.returncode == 2
    assert "jobs[0].cron: environment variable NIGHTLY_CRON is not set" in served.log


def runs_of(cli: Cli, job_id: str) -> int:
    """How many finished runs ``job_id`` has (0 before the job exists)."""
    with Scheduler(cli.db_url, migrate=False) as reader:
        return sum(not run.status.is_active for run in reader.runs(job_id=job_id))


@pytest.mark.parametrize("value", ['""', "3", f'"{"x" * 101}"'])
def test_a_bad_name_is_a_config_error_naming_it(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"cronkeeper.toml: name: must be a text of 1 to 100 characters"):
        load_config(write(tmp_path, f"name = {value}\n"))


def test_the_origin_of_a_files_jobs_is_its_name_else_its_path(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, 'name = " billing "\n')).origin == "config billing"
    assert load_config(write(tmp_path, "")).origin == f"config {(tmp_path / 'cronkeeper.toml').absolute()}"
    deep = Config(path=Path("/" + "d" * 300) / "cronkeeper.toml")
    assert len(deep.origin) == 200 and deep.origin.endswith("d/cronkeeper.toml")
