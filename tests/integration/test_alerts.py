"""Alerts end to end on real parts: a SQLite file, a real SMTP server and a real HTTP server on localhost,
the scheduler stepped on a fake clock."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from cronkeeper import FakeClock, Scheduler
from cronkeeper.models import NotifyOptions
from cronkeeper.services.builtin_jobs import builtin_jobs
from cronkeeper.settings import DeliverySettings, MaintenanceSettings, ReportSettings
from tests.conftest import SchedulerFactory
from tests.sinks import MailSink, WebhookSink, wait_until

BROKEN: dict[str, bool] = {}


def flaky() -> None:
    """Fails while the test says the job is broken."""
    if BROKEN.get("flaky"):
        raise RuntimeError("disk full")


def step(scheduler: Scheduler, clock: FakeClock, minutes: int = 1) -> None:
    clock.advance(timedelta(minutes=minutes))
    scheduler.run_pending()
    scheduler.deliver_alerts()


@pytest.fixture(autouse=True)
def healthy() -> None:
    BROKEN.clear()


def test_a_failing_job_mails_once_per_incident_and_once_on_recovery(
    scheduler: Scheduler, clock: FakeClock, mail: MailSink
) -> None:
    scheduler.alerts.add_channel("ops", mail.url())
    scheduler.add_job(flaky, id="flaky", every="1m", notify=["ops"])
    step(scheduler, clock)
    BROKEN["flaky"] = True
    for _ in range(3):
        step(scheduler, clock)
    BROKEN["flaky"] = False
    step(scheduler, clock)
    step(scheduler, clock)
    BROKEN["flaky"] = True
    step(scheduler, clock)

    assert mail.subjects() == [
        "[cronkeeper] flaky: failed",
        "[cronkeeper] flaky: recovered",
        "[cronkeeper] flaky: failed",
    ]
    body = mail.messages[0].get_body(("html",))
    assert body is not None
    assert "disk full" in body.get_content()
    recovered = [a for a in scheduler.alerts.list_alerts() if a.kind == "recovered"]
    assert recovered[0].facts["failures"] == 3


def test_a_failure_retried_to_success_alerts_nobody(
    scheduler: Scheduler, clock: FakeClock, mail: MailSink
) -> None:
    scheduler.alerts.add_channel("ops", mail.url())
    scheduler.add_job(
        flaky, id="flaky", every="1m", notify=["ops"], max_retries=1, retry_base="1s", retry_jitter=0
    )
    BROKEN["flaky"] = True
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    BROKEN["flaky"] = False
    step(scheduler, clock, 0)
    clock.advance(timedelta(seconds=2))
    scheduler.run_pending()
    scheduler.deliver_alerts()

    assert [run.status for run in scheduler.runs(job_id="flaky")] == ["succeeded", "failed"]
    assert mail.messages == []
    assert scheduler.alerts.list_alerts() == []


def test_after_n_failures_alerts_on_the_nth_and_every_failure_alerts_each(
    scheduler: Scheduler, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler.alerts.add_channel("hook", webhook.url())
    scheduler.add_job(flaky, id="flaky", every="2m", notify="hook", notify_after=3)
    scheduler.add_job(
        "tests.integration.test_alerts:flaky", id="each", every="2m", notify="hook", notify_every_failure=True
    )
    BROKEN["flaky"] = True
    for _ in range(4):
        step(scheduler, clock, 2)

    titles = [post["title"] for post in webhook.posts]
    # The third round has both jobs failing at once: one grouped message to the channel.
    assert titles.count("[cronkeeper] each: failed") == 3
    assert sum("flaky failed" in title or title == "[cronkeeper] flaky: failed" for title in titles) == 1
    kinds = sorted((a.job_id, a.kind) for a in scheduler.alerts.list_alerts())
    assert kinds == [("each", "failed")] * 4 + [("flaky", "failed")]


def test_the_defaults_reach_jobs_that_name_no_channel(
    scheduler: Scheduler, clock: FakeClock, mail: MailSink
) -> None:
    scheduler.alerts.add_channel("ops", mail.url())
    scheduler.alerts.set_defaults(NotifyOptions(channels=("ops",)))
    scheduler.add_job(flaky, id="flaky", every="1m")
    scheduler.add_job(flaky, id="quiet", every="1m", notify=[])
    BROKEN["flaky"] = True
    step(scheduler, clock)

    assert mail.subjects() == ["[cronkeeper] flaky: failed"]


def test_a_success_alert_is_per_job_opt_in(
    scheduler: Scheduler, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler.alerts.add_channel("hook", webhook.url())
    scheduler.add_job(flaky, id="flaky", every="1m", notify="hook", notify_on=["succeeded"])
    step(scheduler, clock)

    assert [post["title"] for post in webhook.posts] == ["[cronkeeper] flaky: succeeded"]


def test_a_dead_channel_is_retried_with_backoff_then_given_up(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    delivery = DeliverySettings(
        window=timedelta(0), retry_base=timedelta(minutes=1), give_up_after=timedelta(minutes=10)
    )
    scheduler = make_scheduler(delivery=delivery)
    scheduler.alerts.add_channel("hook", webhook.url())
    webhook.status = 500
    scheduler.add_job(flaky, id="flaky", every="1h", notify="hook")
    BROKEN["flaky"] = True
    step(scheduler, clock, 60)
    [alert] = scheduler.alerts.list_alerts()
    assert (alert.status, alert.attempts) == ("pending", 1)
    assert alert.due_at == clock.now() + timedelta(minutes=1)
    assert "500" in (alert.last_error or "") or alert.last_error

    for minutes in (1, 2, 4, 8):
        clock.advance(timedelta(minutes=minutes))
        scheduler.deliver_alerts()
    [alert] = scheduler.alerts.list_alerts()
    assert alert.status == "failed"
    assert len(alert.attempt_log) == alert.attempts == 5
    assert len(webhook.posts) == 5


def test_a_job_naming_a_missing_channel_fails_its_alert_visibly(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.add_job(flaky, id="flaky", every="1m", notify="nowhere")
    BROKEN["flaky"] = True
    step(scheduler, clock)

    [alert] = scheduler.alerts.list_alerts()
    assert alert.status == "failed"
    assert alert.last_error == "there is no channel named 'nowhere'"


def test_two_started_schedulers_deliver_each_alert_exactly_once(db_url: str, webhook: WebhookSink) -> None:
    """Both nodes run the courier on one database; each of ten jobs alerts its own channel once."""
    delivery = DeliverySettings(window=timedelta(0), poll_interval=0.05)
    nodes = [Scheduler(db_url, delivery=delivery) for _ in range(2)]
    try:
        first = nodes[0]
        for n in range(10):
            first.alerts.add_channel(f"c{n}", webhook.url(f"job-{n}"))
            first.add_job(command=["false"], id=f"job-{n}", cron="0 0 1 1 *", notify=[f"c{n}"])
        for node in nodes:
            node.start()
        for n in range(10):
            nodes[n % 2].trigger(f"job-{n}")
        wait_until(lambda: len(first.alerts.list_alerts(status="delivered")) == 10)
    finally:
        for node in nodes:
            node.close()

    assert sorted(webhook.paths) == sorted(f"/job-{n}" for n in range(10))


def test_a_hung_channel_delays_neither_runs_nor_the_shutdown(db_url: str, webhook: WebhookSink) -> None:
    webhook.delay = 3.0
    scheduler = Scheduler(db_url, delivery=DeliverySettings(window=timedelta(0), poll_interval=0.05))
    scheduler.alerts.add_channel("slow", webhook.url())
    scheduler.add_job(command=["false"], id="broken", cron="0 0 1 1 *", notify=["slow"])
    scheduler.add_job(command=["true"], id="fine", cron="0 0 1 1 *")
    scheduler.start()
    try:
        scheduler.trigger("broken")
        wait_until(lambda: scheduler.alerts.list_alerts(status="sending") != [])
        run_id = scheduler.trigger("fine")
        wait_until(lambda: scheduler.get_run(run_id).status == "succeeded")
        assert webhook.posts == [], "the run ended while the channel still hung"
    finally:
        scheduler.close()
    assert webhook.posts == [], "the scheduler stopped without waiting for the hung channel"
    wait_until(lambda: len(webhook.posts) == 1)  # what the channel took, late, stays taken


def test_fires_missed_during_an_outage_alert_once_and_the_catch_up_recovers(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler = make_scheduler(delivery=DeliverySettings(window=timedelta(0)))
    scheduler.alerts.add_channel("hook", webhook.url())
    scheduler.add_job(flaky, id="hourly", cron="0 * * * *", notify="hook")
    clock.advance(timedelta(hours=5, minutes=1))  # nothing ran meanwhile; now a scheduler starts
    scheduler.run_pending()
    scheduler.deliver_alerts()

    kinds = [alert.kind for alert in reversed(scheduler.alerts.list_alerts())]
    assert kinds == ["missed", "recovered"]
    [post] = webhook.posts  # due together: one message
    assert post["title"] == "[cronkeeper] 2 alerts: hourly missed, hourly recovered"
    assert "It had failed 1 time in a row" in post["message"]


def test_a_job_no_scheduler_starts_is_reported_missed_by_any_live_node(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    """The job's function lives only in a scheduler object that is gone; another node watches."""
    watcher = make_scheduler(delivery=DeliverySettings(window=timedelta(0)))
    watcher.alerts.add_channel("hook", webhook.url())
    owner = make_scheduler()
    owner.add_job(lambda: None, id="local", every="10m", notify="hook")
    owner.close()
    for _ in range(4):  # past the fire, its grace and the lease; looked at several times
        clock.advance(timedelta(minutes=5))
        watcher.run_pending()
        watcher.deliver_alerts()

    [post] = webhook.posts
    assert post["title"] == "[cronkeeper] local: missed its start"
    assert "only the scheduler object" in post["message"]
    assert watcher.runs(job_id="local") == []


