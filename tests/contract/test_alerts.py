"""The AlertStore contract and the incidents written with outcomes, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from cronkeeper.exceptions import NotFoundError
from cronkeeper.models import AlertKind, NotifyOptions, RunStatus, TriggerSource
from cronkeeper.store.alerts import SqlAlertStore
from cronkeeper.store.base import Completion
from cronkeeper.store.records import AlertFilter, AlertStatus, DeliveryResult
from cronkeeper.store.schema import incidents
from cronkeeper.store.sql import SqlJobStore
from tests.contract.test_store import LEASE, NOW, add, claim, finish

WINDOW = timedelta(seconds=60)


@pytest.fixture
def alerts(store: SqlJobStore) -> SqlAlertStore:
    return SqlAlertStore(store.engine)


def run_and_end(
    store: SqlJobStore, job_id: str, status: RunStatus, *, reports_every_run: bool = False
) -> int:
    run_id = store.enqueue_run(job_id, now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by="ann")
    [order] = [o for o in store.claim_due(now=NOW, owner="node-a", limit=100).to_start if o.run_id == run_id]
    store.record_started([(order.run_id, NOW)], owner="node-a")
    completion = Completion(
        run_id, status, NOW, NOW + timedelta(seconds=3), reports_every_run=reports_every_run
    )
    store.record_finished([completion], owner="node-a", now=NOW)
    return run_id


def test_a_bad_outcome_writes_alerts_for_each_channel_with_the_outcome(
    store: SqlJobStore, alerts: SqlAlertStore
) -> None:
    add(store, "job", due=NOW + timedelta(days=1), notify=["ops", "chat"], name="Nightly backup")
    run_id = run_and_end(store, "job", RunStatus.FAILED)

    written = alerts.list_alerts(AlertFilter())
    assert sorted(a.channel for a in written) == ["chat", "ops"]
    assert {a.kind for a in written} == {"failed"}
    assert written[0].facts["run_id"] == run_id
    assert written[0].facts["job_name"] == "Nightly backup"
    assert written[0].facts["duration"] == 3.0
    assert store.alerts_written.is_set()


def test_a_streak_alerts_once_and_its_end_alerts_recovered(store: SqlJobStore, alerts: SqlAlertStore) -> None:
    add(store, "job", due=NOW + timedelta(days=1), notify=["ops"])
    for status in (
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.FAILED,
        RunStatus.SUCCEEDED,
        RunStatus.SUCCEEDED,
    ):
        run_and_end(store, "job", status)

    kinds = [a.kind for a in reversed(alerts.list_alerts(AlertFilter()))]
    assert kinds == ["failed", "recovered"]
    recovered = alerts.list_alerts(AlertFilter())[0]
    assert recovered.facts["failures"] == 3


def test_one_batch_closes_many_incidents_and_opens_one_anew_for_a_job_whose_incident_it_closed(
    store: SqlJobStore, alerts: SqlAlertStore
) -> None:
    for job_id in ("a", "b", "c"):
        add(store, job_id, due=NOW + timedelta(days=1), notify=["ops"], max_instances=2)
        run_and_end(store, job_id, RunStatus.FAILED)
    queued = [
        store.enqueue_run(job_id, now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by="ann")
        for job_id in ("a", "a", "b", "c")
    ]
    started = {o.run_id for o in store.claim_due(now=NOW, owner="node-a", limit=100).to_start}
    assert started == set(queued)
    store.record_started([(run_id, NOW) for run_id in queued], owner="node-a")
    # a recovers and fails again, b and c recover: all in one write of outcomes
    statuses = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    completions = [
        Completion(r, s, NOW, NOW + timedelta(seconds=1)) for r, s in zip(queued, statuses, strict=True)
    ]
    store.record_finished(completions, owner="node-a", now=NOW)

    kinds = sorted((a.job_id, a.kind) for a in alerts.list_alerts(AlertFilter()))
    assert kinds == sorted(
        [(j, "failed") for j in "abc"] + [(j, "recovered") for j in "abc"] + [("a", "failed")]
    )
    with store.engine.connect() as conn:
        rows = conn.execute(select(incidents.c.job_id, incidents.c.closed_by_run_id)).all()
    assert sorted(rows, key=str) == sorted(
        [("a", queued[0]), ("a", None), ("b", queued[2]), ("c", queued[3])], key=str
    )


def end_in_one_batch(store: SqlJobStore, job_id: str, statuses: list[RunStatus]) -> list[int]:
    """Runs of ``job_id`` that end with ``statuses``, their outcomes written in one batch."""
    queued = [
        store.enqueue_run(job_id, now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by="ann")
        for _ in statuses
    ]
    assert {o.run_id for o in store.claim_due(now=NOW, owner="node-a", limit=100).to_start} == set(queued)
    store.record_started([(run_id, NOW) for run_id in queued], owner="node-a")
    ends = [Completion(r, s, NOW, NOW + timedelta(seconds=1)) for r, s in zip(queued, statuses, strict=True)]
    store.record_finished(ends, owner="node-a", now=NOW)
    return queued


@pytest.mark.parametrize(
    ("batches", "alerted", "open_failures"),
    [
        pytest.param([["failed", "succeeded"]], ["succeeded"], [], id="failure-then-success"),
        # one failure since the success: notify_after=2 says nothing yet
        pytest.param([["failed", "succeeded"], ["failed"]], ["succeeded"], [1], id="then-one-failure"),
        pytest.param(
            [["failed", "succeeded", "failed", "failed"]],
            ["succeeded", "failed"],
            [2],
            id="then-two-failures",
        ),
    ],
)
def test_an_incident_opened_and_ended_in_one_batch_is_kept_closed(
    store: SqlJobStore,
    alerts: SqlAlertStore,
    batches: list[list[str]],
    alerted: list[str],
    open_failures: list[int],
) -> None:
    """A success that reports every run, right after a failure in the same batch, alerts naming the
    incident it ends: that incident is kept, closed.  It was kept open, carried its failures into the next
    batch, and a second incident of the job in the batch failed the whole write on the one-open index."""
    add(
        store,
        "job",
        due=NOW + timedelta(days=1),
        notify=["ops"],
        notify_after=2,
        notify_on=["failed", "recovered", "succeeded"],
        max_instances=10,
    )
    for statuses in batches:
        end_in_one_batch(store, "job", [RunStatus(status) for status in statuses])

    assert [a.kind for a in reversed(alerts.list_alerts(AlertFilter()))] == alerted
    with store.engine.connect() as conn:
        still_open = (
            conn.execute(select(incidents.c.failures).where(incidents.c.closed_at.is_(None))).scalars().all()
        )
    assert still_open == open_failures


def test_jobs_nobody_is_told_about_still_keep_their_incidents(
    store: SqlJobStore, alerts: SqlAlertStore
) -> None:
    add(store, "job", due=NOW + timedelta(days=1))
    run_and_end(store, "job", RunStatus.FAILED)
    run_and_end(store, "job", RunStatus.FAILED)
    alerts.put_channel("ops", "json://127.0.0.1/x", origin="api", now=NOW)
    alerts.set_notify_defaults(NotifyOptions(channels=("ops",), after=3), origin="api")
    run_and_end(store, "job", RunStatus.LOST)

    [alert] = alerts.list_alerts(AlertFilter())
    assert (alert.kind, alert.facts["failures"]) == ("lost", 3)


def test_the_reaper_opens_incidents_for_lost_runs(store: SqlJobStore, alerts: SqlAlertStore) -> None:
    add(store, "job", notify=["ops"])
    [run_id] = claim(store, owner="dead-node")
    store.record_started([(run_id, NOW)], owner="dead-node")
    [lost] = store.reap_lost(now=NOW + LEASE * 3, lease=LEASE)

    [alert] = alerts.list_alerts(AlertFilter())
    assert (lost.id, alert.kind, alert.run_id) == (run_id, AlertKind.LOST.value, run_id)


def test_success_alerts_are_read_only_for_jobs_that_ask(store: SqlJobStore, alerts: SqlAlertStore) -> None:
    add(store, "job", due=NOW + timedelta(days=1), notify=["ops"], notify_on=["succeeded"])
    run_and_end(store, "job", RunStatus.SUCCEEDED, reports_every_run=False)
    assert alerts.list_alerts(AlertFilter()) == []
    run_and_end(store, "job", RunStatus.SUCCEEDED, reports_every_run=True)
    assert [a.kind for a in alerts.list_alerts(AlertFilter())] == ["succeeded"]


def test_each_alert_is_claimed_by_one_node_and_grouped_by_channel(
    store: SqlJobStore, alerts: SqlAlertStore
) -> None:
    alerts.put_channel("ops", "json://127.0.0.1/ops", origin="api", now=NOW)
    alerts.put_channel("chat", "json://127.0.0.1/chat", origin="api", now=NOW)
    for channel in ("ops", "ops", "chat"):
        alerts.enqueue_alert("test", channel, {"kind": "test"}, now=NOW)
    got: dict[str, list[tuple[str, int]]] = {}

    def take(owner: str) -> None:
        got[owner] = [
            (parcel.channel, len(parcel.alerts))
            for parcel in alerts.claim_alerts(owner=owner, now=NOW, lease=LEASE, window=WINDOW)
        ]

    threads = [threading.Thread(target=take, args=(f"node-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    claimed = sorted(item for items in got.values() for item in items)
    assert claimed == [("chat", 1), ("ops", 2)]


def test_a_channel_sent_to_within_the_window_waits(store: SqlJobStore, alerts: SqlAlertStore) -> None:
    alerts.put_channel("ops", "json://127.0.0.1/ops", origin="api", now=NOW)
    first = alerts.enqueue_alert("test", "ops", {}, now=NOW)
    assert len(alerts.claim_alerts(owner="a", now=NOW, lease=LEASE, window=WINDOW)) == 1
    alerts.record_deliveries([DeliveryResult((first,))], owner="a", now=NOW)
    alerts.enqueue_alert("test", "ops", {}, now=NOW)
    alerts.enqueue_alert("test", "ops", {}, now=NOW)

    assert alerts.claim_alerts(owner="a", now=NOW + WINDOW / 2, lease=LEASE, window=WINDOW) == []
    [later] = alerts.claim_alerts(owner="a", now=NOW + WINDOW, lease=LEASE, window=WINDOW)
    assert len(later.alerts) == 2
    assert alerts.get_alert(first).status == AlertStatus.DELIVERED


def test_a_dead_senders_alerts_are_taken_again_after_the_lease_and_its_late_word_is_refused(
    store: SqlJobStore, alerts: SqlAlertStore
) -> None:
    alerts.put_channel("ops", "json://127.0.0.1/ops", origin="api", now=NOW)
    alert_id = alerts.enqueue_alert("test", "ops", {}, now=NOW)
    alerts.claim_alerts(owner="dead", now=NOW, lease=LEASE, window=timedelta(0))
    assert alerts.claim_alerts(owner="b", now=NOW + LEASE / 2, lease=LEASE, window=timedelta(0)) == []
    assert len(alerts.claim_alerts(owner="b", now=NOW + LEASE * 2, lease=LEASE, window=timedelta(0))) == 1
    alerts.record_deliveries([DeliveryResult((alert_id,), "boom")], owner="dead", now=NOW + LEASE * 2)
    alerts.record_deliveries([DeliveryResult((alert_id,))], owner="b", now=NOW + LEASE * 2)

    found = alerts.get_alert(alert_id)
    assert (found.status, found.attempts, found.last_error) == (AlertStatus.DELIVERED, 2, None)


def test_alerts_to_a_channel_that_does_not_exist_come_out_without_a_url(alerts: SqlAlertStore) -> None:
    alerts.enqueue_alert("test", "gone", {}, now=NOW)
    [parcel] = alerts.claim_alerts(owner="a", now=NOW, lease=LEASE, window=WINDOW)
    assert (parcel.channel, parcel.url) == ("gone", None)


def test_channels_are_added_replaced_listed_retired_and_removed(alerts: SqlAlertStore) -> None:
    assert alerts.put_channel("ops", "json://a/1", origin="config x", now=NOW) is True
    assert alerts.put_channel("ops", "json://a/2", origin="config x", now=NOW) is False
    alerts.put_channel("chat", "json://a/3", origin="config x", now=NOW)
    alerts.put_channel("mine", "json://a/4", origin="api", now=NOW)

    assert alerts.retire_channels("config x", ["ops"]) == ["chat"]
    assert [(c.name, c.url) for c in alerts.list_channels()] == [
        ("mine", "json://a/4"),
        ("ops", "json://a/2"),
    ]
    alerts.remove_channel("mine")
    with pytest.raises(NotFoundError):
        alerts.remove_channel("mine")


def test_notify_defaults_round_trip(alerts: SqlAlertStore) -> None:
    assert alerts.notify_defaults() == NotifyOptions()
    options = NotifyOptions(channels=("ops",), on=frozenset({AlertKind.FAILED}), after=2, every_failure=False)
    alerts.set_notify_defaults(options, origin="api")
    alerts.set_notify_defaults(options, origin="api")
    assert alerts.notify_defaults() == options


def test_alerts_are_counted_by_status(alerts: SqlAlertStore) -> None:
    alerts.enqueue_alert("test", "gone", {}, now=NOW)
    alerts.enqueue_alert("test", "gone", {}, now=NOW)
    assert alerts.count_alerts() == {"pending": 2}


def test_a_retried_failure_is_not_final(store: SqlJobStore, alerts: SqlAlertStore) -> None:
    add(store, "job", notify=["ops"], max_retries=1)
    [run_id] = claim(store)
    store.record_started([(run_id, NOW)], owner="node-a")
    store.record_finished([finish(run_id, RunStatus.FAILED, retry_at=NOW)], owner="node-a", now=NOW)
    assert alerts.list_alerts(AlertFilter()) == []


def test_an_overdue_job_is_counted_once_per_due_instant_however_often_nodes_look(
    store: SqlJobStore, alerts: SqlAlertStore
) -> None:
    add(store, "job", due=NOW, notify=["ops"])
    add(store, "paused", due=NOW, notify=["ops"])
    store.set_paused("paused", True, next_fire_at=NOW, next_due_at=NOW, now=NOW, by="test")
    grace_and_lease = timedelta(seconds=60) + LEASE

    assert store.flag_overdue(now=NOW + grace_and_lease - timedelta(seconds=1), margin=LEASE) == 0
    assert store.flag_overdue(now=NOW + grace_and_lease, margin=LEASE) == 1
    assert store.flag_overdue(now=NOW + grace_and_lease * 2, margin=LEASE) == 0

    [alert] = alerts.list_alerts(AlertFilter())
    assert (alert.kind, alert.job_id, alert.run_id) == ("missed", "job", None)
    assert "no scheduler has started it" in alert.facts["error"]


def test_a_run_after_an_overdue_fire_ends_the_incident(store: SqlJobStore, alerts: SqlAlertStore) -> None:
    add(store, "job", due=NOW, notify=["ops"])
    store.flag_overdue(now=NOW + timedelta(hours=1), margin=LEASE)
    run_and_end(store, "job", RunStatus.SUCCEEDED)

    assert [a.kind for a in reversed(alerts.list_alerts(AlertFilter()))] == ["missed", "recovered"]


def test_a_run_past_a_multiple_of_the_median_alerts_once_by_its_owner(
    store: SqlJobStore, alerts: SqlAlertStore
) -> None:
    add(store, "job", due=NOW + timedelta(days=1), notify=["ops"], long_running="3x")
    for _ in range(3):
        run_and_end(store, "job", RunStatus.SUCCEEDED)  # 3 s each: 3x is 9 s, below the 10 s floor
    run_id = store.enqueue_run("job", now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by=None)
    claim(store, owner="node-a")
    store.record_started([(run_id, NOW)], owner="node-a")

    assert store.flag_long_runs(now=NOW + timedelta(seconds=9), owner="node-a") == 0
    assert store.flag_long_runs(now=NOW + timedelta(seconds=11), owner="node-b") == 0
    assert store.flag_long_runs(now=NOW + timedelta(seconds=11), owner="node-a") == 1
    assert store.flag_long_runs(now=NOW + timedelta(seconds=60), owner="node-a") == 0
    [alert] = alerts.list_alerts(AlertFilter())
    assert (alert.kind, alert.run_id) == ("long_running", run_id)
