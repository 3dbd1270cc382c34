"""Crontab lines to job definitions: what cron does is kept, what cannot be kept is said."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronkeeper.exceptions import ValidationError
from cronkeeper.importers.crontab import parse_crontab
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
    assert job["timezone"] == "UTC"  # no CRON_TZ: the zone the caller gives (the host's), UTC by default
    assert job["tags"] == ["crontab"]


def test_cron_tz_applies_to_the_lines_after_it_and_aliases_are_kept() -> None:
    jobs = _by_line()
    assert jobs[13]["timezone"] == "Europe/Paris"
    assert jobs[13]["cron"] == "30 8 * * 1-5"
    assert jobs[14]["cron"] == "@hourly"
    assert jobs[14]["command"] == ["/bin/bash", "-c", "curl -fsS https://example.com/ping"]


def test_lines_that_cannot_be_kept_are_listed_with_the_reason() -> None:
    skipped = {item.line: item.reason for item in parse_crontab(CRONTAB).skipped}
    assert 5 not in skipped  # MAILTO is translated
    assert "line 9" in skipped[10]  # the same job twice
    assert "boot" in skipped[15]
    assert "standard input" in skipped[16]


def test_mailto_becomes_a_channel_for_the_lines_after_it_and_an_empty_one_silences() -> None:
    text = (
        "0 1 * * * before\nMAILTO=ops@example.com, dev@example.com\n0 2 * * * after\n"
        'MAILTO=""\n0 3 * * * quiet\n'
    )
    parsed = parse_crontab(text)
    jobs = dict(parsed.jobs)
    [(name, addresses)] = parsed.mail_channels.items()
    assert addresses == "ops@example.com,dev@example.com"
    assert name.startswith("mailto-ops-example-com-dev-example-com-")
    assert "notify" not in jobs[1]
    assert jobs[3]["notify"] == [name]
    assert "notify_on" not in jobs[3]
    assert jobs[5]["notify"] == []
    assert dict(parse_crontab(text, mail_output=True).jobs)[3]["notify_on"] == ["output"]


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


# Debian's /etc/crontab as shipped: the fields, the user column included, are separated by tabs.
DEBIAN_ETC_CRONTAB = (
    "# /etc/crontab: system-wide crontab (Debian's, as shipped; fields separated by tabs)\n"
    "SHELL=/bin/sh\n"
    "PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
    "\n"
    "# Example of job definition:\n"
    "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
    "25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }\n"
    "47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }\n"
    "52 6\t1 * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }\n"
)


def test_a_tab_after_the_user_column_keeps_the_whole_command() -> None:
    parsed = parse_crontab(DEBIAN_ETC_CRONTAB, system=True)
    commands = {line: job["command"][-1] for line, job in parsed.jobs}
    assert commands == {
        6: "cd / && run-parts --report /etc/cron.hourly",
        7: "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }",
        8: "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }",
        9: "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }",
    }
    assert [job["cron"] for _, job in parsed.jobs] == ["17 * * * *", "25 6 * * *", "47 6 * * 7", "52 6 1 * *"]
    assert parse_crontab("@daily\troot\t/usr/bin/x -v\n", system=True).jobs[0][1]["command"][-1] == (
        "/usr/bin/x -v"
    )


def test_the_user_a_system_line_ran_as_is_listed_as_not_translated() -> None:
    parsed = parse_crontab(DEBIAN_ETC_CRONTAB, system=True)
    assert [(note.line, note.reason) for note in parsed.notes] == [
        (line, "not translated: runs as the scheduler's user, not root") for line in (6, 7, 8, 9)
    ]
    assert parsed.skipped == []
    assert parse_crontab("0 3 * * * backup\n").notes == []


def test_lines_without_cron_tz_run_in_the_given_zone_and_tz_only_reaches_the_environment() -> None:
    text = "TZ=Asia/Tokyo\n0 3 * * * backup\nCRON_TZ=Europe/Paris\n0 4 * * * report\n"
    jobs = dict(parse_crontab(text, timezone="America/New_York").jobs)
    assert jobs[2]["timezone"] == "America/New_York"  # cron runs it at 03:00 host time: TZ does not move it
    assert jobs[2]["env"] == {"TZ": "Asia/Tokyo"}  # but the command sees TZ, as under cron
    assert jobs[4]["timezone"] == "Europe/Paris"


def test_the_id_does_not_depend_on_the_environment_or_its_order() -> None:
    line = "0 3 * * * /usr/local/bin/backup.sh\n"
    ((_, bare),) = parse_crontab(line).jobs
    ((_, with_path),) = parse_crontab("PATH=/usr/local/bin:/usr/bin:/bin\n" + line).jobs
    ((_, one),) = parse_crontab("A=1\nB=2\n" + line).jobs
    ((_, other),) = parse_crontab("B=2\nA=1\n" + line).jobs
    assert bare["id"] == with_path["id"] == one["id"] == other["id"]
    assert with_path["env"] == {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    ((_, paris),) = parse_crontab(line, timezone="Europe/Paris").jobs
    ((_, other_command),) = parse_crontab("0 3 * * * /usr/local/bin/backup.sh --full\n").jobs
    assert len({bare["id"], paris["id"], other_command["id"]}) == 3
