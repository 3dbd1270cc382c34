"""The rules of incidents and alerts, the notification options, channel masking and the SMTP_* channel."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from cronkeeper.alerts.channels import check_url, mask, scrub
from cronkeeper.alerts.messages import Renderer
from cronkeeper.config import email_url, notify_config
from cronkeeper.exceptions import ConfigError, ValidationError
from cronkeeper.incidents import IncidentState, NotifyPolicy, judge, resolve
from cronkeeper.models import AlertKind, LongRunning, NotifyOptions, RunStatus
from cronkeeper.specs.validate import long_running_of, notify_options

OPS = NotifyPolicy(channels=("ops",))
FAILED, SUCCEEDED = RunStatus.FAILED, RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("status", "before", "policy", "after", "alert"),
    [
        (FAILED, None, OPS, IncidentState(1, True), AlertKind.FAILED),
        (FAILED, IncidentState(1, True), OPS, IncidentState(2, True), None),
        (RunStatus.LOST, None, OPS, IncidentState(1, True), AlertKind.LOST),
        (FAILED, None, NotifyPolicy(("ops",), after=3), IncidentState(1, False), None),
        (
            FAILED,
            IncidentState(2, False),
            NotifyPolicy(("ops",), after=3),
            IncidentState(3, True),
            AlertKind.FAILED,
        ),
        (
            FAILED,
            IncidentState(5, True),
            NotifyPolicy(("ops",), every_failure=True),
            IncidentState(6, True),
            AlertKind.FAILED,
        ),
        (FAILED, None, None, IncidentState(1, False), None),
        (FAILED, None, NotifyPolicy(("ops",), on=frozenset({AlertKind.LOST})), IncidentState(1, False), None),
        (SUCCEEDED, IncidentState(3, True), OPS, None, AlertKind.RECOVERED),
        (SUCCEEDED, IncidentState(3, False), OPS, None, None),
        (
            SUCCEEDED,
            None,
            NotifyPolicy(("ops",), on=frozenset({AlertKind.SUCCEEDED})),
            None,
            AlertKind.SUCCEEDED,
        ),
        (SUCCEEDED, IncidentState(1, True), None, None, None),
        (RunStatus.CANCELLED, IncidentState(1, True), OPS, IncidentState(1, True), None),
        (RunStatus.SKIPPED, None, OPS, None, None),
        (RunStatus.MISSED, None, OPS, IncidentState(1, True), AlertKind.MISSED),
        (RunStatus.MISSED, IncidentState(1, True), OPS, IncidentState(2, True), None),
    ],
)
def test_an_outcome_moves_the_incident_and_alerts_once(
    status: RunStatus,
    before: IncidentState | None,
    policy: NotifyPolicy | None,
    after: IncidentState | None,
    alert: AlertKind | None,
) -> None:
    verdict = judge(status, before, policy)
    assert (verdict.incident, verdict.alert) == (after, alert)


def test_a_run_that_wrote_output_alerts_only_jobs_that_ask_and_never_twice() -> None:
    output = NotifyPolicy(("ops",), on=frozenset({AlertKind.OUTPUT, AlertKind.FAILED}))
    assert judge(SUCCEEDED, None, output, has_output=True).alert is AlertKind.OUTPUT
    assert judge(SUCCEEDED, None, output, has_output=False).alert is None
    assert judge(FAILED, None, output, has_output=True).alert is AlertKind.FAILED  # one message a run
    assert judge(SUCCEEDED, None, OPS, has_output=True).alert is None


def test_a_job_takes_the_defaults_for_what_it_leaves_unset() -> None:
    defaults = NotifyOptions(channels=("ops",), after=2)
    assert resolve(NotifyOptions(), defaults) == NotifyPolicy(("ops",), after=2)
    assert resolve(NotifyOptions(channels=()), defaults) is None
    assert resolve(NotifyOptions(every_failure=True), defaults) == NotifyPolicy(
        ("ops",), after=2, every_failure=True
    )
    assert resolve(NotifyOptions(), NotifyOptions()) is None


def test_notify_options_are_checked_naming_the_option() -> None:
    assert notify_options({"notify": "ops, chat", "notify_on": ["failed"]}) == NotifyOptions(
        channels=("ops", "chat"), on=frozenset({AlertKind.FAILED})
    )
    with pytest.raises(ValidationError, match="notify_on: 'broken' is not one of"):
        notify_options({"notify_on": ["broken"]})
    with pytest.raises(ValidationError, match="notify: channel names"):
        notify_options({"notify": ["no spaces"]})
    with pytest.raises(ValidationError, match="notify_after: must be from 1 to 1000"):
        notify_options({"notify_after": 0})
    with pytest.raises(ValidationError, match="notify_every_failure: must be true or false"):
        notify_options({"notify_every_failure": "yes"})


def test_long_running_is_a_duration_or_a_multiple_of_the_median() -> None:
    assert long_running_of("30m") == LongRunning(after=timedelta(minutes=30))
    assert long_running_of("2.5x") == LongRunning(times_median=2.5)
    assert long_running_of(None) is None
    for bad in ("1x", "0x", "x", "-5m", "soon"):
        with pytest.raises(ValidationError, match="long_running"):
            long_running_of(bad)


def test_a_channel_url_is_shown_masked_and_its_secrets_scrubbed_from_errors() -> None:
    url = "json://deploy:hunter2secret@hooks.example.com/alert"
    assert "hunter2secret" not in mask(url)
    assert "hooks.example.com" in mask(url)
    assert (
        scrub("login hunter2secret refused by hooks.example.com", url)
        == "login **** refused by hooks.example.com"
    )


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("json://hooks.example.com/in?+Authorization=Bearer%20sk_live_SUPERSECRET", "sk_live_SUPERSECRET"),
        ("json://hooks.example.com/in?:api_key=k3y-v4lue-123", "k3y-v4lue-123"),
        ("json://hooks.example.com/in?-token=t0k3n-v4lue", "t0k3n-v4lue"),
        ("json://hooks.example.com/services/T0/B0/pathSECRETtoken42", "pathSECRETtoken42"),
        ("json://hook.example.com/hooks/abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstuvwx"),
        ("json://hook.example.com/hooks/012345678901234567890123", "012345678901234567890123"),
        ("json://hook.example.com/hooks/8f14e45fceea167", "8f14e45fceea167"),
        ("json://S3cretUserToken@hook.example.com/", "S3cretUserToken"),
        ("mailtos://alerts:Tr0ub4dor%263@smtp.example.com?to=ops@example.com", "Tr0ub4dor"),
    ],
)
def test_every_secret_part_of_a_url_is_masked_and_scrubbed(url: str, secret: str) -> None:
    assert secret not in mask(url)
    assert secret not in scrub(f"the service said: {unquote(url)} and {secret}", url)


@pytest.mark.parametrize(
    "url",
    [
        "ntfy://alerts:hunter/22@ntfy.internal.example/ops-alerts",  # would go to the public ntfy.sh
        "json://alerts:hunter@22@hooks.internal.example/hook",  # would send to the host "22"
    ],
)
def test_a_url_apprise_would_not_read_as_written_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="not read as written"):
        check_url(url)
    assert check_url("ntfys://alerts:hunter%2F22@ntfy.internal.example/ops-alerts")


@pytest.mark.parametrize(
    "url",
    [
        "tgram://123456789:ABCdefGhIJKlmNoPQRstuVWxyz/12345",
        "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
        "mailtos://alerts:p%40ss@smtp.example.com:587?to=ops@example.com",
    ],
)
def test_the_documented_forms_of_common_services_are_accepted(url: str) -> None:
    assert check_url(url) == url


def test_recovered_alone_is_refused_as_it_could_never_be_sent() -> None:
    with pytest.raises(ValidationError, match="recovered needs one of"):
        notify_options({"notify_on": ["recovered"]})
    assert notify_options({"notify_on": ["missed", "recovered"]}).on == frozenset(
        {AlertKind.MISSED, AlertKind.RECOVERED}
    )


def test_a_url_no_service_understands_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        check_url("nosuchservice://user:secret@host")
    assert "secret" not in str(caught.value)
    assert caught.value.field == "url"


def test_the_email_channel_comes_from_the_smtp_variables() -> None:
    env = {
        "SMTP_HOST": "smtp.example.com",
        "SMTP_USER": "alerts",
        "SMTP_PASSWORD": "p@ss word",
        "SMTP_FROM": "cron@example.com",
        "SMTP_TO": "a@example.com, b@example.com",
    }
    url = email_url(env)
    assert url == (
        "mailtos://alerts:p%40ss%20word@smtp.example.com:587?smtp=smtp.example.com&from=cron@example.com"
        "&to=a@example.com,b@example.com&mode=starttls"
    )
    tls = email_url({**env, "SMTP_TLS": "true"})
    assert tls is not None
    assert tls.startswith("mailtos://alerts:p%40ss%20word@smtp.example.com:465?")
    assert email_url({}) is None
    assert email_url({"SMTP_HOST": "h", "SMTP_FROM": "a@b"}) is None, "MAILTO gives its own recipients"
    with pytest.raises(ValidationError, match="SMTP_FROM"):
        email_url({"SMTP_HOST": "h", "SMTP_TO": "a@b"})
    spaced = email_url({**env, "SMTP_TO": "a@example.com b@example.com", "SMTP_FROM": "Cron <c@example.com>"})
    assert spaced is not None
    assert "to=a@example.com,b@example.com" in spaced
    assert "from=Cron%20<c@example.com>" in spaced


def test_the_notify_table_gives_channels_defaults_and_delivery(tmp_path: Path) -> None:
    config = notify_config(
        {"to": ["ops"], "after": 2, "window": "5m", "channels": {"ops": "json://h/${HOOK_PATH:-x}"}},
        {"HOOK_PATH": "alerts"},
        public_url="https://cron.example.com",
    )
    assert config.channels == {"ops": "json://h/alerts"}
    assert config.defaults == NotifyOptions(channels=("ops",), after=2)
    assert config.delivery.window.total_seconds() == 300
    assert config.delivery.public_url == "https://cron.example.com"
    assert notify_config({}, {}).defaults is None
    with pytest.raises(ConfigError, match=r"notify\.channels\.bad name"):
        notify_config({"channels": {"bad name": "json://h"}}, {})
    with pytest.raises(ConfigError, match=r"notify\.colour: unknown setting"):
        notify_config({"colour": "red"}, {})


def test_messages_are_one_line_titles_and_escaped_html() -> None:
    facts = {
        "kind": "failed",
        "job_id": "report",
        "job_name": "Report\nBcc: victim@example.com",
        "run_id": 7,
        "exit_code": 3,
        "error": "<script>alert(1)</script>",
        "scheduled_for": "2026-03-02T08:00:00+00:00",
    }
    message = Renderer(public_url="https://cron.example.com/").render([facts])
    assert message.title == "[cronkeeper] Report Bcc: victim@example.com: failed (exit code 3)"
    assert "\n" not in message.title
    assert "&lt;script&gt;" in message.html
    assert "<script>" in message.text
    assert "https://cron.example.com/runs/7" in message.text


def test_a_folder_of_templates_overrides_the_built_in_ones(tmp_path: Path) -> None:
    (tmp_path / "title.txt").write_text("CRON {{ alerts[0].job_id }} {{ alerts[0].kind }}")
    message = Renderer(templates=tmp_path).render([{"kind": "failed", "job_id": "x"}])
    assert message.title == "CRON x failed"
    assert "x" in message.text


def test_a_template_can_name_every_alert_of_a_flood(tmp_path: Path) -> None:
    """Beyond the alerts listed in full, the rest are counted by job and kind, and still named by id."""
    (tmp_path / "body.txt").write_text(
        "{% for a in alerts %}{{ a.alert_id }} {% endfor %}"
        "{% for m in more %}{% for i in m.alert_ids %}{{ i }} {% endfor %}{% endfor %}"
    )
    facts = [{"kind": "failed", "job_id": "x", "alert_id": number} for number in range(1, 26)]
    message = Renderer(templates=tmp_path).render(facts)
    assert message.text.split() == [str(number) for number in range(1, 26)]
