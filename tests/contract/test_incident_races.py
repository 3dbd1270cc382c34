"""Two nodes recording bad outcomes of one job at the same moment, on PostgreSQL (READ COMMITTED): each
bad run counts, one incident is opened, one alert written.  (SQLite writers take turns: nothing to race.)

The interleaving is forced: node A pauses right after reading the open incidents, as a slow node would,
while node B records its outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from cronkeeper.models import RunStatus, TriggerSource
from cronkeeper.store.alerts import SqlAlertStore
from cronkeeper.store.base import Completion
from cronkeeper.store.migrate import upgrade
from cronkeeper.store.records import AlertFilter
from cronkeeper.store.schema import incidents
from cronkeeper.store.sql import SqlJobStore
from tests.contract.test_store import NOW, add

# Long enough for node B to reach the incident rows while node A holds them.
PAUSE = 0.5


@pytest.fixture
def two_nodes(postgres_url: str) -> Iterator[tuple[SqlJobStore, SqlJobStore]]:
    a, b = SqlJobStore(postgres_url), SqlJobStore(postgres_url)
    upgrade(a.engine)
    yield a, b
    a.close()
    b.close()


def start_run(store: SqlJobStore) -> int:
    run_id = store.enqueue_run("job", now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by=None)
    [order] = [o for o in store.claim_due(now=NOW, owner="node-a", limit=100).to_start if o.run_id == run_id]
    store.record_started([(order.run_id, NOW)], owner="node-a")
    return run_id


def failed(run_id: int) -> Completion:
    return Completion(run_id, RunStatus.FAILED, NOW, NOW + timedelta(seconds=1))


def race(a: SqlJobStore, b: SqlJobStore, run_a: int, run_b: int) -> None:
    paused = threading.Event()

    def slow_after_reading_incidents(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM ck_incidents" in statement and not paused.is_set():
            paused.set()
            time.sleep(PAUSE)

    event.listen(a.engine, "after_cursor_execute", slow_after_reading_incidents)
    node_a = threading.Thread(target=lambda: a.record_finished([failed(run_a)], owner="node-a", now=NOW))
    node_a.start()
    assert paused.wait(5)
    b.record_finished([failed(run_b)], owner="node-a", now=NOW)
    node_a.join()
    event.remove(a.engine, "after_cursor_execute", slow_after_reading_incidents)


def incident_rows(store: SqlJobStore) -> list[tuple[int, bool]]:
    with store.engine.connect() as conn:
        return [(row.failures, row.alerted) for row in conn.execute(select(incidents))]


def test_concurrent_failures_of_an_open_incident_both_count(
    two_nodes: tuple[SqlJobStore, SqlJobStore],
) -> None:
    a, b = two_nodes
    add(a, "job", due=NOW + timedelta(days=1), notify=["ops"], notify_after=3, max_instances=5)
    first, second, third = (start_run(a) for _ in range(3))
    a.record_finished([failed(first)], owner="node-a", now=NOW)
    race(a, b, second, third)

    assert incident_rows(a) == [(3, True)]
    assert [alert.kind for alert in SqlAlertStore(a.engine).list_alerts(AlertFilter())] == ["failed"]


def test_concurrent_first_failures_open_one_incident_and_alert_once(
    two_nodes: tuple[SqlJobStore, SqlJobStore],
) -> None:
    a, b = two_nodes
    add(a, "job", due=NOW + timedelta(days=1), notify=["ops"], max_instances=5)
    first, second = start_run(a), start_run(a)
    race(a, b, first, second)

    assert incident_rows(a) == [(2, True)]
    assert [alert.kind for alert in SqlAlertStore(a.engine).list_alerts(AlertFilter())] == ["failed"]
