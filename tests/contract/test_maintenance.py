"""The MaintenanceStore contract, run against SQLite and PostgreSQL alike: pruning, backups, restores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select

from cronkeeper.exceptions import StoreError
from cronkeeper.models import RunStatus
from cronkeeper.store.database import Database
from cronkeeper.store.records import Retention
from cronkeeper.store.schema import (
    alerts,
    audit_events,
    idempotency_keys,
    incidents,
    login_attempts,
    nodes,
    runs,
    sessions,
)
from tests.postgres import create_database

NOW = datetime.fromisoformat("2026-03-02T08:00:00+00:00")
OLD = NOW - timedelta(days=100)
RECENT = NOW - timedelta(days=1)
NOTHING_ELSE = {
    "audit_before": None,
    "sessions_expired_by": NOW - timedelta(days=1000),
    "idempotency_before": NOW - timedelta(days=1000),
    "login_attempts_before": NOW - timedelta(days=1000),
    "nodes_silent_since": NOW - timedelta(days=1000),
}


@pytest.fixture
def database(any_db_url: str) -> Iterator[Database]:
    database = Database(any_db_url)
    yield database
    database.close()


def engine_of(database: Database) -> Engine:
    engine: Engine = database.jobs.engine  # type: ignore[attr-defined]
    return engine


def add_runs(database: Database, job_id: str, *statuses: RunStatus, at: datetime = OLD) -> list[int]:
    """Runs of ``job_id`` one minute apart from ``at``, in the order given (the last one is the latest)."""
    rows = [
        {
            "job_id": job_id,
            "scheduled_for": at + timedelta(minutes=n),
            "attempt": 0,
            "trigger_source": "schedule",
            "status": status.value,
            "due_at": at + timedelta(minutes=n),
            "queued_at": at + timedelta(minutes=n),
        }
        for n, status in enumerate(statuses)
    ]
    with engine_of(database).begin() as conn:
        return [int(conn.execute(insert(runs).returning(runs.c.id), row).scalar_one()) for row in rows]


def run_ids(database: Database, job_id: str) -> list[int]:
    with engine_of(database).connect() as conn:
        found = conn.execute(select(runs.c.id).where(runs.c.job_id == job_id).order_by(runs.c.id))
        return [int(run_id) for run_id in found.scalars()]


def retention(**rules: Any) -> Retention:
    return Retention(**{"runs_before": None, "runs_per_job": None, **NOTHING_ELSE, **rules})


def test_pruning_deletes_old_ended_runs_but_never_an_active_run_nor_the_latest_of_a_job(
    database: Database,
) -> None:
    ended = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.MISSED, RunStatus.LOST)
    old = add_runs(database, "a", *ended, RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED)
    (only,) = add_runs(database, "b", RunStatus.SUCCEEDED)
    recent = add_runs(database, "a", RunStatus.SUCCEEDED, RunStatus.CANCELLED, at=RECENT)

    report = database.maintenance.prune(retention(runs_before=NOW - timedelta(days=90)), batch_size=100)

    assert report.runs == 5  # the four ended and the old failed one (no longer the latest)
    assert run_ids(database, "a") == [old[4], old[5], *recent]
    assert run_ids(database, "b") == [only], "a job's latest run stays, however old"


def test_pruning_keeps_the_newest_runs_of_each_job_up_to_the_count(database: Database) -> None:
    a = add_runs(database, "a", *[RunStatus.SUCCEEDED] * 30, at=RECENT)
    b = add_runs(database, "b", *[RunStatus.SUCCEEDED] * 5, at=RECENT)

    report = database.maintenance.prune(retention(runs_per_job=10), batch_size=100)

    assert report.runs == 20
    assert run_ids(database, "a") == a[-10:]
    assert run_ids(database, "b") == b


def test_pruning_deletes_by_id_in_transactions_of_at_most_the_batch_size(database: Database) -> None:
    add_runs(database, "a", *[RunStatus.SUCCEEDED] * 26)
    deletes: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CK_RUNS"):
            deletes.append(statement.count("?") + statement.count("%("))

    event.listen(engine_of(database), "before_cursor_execute", count)
    try:
        report = database.maintenance.prune(retention(runs_before=NOW), batch_size=10)
    finally:
        event.remove(engine_of(database), "before_cursor_execute", count)

    assert report.runs == 25
    assert len(deletes) == 3
    assert all(parameters <= 10 + 10 for parameters in deletes)  # the ids, and the rule checked again


def test_a_dry_run_counts_what_would_go_and_deletes_nothing(database: Database) -> None:
    kept = add_runs(database, "a", *[RunStatus.SUCCEEDED] * 8)

    report = database.maintenance.prune(retention(runs_per_job=3), batch_size=2, dry_run=True)

    assert report.runs == 5
    assert run_ids(database, "a") == kept


def test_a_retry_kept_after_its_parent_was_pruned_still_reads_back_naming_it(database: Database) -> None:
    (parent,) = add_runs(database, "a", RunStatus.FAILED)
    with engine_of(database).begin() as conn:
        row = {
            "job_id": "a",
            "scheduled_for": OLD,
            "attempt": 1,
            "parent_run_id": parent,
            "trigger_source": "retry",
            "status": "succeeded",
            "due_at": RECENT,
            "queued_at": RECENT,
        }
        retry = int(conn.execute(insert(runs).returning(runs.c.id), row).scalar_one())
    add_runs(database, "a", RunStatus.SUCCEEDED, at=RECENT)

    database.maintenance.prune(retention(runs_per_job=2), batch_size=10)

    assert run_ids(database, "a")[0] == retry
    assert database.jobs.get_run(retry).parent_run_id == parent


def test_bookkeeping_past_its_use_is_pruned_and_the_rest_kept(database: Database) -> None:
    old, fresh = NOW - timedelta(days=400), NOW - timedelta(minutes=1)
    with engine_of(database).begin() as conn:
        for at in (old, fresh):
            conn.execute(
                insert(audit_events),
                {"at": at, "actor": "x", "action": "edit", "object_type": "job", "object_id": f"{at}"},
            )
            conn.execute(insert(login_attempts), {"name_key": "alice", "at": at})
            key = {"actor": "x", "key": f"{at}", "job_id": "a", "created_at": at}
            conn.execute(insert(idempotency_keys), key)
            conn.execute(
                insert(nodes),
                {"id": f"{at}", "hostname": "h", "pid": 1, "started_at": at, "heartbeat_at": at},
            )
            alert = {"kind": "failed", "channel": "ops", "facts": {}, "created_at": at, "due_at": at}
            conn.execute(insert(alerts), [{**alert, "status": "delivered"}, {**alert, "status": "pending"}])
            incident = {"job_id": "a", "opened_at": at, "first_run_id": 1, "last_run_id": 1, "failures": 1}
            conn.execute(insert(incidents), {**incident, "closed_at": at})
        for expires in (NOW - timedelta(seconds=1), NOW + timedelta(hours=1)):
            session = {"id_hash": f"{expires}", "user_id": 1, "csrf_token": "t", "created_at": old}
            conn.execute(insert(sessions), {**session, "expires_at": expires})
    cutoff = NOW - timedelta(days=1)
    rules = {
        "audit_before": NOW - timedelta(days=365),
        "sessions_expired_by": NOW,
        "idempotency_before": cutoff,
        "login_attempts_before": cutoff,
        "nodes_silent_since": cutoff,
    }

    report = database.maintenance.prune(retention(**rules), batch_size=10)

    assert report.counts() == {
        "runs": 0,
        "audit_events": 1,
        "alerts": 1,
        "incidents": 1,
        "sessions": 1,
        "idempotency_keys": 1,
        "login_attempts": 1,
        "nodes": 1,
    }
    with engine_of(database).connect() as conn:
        for table in (audit_events, sessions, idempotency_keys, login_attempts, nodes, incidents):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1, table.name
        # The old pending alert stays: an alert that has not ended is never pruned.
        assert conn.execute(select(func.count()).select_from(alerts)).scalar_one() == 3


# ---- backups ---------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_url(any_db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Another empty database of the same kind as ``any_db_url``."""
    if any_db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    admin: str = request.getfixturevalue("postgres_admin_url")
    return create_database(admin, f"cronkeeper_fresh_{os.getpid()}_{tmp_path.name[-20:]}")


