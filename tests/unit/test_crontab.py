"""Crontab lines to job definitions: what cron does is kept, what cannot be kept is said."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronkeeper.crontab import parse_crontab
from cronkeeper.exceptions import ValidationError
from cronkeeper.specs import build_spec

CRONTAB = r"""
SHELL=/bin/bash
PATH=/usr/local/bin:/usr/bin:/bin
HOME = "/home/app"
MAILTO=ops@example.com

# Nightly database dump
# (keep 7 days)
0 3 * * * pg_dump app > /backups/app-$(date +\%F).sql
0 3 * * *  pg_dump app > /backups/app-$(date +\%F).sql

CRON_TZ=Europe/Paris
30 8 * * 1-5 /opt/app/bin/report --daily
@hourly   curl -fsS https://example.com/ping
@reboot /opt/app/bin/warmup
*/5 * * * * echo hi | mail -s test%body
0 0 30 2 * /never
"""


def _by_line() -> dict[int, dict[str, object]]:
    return dict(parse_crontab(CRONTAB).jobs)


def test_each_line_becomes_a_command_run_by_the_crontabs_shell_with_its_environment() -> None:
    job = _by_line()[9]
    assert job["cron"] == "0 3 * * *"
    assert job["command"] == ["/bin/bash", "-c", "pg_dump app > /backups/app-$(date +%F).sql"]
    assert job["env"] == {"SHELL": "/bin/bash", "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/app"}
    assert job["cwd"] == "/home/app"
    assert job["description"] == "Nightly database dump (keep 7 days)"
    assert "timezone" not in job
    assert job["tags"] == ["crontab"]


def test_cron_tz_applies_to_the_lines_after_it_and_aliases_are_kept() -> None:
    jobs = _by_line()
    assert jobs[13]["timezone"] == "Europe/Paris"
    assert jobs[13]["cron"] == "30 8 * * 1-5"
    assert jobs[14]["cron"] == "@hourly"
    assert jobs[14]["command"] == ["/bin/bash", "-c", "curl -fsS https://example.com/ping"]


def test_lines_that_cannot_be_kept_are_listed_with_the_reason() -> None:
    skipped = {item.line: item.reason for item in parse_crontab(CRONTAB).skipped}
    assert "e-mail" in skipped[5]
    assert "line 9" in skipped[10]  # the same job twice
    assert "boot" in skipped[15]
    assert "standard input" in skipped[16]


def test_ids_are_stable_and_differ_by_what_the_job_does() -> None:
    first, again = parse_crontab(CRONTAB).jobs, parse_crontab(CRONTAB).jobs
    assert [job["id"] for _, job in first] == [job["id"] for _, job in again]
    ids = [str(job["id"]) for _, job in first]
    assert len(set(ids)) == len(ids)
    assert ids[0].startswith("crontab-pg-dump-")


def test_every_translated_job_is_valid_except_a_schedule_that_never_fires() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    jobs = dict(parse_crontab(CRONTAB).jobs)
    never = jobs.pop(17)
    for job in jobs.values():
        build_spec(job, now=now)
    with pytest.raises(ValidationError) as caught:
        build_spec(never, now=now)
    assert caught.value.field == "cron"


def test_a_system_crontab_has_a_user_column() -> None:
    parsed = parse_crontab("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n", system=True)
    ((_, job),) = parsed.jobs
    assert job["command"] == ["/bin/sh", "-c", "cd / && run-parts --report /etc/cron.hourly"]
    assert job["description"] == "(ran as root in the system crontab)"


def test_a_schedule_without_a_command_is_listed() -> None:
    parsed = parse_crontab("0 3 * * *\n@daily\n")
    assert [item.reason for item in parsed.skipped] == ["no command after the schedule"] * 2
