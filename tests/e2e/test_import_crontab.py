"""``cronkeeper import-crontab``, run for real: from a file and from standard input, dry run, re-import."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cronkeeper import FakeClock, Scheduler
from cronkeeper.models import CommandTarget, Job
from tests.e2e.test_cli import Cli
from tests.sinks import MailSink

CRONTAB = """\
PATH=/usr/bin:/bin
MAILTO=ops@example.com
# Rotate the logs
15 4 * * * /usr/sbin/logrotate /etc/logrotate.conf
CRON_TZ=America/New_York
0 9 * * 1-5 echo "good morning"
@reboot /opt/warmup
0 0 31 2 * echo never
"""


def test_dry_run_writes_nothing_and_says_what_would_change(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text(CRONTAB)
    result = cli("import-crontab", "--dry-run", "--json", "crontab")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True
    assert [(job["line"], job["action"]) for job in plan["jobs"]] == [(4, "add"), (6, "add")]
    reasons = {item["line"]: item["reason"] for item in plan["skipped"]}
    assert set(reasons) == {7, 8}
    assert reasons[8].startswith("cron:")
    with Scheduler(cli.db_url) as scheduler:
        assert scheduler.jobs() == []


def test_import_from_standard_input_and_again_changes_nothing(cli: Cli) -> None:
    first = cli("import-crontab", "-", stdin=CRONTAB)
    assert first.returncode == 0, first.stderr
    assert "added 2, updated 0, unchanged 0, not imported 2" in first.stderr
    assert "MAILTO=ops@example.com: set SMTP_HOST" in first.stderr
    assert "line 7: not imported: @reboot runs at boot" in first.stderr
    with Scheduler(cli.db_url) as scheduler:
        jobs = {job.spec.name: job for job in scheduler.jobs()}
        morning = jobs['echo "good morning"']
        assert morning.spec.trigger.describe().endswith("(America/New_York)")
        assert jobs["/usr/sbin/logrotate /etc/logrotate.conf"].spec.description == "Rotate the logs"
        assert morning.origin == "crontab"
        assert not morning.paused
    again = cli("import-crontab", "-", stdin=CRONTAB)
    assert "added 0, updated 0, unchanged 2" in again.stderr
    with Scheduler(cli.db_url) as scheduler:
        assert len(scheduler.jobs()) == 2


def test_paused_import_lets_cron_and_cronkeeper_not_both_run(cli: Cli) -> None:
    assert cli("import-crontab", "--paused", "-", stdin=CRONTAB).returncode == 0
    with Scheduler(cli.db_url) as scheduler:
        assert all(job.paused for job in scheduler.jobs())


def _in_zone(cli: Cli, zone: str) -> Cli:
    """The CLI on a host whose local zone is ``zone`` (cron runs lines without CRON_TZ in it)."""
    return replace(cli, env={**cli.env, "TZ": zone})


def _command(job: Job) -> CommandTarget:
    assert isinstance(job.spec.target, CommandTarget)
    return job.spec.target


def _plan(cli: Cli, *args: str, stdin: str) -> Any:
    result = cli("import-crontab", "--json", *args, "-", stdin=stdin)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_dry_run_on_a_database_that_does_not_exist_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    result = cli("import-crontab", "--dry-run", "--json", "-", stdin=CRONTAB)
    assert result.returncode == 0, result.stderr
    assert [job["action"] for job in json.loads(result.stdout)["jobs"]] == ["add", "add"]
    assert not (tmp_path / "x.db").exists()


def test_a_dry_run_plans_in_a_scratch_database_whatever_the_temporary_folder_is_called(
    cli: Cli, tmp_path: Path
) -> None:
    odd = tmp_path / "tmp?mode=ro&x=%41"
    odd.mkdir()
    result = replace(cli, env={**cli.env, "TMPDIR": str(odd)})(
        "import-crontab", "--dry-run", "-", stdin=CRONTAB
    )
    assert result.returncode == 0, result.stderr
    assert list(odd.iterdir()) == [], "the scratch database is removed"
    assert sorted(path.name for path in tmp_path.iterdir()) == [odd.name], "and nothing is made elsewhere"


def test_a_dry_run_does_not_migrate_a_database_without_the_schema(cli: Cli, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute("CREATE TABLE other (x INTEGER)")
    result = cli("import-crontab", "--dry-run", "--json", "-", stdin=CRONTAB)
    assert result.returncode == 0, result.stderr
    assert [job["action"] for job in json.loads(result.stdout)["jobs"]] == ["add", "add"]
    with closing(sqlite3.connect(tmp_path / "x.db")) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"other"}


def test_lines_without_cron_tz_run_in_the_hosts_zone_and_tz_is_only_their_environment(cli: Cli) -> None:
    text = "TZ=Asia/Tokyo\n0 3 * * * /usr/local/bin/backup.sh\nCRON_TZ=Europe/Paris\n0 4 * * * report\n"
    plan = _plan(_in_zone(cli, "America/New_York"), stdin=text)
    assert [(job["line"], job["timezone"]) for job in plan["jobs"]] == [
        (2, "America/New_York"),
        (4, "Europe/Paris"),
    ]
    given = _plan(cli, "--dry-run", "--timezone", "Asia/Kolkata", stdin=text)
    assert given["jobs"][0]["timezone"] == "Asia/Kolkata"
    table = _in_zone(cli, "America/New_York")("import-crontab", "--dry-run", "-", stdin=text)
    assert "America/New_York" in table.stdout
    with Scheduler(cli.db_url) as scheduler:
        backup = next(job for job in scheduler.jobs() if job.spec.name == "/usr/local/bin/backup.sh")
        assert backup.spec.trigger.describe().endswith("(America/New_York)")
        assert _command(backup).env == {"TZ": "Asia/Tokyo"}


def test_reimport_keeps_the_options_set_in_cronkeeper(cli: Cli) -> None:
    text = "# nightly\n0 3 * * * /usr/local/bin/backup.sh\n"
    cli = _in_zone(cli, "UTC")
    assert cli("import-crontab", "-", stdin=text).returncode == 0
    with Scheduler(cli.db_url) as scheduler:
        (job,) = scheduler.jobs()
        scheduler.service.edit_job(job.id, {"timeout": 600, "max_retries": 3}, by="someone")
    assert "unchanged 1" in cli("import-crontab", "-", stdin=text).stderr
    changed = cli("import-crontab", "-", stdin="# nightly backup\n0 3 * * * /usr/local/bin/backup.sh\n")
    assert "updated 1" in changed.stderr
    with Scheduler(cli.db_url) as scheduler:
        (job,) = scheduler.jobs()
        assert job.spec.timeout is not None and job.spec.timeout.total_seconds() == 600
        assert job.spec.retry.max_retries == 3
        assert job.spec.description == "nightly backup"


def test_a_new_variable_updates_the_jobs_instead_of_adding_them_again(cli: Cli) -> None:
    lines = "0 3 * * * /usr/local/bin/backup.sh\n*/5 * * * * /usr/local/bin/poll.sh\n"
    cli = _in_zone(cli, "UTC")
    assert "added 2" in cli("import-crontab", "-", stdin=lines).stderr
    again = cli("import-crontab", "-", stdin="PATH=/usr/local/bin:/usr/bin:/bin\n" + lines)
    assert "added 0, updated 2, unchanged 0" in again.stderr
    with Scheduler(cli.db_url) as scheduler:
        jobs = scheduler.jobs()
        assert len(jobs) == 2
        assert all(_command(job).env == {"PATH": "/usr/local/bin:/usr/bin:/bin"} for job in jobs)


def test_jobs_no_longer_in_the_crontab_are_listed_and_pruned_by_disabling_them(cli: Cli) -> None:
    cli = _in_zone(cli, "UTC")
    assert cli("import-crontab", "-", stdin="0 3 * * * backup\n0 4 * * * report\n").returncode == 0
    with Scheduler(cli.db_url) as scheduler:
        report_id = next(job.id for job in scheduler.jobs() if job.spec.name == "report")
    listed = cli("import-crontab", "-", stdin="0 3 * * * backup\n")
    assert "no longer in it (--prune disables them)" in listed.stderr
    assert report_id in listed.stderr
    plan = _plan(cli, "--dry-run", "--prune", stdin="0 3 * * * backup\n")
    assert plan["stale"] == [report_id]
    pruned = cli("import-crontab", "--prune", "-", stdin="0 3 * * * backup\n")
    assert f"disabled 1 job(s) no longer in the crontab:\n  {report_id}" in pruned.stderr
    with Scheduler(cli.db_url) as scheduler:
        report = scheduler.service.get_job(report_id)
        assert not report.enabled  # disabled, not deleted: its history stays
    back = cli("import-crontab", "-", stdin="0 3 * * * backup\n0 4 * * * report\n")
    assert "updated 1, unchanged 1" in back.stderr
    with Scheduler(cli.db_url) as scheduler:
        assert scheduler.service.get_job(report_id).enabled


def test_a_system_crontab_says_which_user_the_lines_ran_as(cli: Cli) -> None:
    text = "SHELL=/bin/sh\n17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
    result = _in_zone(cli, "UTC")("import-crontab", "--system", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    assert "line 2: not translated: runs as the scheduler's user, not root" in result.stderr
    with Scheduler(cli.db_url) as scheduler:
        (job,) = scheduler.jobs()
        assert _command(job).argv == ("/bin/sh", "-c", "cd / && run-parts --report /etc/cron.hourly")


def test_mailto_mails_a_runs_output_through_the_smtp_settings_as_cron_did(cli: Cli, mail: MailSink) -> None:
    cli.env.update(mail.env(to="unused@example.com"))
    crontab = "MAILTO=ops@example.com\n* * * * * echo hello from cron\n0 3 * * * true\n"
    imported = cli("import-crontab", "--mail-output", "--timezone", "UTC", "-", stdin=crontab)
    assert imported.returncode == 0, imported.stderr
    assert "MAILTO=ops@example.com: added the e-mail channel mailto-ops-example-com-" in imported.stderr
    [channel] = cli.json("channels", "list")
    assert channel["origin"] == "crontab"

    clock = FakeClock(datetime.now(UTC))  # the import scheduled the job from the real now
    with Scheduler(cli.db_url, clock=clock) as scheduler:
        clock.advance(timedelta(minutes=1, seconds=1))
        scheduler.run_pending()
        scheduler.deliver_alerts()

    [message] = mail.messages
    assert message["To"] == "ops@example.com"
    assert message["Subject"] == "[cronkeeper] echo hello from cron: wrote output"
    body = message.get_body(("html",))
    assert body is not None
    assert "hello from cron" in body.get_content()