def snapshot(database: Database) -> tuple[list[Any], list[Any]]:
    with engine_of(database).connect() as conn:
        return (
            [tuple(row) for row in conn.execute(select(runs).order_by(runs.c.id))],
            [tuple(row) for row in conn.execute(select(nodes).order_by(nodes.c.id))],
        )


def test_a_backup_restored_into_a_fresh_database_gives_back_the_same_jobs_and_runs(
    database: Database, fresh_url: str, tmp_path: Path
) -> None:
    add_runs(database, "a", RunStatus.SUCCEEDED, RunStatus.FAILED)
    database.jobs.heartbeat(owner="node-a", now=NOW, hostname="h", pid=1)
    backup = tmp_path / f"copy{database.maintenance.backup_suffix}"

    size = database.maintenance.backup(backup)
    fresh = Database(fresh_url)
    try:
        fresh.maintenance.restore(backup)
        assert snapshot(fresh) == snapshot(database)
    finally:
        fresh.close()
    assert size == backup.stat().st_size > 0
    assert [path.name for path in tmp_path.iterdir() if "copy" in path.name] == [backup.name]


def test_runs_a_backup_caught_under_way_are_restored_cancelled_not_left_to_be_lost(
    database: Database, fresh_url: str, tmp_path: Path
) -> None:
    add_runs(database, "a", RunStatus.SUCCEEDED, RunStatus.QUEUED)
    backup = tmp_path / f"copy{database.maintenance.backup_suffix}"
    database.maintenance.backup(backup)
    fresh = Database(fresh_url)
    try:
        fresh.maintenance.restore(backup)
        with engine_of(fresh).connect() as conn:
            restored = conn.execute(select(runs.c.status, runs.c.error).order_by(runs.c.id)).all()
    finally:
        fresh.close()
    assert [status for status, _ in restored] == ["succeeded", "cancelled"]
    assert restored[1].error.startswith("interrupted: the database was restored")