GATE = threading.Event()
BEGAN = threading.Event()


def held() -> None:
    """Runs until the test lets it end."""
    BEGAN.set()
    GATE.wait(30)


def test_a_run_going_past_long_running_alerts_once(
    scheduler: Scheduler, clock: FakeClock, webhook: WebhookSink
) -> None:
    GATE.clear()
    BEGAN.clear()
    scheduler.alerts.add_channel("hook", webhook.url())
    scheduler.add_job(held, id="slow", every="1h", long_running="30m", notify="hook")
    try:
        clock.advance(timedelta(hours=1))
        scheduler.run_pending(wait=False)
        # Its start is stamped by the worker on the clock as it is then: not once the test moved it on.
        assert BEGAN.wait(10)
        for _ in range(3):
            clock.advance(timedelta(minutes=20))
            scheduler.run_pending(wait=False)
            scheduler.deliver_alerts()
    finally:
        GATE.set()
    scheduler.run_pending()

    [post] = webhook.posts
    assert post["title"] == "[cronkeeper] slow: still running"
    assert "still running after 40m00s (long past 30m00s)" in post["message"]


def test_the_weekly_report_gives_the_figures_of_the_runs_table(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler = make_scheduler(
        delivery=DeliverySettings(window=timedelta(0), public_url="https://cron.example")
    )
    scheduler.alerts.add_channel("hook", webhook.url())
    scheduler.add_job(flaky, id="flaky", every="6h")
    scheduler.add_job(flaky, id="idle", cron="0 0 1 1 *")
    report = builtin_jobs(MaintenanceSettings(enabled=False), sqlite=True, report=ReportSettings("hook"))
    scheduler.sync_jobs(report, origin="builtin")
    for hours in range(6, 7 * 24, 6):  # a week of runs, one in four failing
        BROKEN["flaky"] = hours % 24 == 6
        step(scheduler, clock, 60 * 6)
    clock.set(datetime.fromisoformat("2026-03-09T08:00:00+00:00"))  # Monday 08:00
    scheduler.run_pending()
    scheduler.deliver_alerts()

    [post] = [post for post in webhook.posts if post["title"].startswith("[cronkeeper] report")]
    week = datetime.fromisoformat("2026-03-02T08:00:00+00:00"), clock.now()
    runs = scheduler.runs(job_id="flaky", limit=1000, since=week[0], until=week[1])
    failed = [run for run in runs if run.status == "failed"]
    assert (len(runs), len(failed)) == (27, 7)
    assert post["title"] == f"[cronkeeper] report, last 7d: {len(runs)} runs, {len(failed)} failed"
    assert f"flaky (flaky): {len(runs)} runs, {len(failed)} failed" in post["message"]
    assert f"last failure: run {failed[0].id}" in post["message"]
    assert f"https://cron.example/runs/{failed[0].id}" in post["message"]
    assert post["message"].endswith("Did not run at all: idle")
    [made] = scheduler.runs(job_id="cronkeeper.report")
    assert made.status == "succeeded"


def test_a_check_in_job_that_does_not_report_is_alerted_missed(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler = make_scheduler(delivery=DeliverySettings(window=timedelta(0)))
    scheduler.alerts.add_channel("hook", webhook.url())
    scheduler.add_job(id="external", every="1h", checkin=True, notify="hook")
    for _ in range(6):  # 90 minutes, looked at every quarter of an hour
        clock.advance(timedelta(minutes=15))
        scheduler.run_pending()
        scheduler.deliver_alerts()
    assert scheduler.runs(job_id="external") == []  # cronkeeper never runs it

    scheduler.run_service.check_in("external", "success")
    scheduler.deliver_alerts()

    titles = [post["title"] for post in webhook.posts]
    assert titles == ["[cronkeeper] external: missed its start", "[cronkeeper] external: recovered"]
    assert "no check-in" in webhook.posts[0]["message"]


def test_a_flood_to_one_channel_is_one_message_and_holds_up_no_other(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler = make_scheduler()
    scheduler.alerts.add_channel("busy", webhook.url("busy"))
    scheduler.alerts.add_channel("quiet", webhook.url("quiet"))
    BROKEN["flaky"] = True
    for n in range(30):
        scheduler.add_job(
            flaky, id=f"job-{n:02d}", cron="0 0 1 1 *", notify="busy", notify_every_failure=True
        )
    scheduler.add_job(flaky, id="lonely", cron="0 0 1 1 *", notify="quiet")
    for n in range(30):
        scheduler.trigger(f"job-{n:02d}")
    scheduler.run_pending()
    scheduler.deliver_alerts()  # 30 alerts to "busy": one message
    clock.advance(timedelta(seconds=30))
    scheduler.trigger("job-00")  # within busy's window: it waits...
    scheduler.trigger("lonely")  # ...and holds up nothing else
    scheduler.run_pending()
    scheduler.deliver_alerts()
    assert webhook.paths == ["/busy", "/quiet"]

    clock.advance(timedelta(seconds=30))
    scheduler.deliver_alerts()
    assert webhook.paths == ["/busy", "/quiet", "/busy"]
    flood = webhook.posts[0]
    assert flood["title"].startswith("[cronkeeper] 30 alerts: job-")
    assert flood["message"].count(": failed") == 20
    assert "And 10 more: job-" in flood["message"]
    assert scheduler.alerts.list_alerts(status="pending") == []


def test_each_alert_keeps_its_own_backoff_and_limit_when_sent_together(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    delivery = DeliverySettings(
        window=timedelta(0), retry_base=timedelta(minutes=1), give_up_after=timedelta(minutes=10)
    )
    scheduler = make_scheduler(delivery=delivery)
    scheduler.alerts.add_channel("hook", webhook.url())
    webhook.status = 500
    BROKEN["flaky"] = True
    scheduler.add_job(flaky, id="old", cron="0 0 1 1 *", notify="hook")
    scheduler.add_job(flaky, id="new", cron="0 0 1 1 *", notify="hook")
    scheduler.trigger("old")
    scheduler.run_pending()
    scheduler.deliver_alerts()
    for minutes in (1, 2, 4):
        clock.advance(timedelta(minutes=minutes))
        scheduler.deliver_alerts()
    scheduler.trigger("new")
    scheduler.run_pending()
    clock.advance(timedelta(minutes=8))  # old's retry is due, and past its limit; new is a minute old
    scheduler.deliver_alerts()

    by_job = {alert.job_id: alert for alert in scheduler.alerts.list_alerts()}
    assert (by_job["old"].status, by_job["new"].status) == ("failed", "pending")
    assert by_job["new"].due_at == clock.now() + timedelta(minutes=1)


def test_a_removed_job_leaves_no_incident_to_a_new_job_of_its_id(
    scheduler: Scheduler, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler.alerts.add_channel("hook", webhook.url())
    BROKEN["flaky"] = True
    scheduler.add_job(flaky, id="report", every="1h", notify="hook")
    step(scheduler, clock, 60)
    scheduler.remove_job("report")
    scheduler.add_job(flaky, id="report", every="1h", notify="hook")
    step(scheduler, clock, 60)

    assert [post["title"] for post in webhook.posts] == ["[cronkeeper] report: failed"] * 2


def test_every_missed_check_in_counts_so_notify_after_and_every_failure_hold(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler = make_scheduler(delivery=DeliverySettings(window=timedelta(0)))
    scheduler.alerts.add_channel("hook", webhook.url())
    scheduler.add_job(id="after-two", cron="0 * * * *", checkin=True, notify="hook", notify_after=2)
    scheduler.add_job(id="each", cron="0 * * * *", checkin=True, notify="hook", notify_every_failure=True)
    for _ in range(4 * 4):  # four hours, looked at every quarter of an hour
        clock.advance(timedelta(minutes=15))
        scheduler.run_pending()
        scheduler.deliver_alerts()

    kinds = sorted((alert.job_id, alert.kind) for alert in scheduler.alerts.list_alerts())
    assert kinds == [("after-two", "missed")] + [("each", "missed")] * 3


def test_an_interval_check_in_job_reporting_on_time_never_alerts(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler = make_scheduler(delivery=DeliverySettings(window=timedelta(0)))
    scheduler.alerts.add_channel("hook", webhook.url())
    clock.advance(timedelta(minutes=17))  # added at :17, reported on the hour
    scheduler.add_job(id="hourly", every="1h", checkin=True, notify="hook")
    for hour in range(6):
        clock.set(datetime.fromisoformat(f"2026-03-02T{9 + hour:02d}:00:00+00:00"))
        scheduler.run_service.check_in("hourly", "success")
        for _ in range(4):
            clock.advance(timedelta(minutes=14))
            scheduler.run_pending()
    scheduler.deliver_alerts()
    assert webhook.posts == []


def test_a_check_in_started_and_never_ended_times_out_or_runs_long(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler = make_scheduler(delivery=DeliverySettings(window=timedelta(0)))
    scheduler.alerts.add_channel("hook", webhook.url())
    scheduler.add_job(id="bounded", cron="0 3 * * *", checkin=True, timeout="1h", notify="hook")
    scheduler.add_job(id="open", cron="0 3 * * *", checkin=True, long_running="30m", notify="hook")
    bounded = scheduler.run_service.check_in("bounded", "start")
    scheduler.run_service.check_in("open", "start")
    for _ in range(8):
        clock.advance(timedelta(minutes=10))
        scheduler.run_pending()
        scheduler.deliver_alerts()

    assert scheduler.get_run(bounded.id).status == "timed_out"
    titles = sorted(post["title"] for post in webhook.posts)
    assert titles == ["[cronkeeper] bounded: timed out", "[cronkeeper] open: still running"]


def test_the_report_of_a_database_with_nothing_to_report_names_its_window(
    make_scheduler: SchedulerFactory, clock: FakeClock, webhook: WebhookSink
) -> None:
    scheduler = make_scheduler(delivery=DeliverySettings(window=timedelta(0)))
    scheduler.alerts.add_channel("hook", webhook.url())
    report = builtin_jobs(MaintenanceSettings(enabled=False), sqlite=True, report=ReportSettings("hook"))
    scheduler.sync_jobs(report, origin="builtin")
    clock.set(datetime.fromisoformat("2026-03-09T08:00:00+00:00"))
    scheduler.run_pending()
    scheduler.deliver_alerts()

    [post] = webhook.posts
    assert post["message"].startswith("Report for 2026-03-02T08:00:00+00:00 to 2026-03-09T08:00:00+00:00")
