"""Alerts from the command line and from a real ``serve`` process: channels declared in cronkeeper.toml,
a failing command job, a real SMTP server and a real webhook receiver on localhost."""

from __future__ import annotations

import json
from pathlib import Path

from cronkeeper import NotifyOptions, Scheduler
from tests.e2e.test_cli import Cli, serve
from tests.sinks import MailSink, WebhookSink


def test_channels_are_added_listed_masked_tested_and_removed(cli: Cli, webhook: WebhookSink) -> None:
    cli.ok("db", "upgrade")
    secret_url = webhook.url("hook").replace("json://", "json://deploy:s3cr3tpass@")
    assert "s3cr3tpass" not in cli.ok("channels", "add", "hook", secret_url)
    assert "s3cr3tpass" not in cli.ok("channels", "list")
    [listed] = cli.json("channels", "list")
    assert (listed["name"], listed["origin"]) == ("hook", "cli")
    assert "****" in listed["url"]

    assert cli.ok("channels", "test", "hook") == "channel hook: delivered\n"
    assert webhook.posts[0]["title"] == "[cronkeeper] test message to channel hook"

    webhook.status = 403
    error = cli.fails(1, "channels", "test", "hook")
    assert error.startswith("channel hook: not delivered:")
    assert "s3cr3tpass" not in error

    audit = cli.json("audit")
    assert "s3cr3tpass" not in json.dumps(audit)
    cli.ok("channels", "remove", "hook")
    assert cli.json("channels", "list") == []
    assert "channel 'hook' not found" in cli.fails(1, "channels", "remove", "hook")


def test_bad_channels_exit_2_naming_the_field_and_change_nothing(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    assert cli.fails(2, "channels", "add", "hook", "nosuch://x:pw@y") == (
        "error: url: no notification service understands this nosuch:// URL\n"
    )
    assert "error: name:" in cli.fails(2, "channels", "add", "no spaces", "json://h/x")
    assert "error: notify_on:" in cli.fails(
        2, "jobs", "add", "j", "--cron", "@daily", "--command", "true", "--notify-on", "sometimes"
    )
    assert cli.json("channels", "list") == []


def test_serve_mails_a_failing_job_through_the_channels_of_its_file(
    cli: Cli, mail: MailSink, webhook: WebhookSink, tmp_path: Path
) -> None:
    (tmp_path / "cronkeeper.toml").write_text(
        f"""
[web]
public_url = "https://cron.example.com"

[notify]
to = ["hook"]
window = "0s"

[notify.channels]
hook = "{webhook.url("from-config")}"

[[jobs]]
id = "broken"
cron = "0 0 1 1 *"
command = ["sh", "-c", "echo 'the end of the output'; exit 3"]
notify = ["email", "hook"]

[[jobs]]
id = "default"
cron = "0 0 1 1 *"
command = ["false"]
""",
        encoding="utf-8",
    )
    cli.env.update(mail.env())
    served = serve(
        cli, lambda: _triggered(cli) and len(mail.messages) == 1 and _mentions(webhook, "broken", "default")
    )
    assert served.returncode == 0, served.log

    [message] = mail.messages
    assert message["Subject"] == "[cronkeeper] broken: failed (exit code 3)"
    assert message["To"] == "ops@example.com"
    html = message.get_body(("html",))
    assert html is not None
    assert "the end of the output" in html.get_content()
    assert "https://cron.example.com/runs/" in html.get_content()
    # One message each, or one for both when they were due together: a channel gets no flood.
    assert len(webhook.posts) in (1, 2)
    assert set(webhook.paths) == {"/from-config"}

    listed = cli.json("notifications", "list")
    assert sorted((a["job_id"], a["channel"], a["status"]) for a in listed) == [
        ("broken", "email", "delivered"),
        ("broken", "hook", "delivered"),
        ("default", "hook", "delivered"),
    ]
    channels = {channel["name"]: channel for channel in cli.json("channels", "list")}
    assert sorted(channels) == ["email", "hook"]
    assert channels["hook"]["origin"].startswith("config ")


def _mentions(webhook: WebhookSink, *job_ids: str) -> bool:
    said = json.dumps(webhook.posts)
    return all("failed (exit code" in said and job_id in said for job_id in job_ids)


_TRIGGERED: dict[str, bool] = {}


def _triggered(cli: Cli) -> bool:
    """Once serve has synced the file's jobs, run both now (once)."""
    if not _TRIGGERED.get(str(cli.cwd)):
        listed = cli("jobs", "list", "--json")
        if listed.returncode != 0 or len(json.loads(listed.stdout)) < 2:
            return False
        cli.ok("jobs", "trigger", "broken")
        cli.ok("jobs", "trigger", "default")
        _TRIGGERED[str(cli.cwd)] = True
    return True


def test_the_files_defaults_go_when_the_file_drops_them_and_missing_channels_are_named(
    cli: Cli, webhook: WebhookSink, tmp_path: Path
) -> None:
    config = tmp_path / "cronkeeper.toml"
    jobs = '[[jobs]]\nid = "nightly"\ncron = "0 3 * * *"\ncommand = ["true"]\nnotify = ["nosuch"]\n'
    config.write_text(f'[notify]\nto = ["ops", "gone"]\n[notify.channels]\nops = "{webhook.url()}"\n{jobs}')
    first = serve(cli)
    assert first.returncode == 0, first.log
    assert "notify.to: there is no channel named 'gone'" in first.log
    assert "job nightly: notify: no channel named 'nosuch'" in first.log
    with Scheduler(cli.db_url, migrate=False) as reader:
        assert reader.alerts.defaults().channels == ("ops", "gone")

    config.write_text(jobs)
    second = serve(cli)
    assert second.returncode == 0, second.log
    with Scheduler(cli.db_url, migrate=False) as reader:
        assert reader.alerts.defaults() == NotifyOptions()
        assert reader.alerts.list_channels() == []


def test_a_default_only_a_job_may_choose_is_refused_naming_the_file_before_anything_is_written(
    cli: Cli, webhook: WebhookSink, tmp_path: Path
) -> None:
    (tmp_path / "cronkeeper.toml").write_text(
        f'[notify]\non = ["failed", "succeeded"]\n[notify.channels]\nops = "{webhook.url()}"\n'
    )
    served = serve(cli)
    assert served.returncode == 2
    assert "cronkeeper.toml: notify.on: succeeded and output are chosen per job" in served.log
    assert not (tmp_path / "x.db").exists()
