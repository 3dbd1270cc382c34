"""``cronkeeper import-crontab``, run for real: from a file and from standard input, dry run, re-import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cronkeeper import Scheduler
from tests.e2e.test_cli import Cli, make_cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


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
    assert set(reasons) == {2, 7, 8}
    assert reasons[8].startswith("cron:")
    with Scheduler(cli.db_url) as scheduler:
        assert scheduler.jobs() == []


def test_import_from_standard_input_and_again_changes_nothing(cli: Cli) -> None:
    first = cli("import-crontab", "-", stdin=CRONTAB)
    assert first.returncode == 0, first.stderr
    assert "added 2, updated 0, unchanged 0, not imported 3" in first.stderr
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