def test_a_damaged_backup_is_refused_and_the_database_left_as_it_was(
    database: Database, tmp_path: Path
) -> None:
    add_runs(database, "a", *[RunStatus.SUCCEEDED] * 200)
    backup = tmp_path / f"copy{database.maintenance.backup_suffix}"
    database.maintenance.backup(backup)
    data = bytearray(backup.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = b"\xa5" * 4096
    backup.write_bytes(bytes(data))
    before = snapshot(database)

    with pytest.raises(StoreError):
        database.maintenance.check_backup(backup)
    with pytest.raises(StoreError):
        database.maintenance.restore(backup)

    assert snapshot(database) == before


def test_a_file_that_is_not_a_cronkeeper_backup_is_refused(database: Database, tmp_path: Path) -> None:
    stranger = tmp_path / "notes.sqlite3"
    stranger.write_text("not a database at all, just notes\n" * 100)

    with pytest.raises(StoreError):
        database.maintenance.check_backup(stranger)


def test_housekeeping_never_fails_on_a_live_database(database: Database) -> None:
    add_runs(database, "a", *[RunStatus.SUCCEEDED] * 50)

    done = database.maintenance.housekeep()

    sqlite = database.maintenance.file is not None
    assert done.done is sqlite
    assert done.wal_truncated is sqlite
