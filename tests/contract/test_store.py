"""The JobStore contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text, update

from cronkeeper.exceptions import ConflictError, JobExistsError, JobNotFoundError, RunNotFoundError
from cronkeeper.models import OUTCOME_FIELDS, JobSpec, RunOutcome, RunStatus, TriggerSource
from cronkeeper.specs import build_spec
from cronkeeper.store.base import Completion, RunFilter
from cronkeeper.store.migrate import MIGRATIONS, upgrade
from cronkeeper.store.schema import jobs, metadata, runs
from cronkeeper.store.sql import SqlJobStore
from cronkeeper.store.status import SqlStatusView

NOW = datetime.fromisoformat("2026-03-02T08:00:00+00:00")
LEASE = timedelta(seconds=30)


def spec(job_id: str = "job", **options: object) -> JobSpec:
    data = {"id": job_id, "every": "1m", "call": "tests.jobs:metrics", "start": NOW.isoformat(), **options}
    return build_spec(data, now=NOW)


def add(store: SqlJobStore, job_id: str = "job", due: datetime = NOW, **options: object) -> None:
    store.add_job(
        spec(job_id, **options), next_fire_at=due, next_due_at=due, now=NOW, by="test", origin="api"
    )


def claim(store: SqlJobStore, owner: str = "node-a", now: datetime = NOW, limit: int = 100) -> list[int]:
    return [order.run_id for order in store.claim_due(now=now, owner=owner, limit=limit).to_start]


def finish(
    run_id: int, status: RunStatus = RunStatus.SUCCEEDED, retry_at: datetime | None = None, **outcome: Any
) -> Completion:
    return Completion(run_id, status, NOW, NOW, RunOutcome(**outcome), retry_at)


def test_migrations_create_exactly_the_declared_schema(store: SqlJobStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_twice_is_harmless(store: SqlJobStore) -> None:
    upgrade(store.engine)


def test_tags_a_form_could_not_keep_are_rewritten_one_line_by_migration_0010(store: SqlJobStore) -> None:
    add(store, "legacy")
    add(store, "fine", tags=["a", "b c"])
    with store.engine.begin() as conn:  # as an older version accepted them
        stored = conn.execute(select(jobs.c.spec).where(jobs.c.id == "legacy")).scalar_one()
        bad = {**stored, "tags": ["x,y", " padded ", "", "line\nbreak", "x"]}
        conn.execute(update(jobs).where(jobs.c.id == "legacy").values(spec=bad))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    upgrade(store.engine)
    legacy, fine = store.get_job("legacy"), store.get_job("fine")
    assert legacy.spec.tags == ("x", "y", "padded", "line break")
    assert legacy.version == 2 and fine.version == 1 and fine.spec.tags == ("a", "b c")


def test_adds_finds_lists_and_deletes_jobs(store: SqlJobStore) -> None:
    add(store, "b")
    add(store, "a")
    assert [job.id for job in store.list_jobs()] == ["a", "b"]
    assert store.get_job("a").spec == spec("a")
    assert store.find_job("nope") is None
    store.delete_job("a")
    with pytest.raises(JobNotFoundError):
        store.get_job("a")


def test_finds_many_jobs_in_the_order_asked_leaving_out_missing_ones(store: SqlJobStore) -> None:
    for job_id in ("a", "b", "c"):
        add(store, job_id)
    assert [job.id for job in store.find_jobs(["c", "gone", "a"])] == ["c", "a"]
    assert store.find_jobs([]) == []


def test_adding_a_taken_id_fails_and_changes_nothing(store: SqlJobStore) -> None:
    add(store, "a")
    with pytest.raises(JobExistsError):
        store.add_job(
            spec("a", every="5m"), next_fire_at=NOW, next_due_at=NOW, now=NOW, by=None, origin="api"
        )
    assert store.get_job("a").spec == spec("a")


def test_update_with_a_stale_version_is_a_conflict(store: SqlJobStore) -> None:
    add(store, "a")
    store.update_job(
        spec("a", every="2m"), next_fire_at=NOW, next_due_at=NOW, now=NOW, by="x", expected_version=1
    )
    with pytest.raises(ConflictError):
        store.update_job(
            spec("a", every="3m"), next_fire_at=NOW, next_due_at=NOW, now=NOW, by="y", expected_version=1
        )
    job = store.get_job("a")
    assert (job.version, job.updated_by) == (2, "x")


def test_a_due_fire_is_claimed_once_and_the_job_advanced(store: SqlJobStore) -> None:
    add(store)
    assert len(claim(store)) == 1
    assert claim(store, owner="node-b") == []
    assert store.get_job("job").next_due_at == NOW + timedelta(minutes=1)
    assert store.next_due_at() == NOW + timedelta(minutes=1)


def test_concurrent_claimers_never_claim_a_fire_twice(any_db_url: str, store: SqlJobStore) -> None:
    for index in range(60):
        add(store, f"job-{index}", max_instances=10)
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(owner: str) -> None:
        mine = SqlJobStore(any_db_url)
        try:
            for step in range(5):
                ids = claim(mine, owner=owner, now=NOW + timedelta(minutes=step), limit=7)
                with lock:
                    claimed.extend(ids)
        finally:
            mine.close()

    threads = [threading.Thread(target=worker, args=(f"node-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == len(set(claimed))
    fires = store.list_runs(RunFilter(limit=1000))
    assert len({(run.job_id, run.scheduled_for, run.attempt) for run in fires}) == len(fires)


def test_outcomes_are_fenced_by_owner(store: SqlJobStore) -> None:
    add(store)
    (run_id,) = claim(store, owner="node-a")
    assert store.record_finished([finish(run_id)], owner="node-b", now=NOW) == []
    assert store.get_run(run_id).status is RunStatus.QUEUED
    assert store.record_finished([finish(run_id, output="done")], owner="node-a", now=NOW) == [run_id]
    run = store.get_run(run_id)
    assert (run.status, run.output) == (RunStatus.SUCCEEDED, "done")
    assert store.record_finished([finish(run_id, RunStatus.FAILED)], owner="node-a", now=NOW) == []


def test_every_field_of_an_outcome_is_written_and_read_back(store: SqlJobStore) -> None:
    add(store)
    (run_id,) = claim(store)
    outcome = RunOutcome(
        exit_code=3,
        output="out",
        error="exited with status 3",
        traceback="Traceback…",
        result={"items": [1, 2]},
        peak_memory_bytes=5 * 2**30,
        cpu_time=1.5,
    )
    assert all(getattr(outcome, name) is not None for name in OUTCOME_FIELDS), "give every field a value"
    completion = Completion(run_id, RunStatus.FAILED, NOW, NOW, outcome)
    assert store.record_finished([completion], owner="node-a", now=NOW) == [run_id]
    run = store.get_run(run_id)
    assert (run.status, run.started_at, run.finished_at) == (RunStatus.FAILED, NOW, NOW)
    assert RunOutcome(**{name: getattr(run, name) for name in OUTCOME_FIELDS}) == outcome


def test_runs_of_a_dead_owner_are_lost_and_its_late_result_refused(store: SqlJobStore) -> None:
    add(store, "a")
    add(store, "b")
    store.heartbeat(owner="alive", now=NOW, hostname="h", pid=1)
    store.heartbeat(owner="dead", now=NOW, hostname="h", pid=2)
    (run_a,) = claim(store, owner="dead", limit=1)
    (run_b,) = claim(store, owner="alive", limit=1)
    later = NOW + LEASE + timedelta(seconds=1)
    store.heartbeat(owner="alive", now=later, hostname="h", pid=1)
    lost = store.reap_lost(now=later, lease=LEASE)
    assert [run.id for run in lost] == [run_a]
    assert store.get_run(run_a).status is RunStatus.LOST
    assert store.get_run(run_b).status is RunStatus.QUEUED
    assert store.record_finished([finish(run_a)], owner="dead", now=later) == []
    assert store.get_run(run_a).status is RunStatus.LOST


def test_one_outcome_write_for_more_runs_than_one_statement_takes_refuses_runs_not_its_own(
    store: SqlJobStore,
) -> None:
    """The runs an outcome write reads are read in chunks of 512: every run of every chunk is fenced."""
    for index in range(600):
        add(store, f"job-{index:03}")
    mine = claim(store, owner="node-a", limit=590)
    theirs = claim(store, owner="node-b", limit=10)
    done_already = mine[-1]
    assert store.record_finished([finish(done_already)], owner="node-a", now=NOW) == [done_already]
    retried, failing = mine[0], mine[1]
    completions = [finish(run_id) for run_id in [*mine[2:], *theirs]]
    completions += [
        finish(retried, RunStatus.FAILED, retry_at=NOW + timedelta(seconds=5)),
        finish(failing, RunStatus.FAILED, error="boom"),
    ]
    accepted = store.record_finished(completions, owner="node-a", now=NOW)
    assert sorted(accepted) == sorted(mine[:-1])
    assert {store.get_run(run_id).status for run_id in theirs} == {RunStatus.QUEUED}
    assert store.get_run(mine[300]).status is RunStatus.SUCCEEDED
    assert store.get_run(failing).error == "boom"
    retry = store.list_runs(RunFilter(job_id=store.get_run(retried).job_id, limit=5))[0]
    assert (retry.attempt, retry.parent_run_id) == (1, retried)
    assert retry.scheduled_for == store.get_run(retried).scheduled_for == NOW


def test_an_outcome_write_locks_its_runs_in_id_order_and_cannot_deadlock_with_the_reaper(
    postgres_url: str,
) -> None:
    """PostgreSQL: a big outcome write reads and locks its runs chunk after chunk.  In the order the runs
    finished, it held the newest runs while it waited for an old one that a reaper's transaction held, and
    the reaper then waited for a newest one: a deadlock.  In id order, as the reaper locks, it cannot."""
    store = SqlJobStore(postgres_url)
    upgrade(store.engine)
    try:
        for index in range(600):
            add(store, f"job-{index:03}")
        mine = sorted(claim(store, owner="node-a", limit=600))
        lowest, highest = mine[0], mine[-1]
        written: dict[str, Any] = {}

        def write() -> None:
            completions = [finish(run_id) for run_id in reversed(mine)]  # newest first
            written["accepted"] = store.record_finished(completions, owner="node-a", now=NOW)

        with store.engine.connect() as reaper, store.engine.connect() as watcher:
            reaper.execute(update(runs).where(runs.c.id == lowest).values(status="lost"))
            writer = threading.Thread(target=write)
            writer.start()
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            deadline = time.monotonic() + 10
            while not watcher.execute(waiting).scalar_one() and time.monotonic() < deadline:
                watcher.rollback()
                time.sleep(0.01)
            reaper.execute(update(runs).where(runs.c.id == highest).values(status="lost"))
            reaper.commit()
            writer.join(10)
        assert sorted(written["accepted"]) == mine[1:-1]
    finally:
        store.close()


def started(store: SqlJobStore, job_id: str, owner: str) -> int:
    """A run of a new job, claimed by ``owner`` and running."""
    add(store, job_id)
    (run_id,) = claim(store, owner=owner)
    store.record_started([(run_id, NOW)], owner=owner)
    return run_id


def test_progress_is_written_only_to_running_runs_of_its_owner(store: SqlJobStore) -> None:
    store.heartbeat(owner="dead", now=NOW, hostname="h", pid=1)
    lost = started(store, "lost", "dead")
    later = NOW + LEASE + timedelta(seconds=1)
    for owner in ("node-a", "node-b"):
        store.heartbeat(owner=owner, now=later, hostname="h", pid=2)
    assert [run.id for run in store.reap_lost(now=later, lease=LEASE)] == [lost]
    mine = started(store, "mine", "node-a")
    other = started(store, "other", "node-b")
    done = started(store, "done", "node-a")
    assert store.record_finished([finish(done, output="all of it")], owner="node-a", now=later) == [done]
    add(store, "queued")
    (queued,) = claim(store, owner="node-a")
    store.record_progress([(run_id, "so far") for run_id in (mine, other, done, queued)], owner="node-a")
    store.record_progress([(lost, "so far")], owner="dead")
    assert store.get_run(mine).output == "so far"
    assert store.get_run(mine).status is RunStatus.RUNNING
    assert (store.get_run(other).output, store.get_run(queued).output) == (None, None)
    assert (store.get_run(done).status, store.get_run(done).output) == (RunStatus.SUCCEEDED, "all of it")
    assert (store.get_run(lost).status, store.get_run(lost).output) == (RunStatus.LOST, None)
    store.record_progress([], owner="node-a")  # nothing to write is no write at all


def test_runs_of_an_owner_that_never_heartbeated_are_lost_after_the_lease(store: SqlJobStore) -> None:
    add(store)
    (run_id,) = claim(store, owner="ghost")
    assert store.reap_lost(now=NOW + LEASE - timedelta(seconds=1), lease=LEASE) == []
    assert [run.id for run in store.reap_lost(now=NOW + LEASE + timedelta(seconds=1), lease=LEASE)] == [
        run_id
    ]


def test_runs_left_by_a_node_that_stopped_are_lost(store: SqlJobStore) -> None:
    add(store)
    store.heartbeat(owner="node", now=NOW, hostname="h", pid=1)
    (run_id,) = claim(store, owner="node")
    store.retire_node(owner="node", now=NOW)
    assert [run.id for run in store.reap_lost(now=NOW, lease=LEASE)] == [run_id]


def test_manual_runs_respect_the_overlap_policy(store: SqlJobStore) -> None:
    add(store, due=NOW + timedelta(days=1), overlap="forbid")
    first = store.enqueue_run("job", now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by="alice")
    second = store.enqueue_run("job", now=NOW, trigger_source=TriggerSource.API, triggered_by="bob")
    result = store.claim_due(now=NOW, owner="node", limit=10)
    assert [order.run_id for order in result.to_start] == [first]
    assert result.to_start[0].triggered_by == "alice"
    assert [run.id for run in result.recorded] == [second]
    assert store.get_run(second).status is RunStatus.SKIPPED


def test_a_job_at_home_in_one_scheduler_object_is_claimed_by_that_object_only(store: SqlJobStore) -> None:
    store.add_job(
        spec("homed", max_instances=2),
        next_fire_at=NOW,
        next_due_at=NOW,
        now=NOW,
        by=None,
        origin="code",
        runs_on="a",
    )
    add(store, "shared")
    later = NOW + timedelta(seconds=1)
    assert store.count_due(until=NOW, limit=10, instance_id="b") == 1  # the shared job only
    assert store.count_due(until=NOW, limit=10, instance_id="a") == 2
    assert store.count_due(until=NOW, limit=1, instance_id="a") == 1
    assert store.count_due(until=NOW - timedelta(seconds=1), limit=10, instance_id="a") == 0
    queued = store.enqueue_run("homed", now=later, trigger_source=TriggerSource.MANUAL, triggered_by=None)
    assert store.next_due_at(instance_id="b") == NOW  # the shared job only
    other = store.claim_due(now=later, owner="node-b", limit=10, instance_id="b")
    assert [order.spec.id for order in other.to_start] == ["shared"]
    assert store.next_due_at() == NOW + timedelta(minutes=1)  # a node with no objects: shared jobs only
    assert store.next_due_at(instance_id="a") == NOW
    home = store.claim_due(now=later, owner="node-a", limit=10, instance_id="a")
    assert {order.spec.id for order in home.to_start} == {"homed"}  # its fire, and the run asked for
    assert len(home.to_start) == 2 and queued in {order.run_id for order in home.to_start}
    moved = store.set_declared("homed", origin="apscheduler x", runs_on=None)
    # who declares it and where it runs are not a new version of it
    assert (moved.origin, moved.runs_on, moved.version) == ("apscheduler x", None, 1)
    with pytest.raises(JobNotFoundError):
        store.set_declared("nope", origin="code", runs_on="a")


def test_runs_claimed_ahead_and_not_started_are_settled_by_their_owner_only(store: SqlJobStore) -> None:
    add(store, "paused")
    add(store, "moved")
    ahead = NOW - timedelta(seconds=0.3)
    claimed = store.claim_due(now=ahead, owner="node-a", limit=10, horizon=NOW).to_start
    ids = {order.spec.id: order.run_id for order in claimed}
    why = "not started: the job was paused before the run was due"
    assert store.settle_claimed([(ids["paused"], why)], [ids["moved"]], owner="node-b", now=NOW) == []
    assert store.get_run(ids["moved"]).status is RunStatus.QUEUED  # another node's runs are not its to end
    (skipped,) = store.settle_claimed([(ids["paused"], why)], [ids["moved"]], owner="node-a", now=NOW)
    assert (skipped.id, skipped.status, skipped.error, skipped.finished_at) == (
        ids["paused"],
        RunStatus.SKIPPED,
        why,
        NOW,
    )
    with pytest.raises(RunNotFoundError):
        store.get_run(ids["moved"])


def test_catch_up_runs_that_wait_their_turn_start_one_after_another(store: SqlJobStore) -> None:
    add(store, due=NOW - timedelta(minutes=3), catchup="all", start=(NOW - timedelta(minutes=3)).isoformat())
    first = store.claim_due(now=NOW + timedelta(seconds=30), owner="node-a", limit=10)
    assert len(first.to_start) == 1 and first.recorded == []  # the rest wait, neither skipped nor missed
    # While the first runs the waiting ones are nobody's work: no wake-up for them, no claim takes them.
    assert store.next_due_at() == NOW + timedelta(minutes=1)
    assert store.claim_due(now=NOW + timedelta(seconds=31), owner="node-b", limit=10).to_start == []
    store.record_finished([finish(first.to_start[0].run_id)], owner="node-a", now=NOW)
    assert store.next_due_at() == NOW - timedelta(minutes=2)  # the next one's turn
    second = store.claim_due(now=NOW + timedelta(seconds=32), owner="node-b", limit=10)
    assert [order.scheduled_for for order in second.to_start] == [NOW - timedelta(minutes=2)]


def test_job_versions_are_read_for_the_jobs_that_exist(store: SqlJobStore) -> None:
    add(store, "a")
    store.set_paused("a", True, next_fire_at=None, next_due_at=None, now=NOW, by=None)
    assert store.job_versions(["a", "gone"]) == {"a": 2}
    assert store.job_versions([]) == {}


def test_job_versions_are_read_for_more_jobs_than_one_statement_takes(store: SqlJobStore) -> None:
    """Read in chunks of 512 keys, the last padded to a power of two by repeating a key."""
    ids = [f"job-{index:03}" for index in range(530)]
    for job_id in ids:
        add(store, job_id)
    store.set_paused("job-529", True, next_fire_at=None, next_due_at=None, now=NOW, by=None)
    assert store.job_versions([*reversed(ids), "gone"]) == dict.fromkeys(ids, 1) | {"job-529": 2}


def test_enqueue_for_an_unknown_job_fails(store: SqlJobStore) -> None:
    with pytest.raises(JobNotFoundError):
        store.enqueue_run("nope", now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by=None)


def test_retries_are_persisted_as_new_queued_runs(store: SqlJobStore) -> None:
    add(store)
    (run_id,) = claim(store)
    retry_at = NOW + timedelta(seconds=5)
    store.record_finished([finish(run_id, RunStatus.FAILED, retry_at=retry_at)], owner="node-a", now=NOW)
    assert store.next_due_at() == retry_at
    result = store.claim_due(now=retry_at, owner="node-b", limit=10)
    retry = next(order for order in result.to_start if order.trigger_source is TriggerSource.RETRY)
    assert retry.attempt == 1
    assert store.get_run(retry.run_id).parent_run_id == run_id


def test_a_retry_written_by_one_node_wakes_the_others(postgres_url: str) -> None:
    """PostgreSQL: the other nodes hear of a retry when it is written, not at their next poll."""
    writer, listener = SqlJobStore(postgres_url), SqlJobStore(postgres_url)
    upgrade(writer.engine)
    woke, stop = threading.Event(), threading.Event()
    watching = listener.watch_changes(woke.set, stop)
    try:
        add(writer, due=NOW - timedelta(days=1), max_retries=100, retry_base="1s", retry_jitter=0)
        at = NOW
        for _ in range(50):  # until the listener's LISTEN is in place: each retry announces itself again
            orders = writer.claim_due(now=at, owner="node-a", limit=10).to_start
            for order in orders:
                retry_at = at + timedelta(seconds=1)
                writer.record_finished(
                    [finish(order.run_id, RunStatus.FAILED, retry_at)], owner="node-a", now=at
                )
            if woke.wait(0.2):
                break
            at += timedelta(seconds=2)
        assert woke.is_set()
    finally:
        stop.set()
        if watching is not None:
            watching.join(5)
        writer.close()
        listener.close()


def test_a_retry_of_a_run_someone_asked_for_is_still_theirs(store: SqlJobStore) -> None:
    add(store, due=NOW + timedelta(days=1))
    asked = store.enqueue_run("job", now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by="alice")
    (run_id,) = claim(store)
    assert run_id == asked
    retry_at = NOW + timedelta(seconds=5)
    store.record_finished([finish(run_id, RunStatus.FAILED, retry_at=retry_at)], owner="node-a", now=NOW)
    result = store.claim_due(now=retry_at, owner="node-a", limit=10)
    (retry,) = result.to_start
    assert (retry.trigger_source, retry.triggered_by) == (TriggerSource.RETRY, "alice")
    assert store.get_run(retry.run_id).triggered_by == "alice"


def test_cancel_requests_reach_the_owner_or_end_unowned_runs(store: SqlJobStore) -> None:
    add(store, due=NOW + timedelta(days=1))
    queued = store.enqueue_run("job", now=NOW, trigger_source=TriggerSource.MANUAL, triggered_by=None)
    store.request_cancel([queued], now=NOW)
    assert store.get_run(queued).status is RunStatus.CANCELLED
    owned = store.enqueue_run(
        "job", now=NOW + timedelta(seconds=1), trigger_source=TriggerSource.MANUAL, triggered_by=None
    )
    claim(store, owner="node", now=NOW + timedelta(seconds=1))
    store.request_cancel([owned], now=NOW)
    assert store.heartbeat(owner="node", now=NOW, hostname="h", pid=1) == [owned]


def test_history_filters_and_pages(store: SqlJobStore) -> None:
    add(store, "a")
    add(store, "b")
    for step in range(5):
        for run_id in claim(store, now=NOW + timedelta(minutes=step)):
            store.record_finished(
                [finish(run_id, RunStatus.FAILED if run_id % 2 else RunStatus.SUCCEEDED)],
                owner="node-a",
                now=NOW,
            )
    page = store.list_runs(RunFilter(job_id="a", limit=3))
    rest = store.list_runs(RunFilter(job_id="a", limit=3, before_id=page[-1].id))
    assert len(page) == 3 and len(rest) == 2
    assert all(run.job_id == "a" for run in page + rest)
    failed = store.list_runs(RunFilter(statuses=(RunStatus.FAILED,), limit=100))
    assert failed and all(run.status is RunStatus.FAILED for run in failed)
    with pytest.raises(RunNotFoundError):
        store.get_run(10_000)


def test_instants_come_back_as_aware_utc(store: SqlJobStore) -> None:
    add(store)
    (run_id,) = claim(store)
    run = store.get_run(run_id)
    assert run.scheduled_for == NOW
    assert run.scheduled_for.utcoffset() == timedelta(0)


def test_a_fire_put_back_after_its_claim_is_not_claimed_again(store: SqlJobStore) -> None:
    add(store)
    (run_id,) = claim(store)
    # A pause and resume (or an edit) racing a claim ahead can set the next fire back onto that same fire.
    store.set_paused("job", False, next_fire_at=NOW, next_due_at=NOW, now=NOW, by=None)
    other = store.claim_due(now=NOW, owner="node-a", limit=10)
    assert other.to_start == []
    assert store.get_job("job").next_due_at == NOW + timedelta(minutes=1)
    assert [run.id for run in store.list_runs(RunFilter())] == [run_id]


def test_run_ids_are_never_reused(store: SqlJobStore) -> None:
    add(store, "old")
    (old_run,) = claim(store)
    store.record_finished([finish(old_run)], owner="node-a", now=NOW)
    store.delete_job("old")
    add(store, "new")
    (new_run,) = claim(store)
    assert new_run > old_run


def test_deleting_a_job_asks_its_active_runs_to_stop(store: SqlJobStore) -> None:
    add(store)
    (run_id,) = claim(store, owner="node")
    store.delete_job("job")
    assert store.heartbeat(owner="node", now=NOW, hostname="h", pid=1) == [run_id]
    assert store.record_finished([finish(run_id, RunStatus.CANCELLED)], owner="node", now=NOW) == [run_id]


def test_a_jittered_fire_is_late_only_from_its_jittered_due_time(store: SqlJobStore) -> None:
    jittered = NOW + timedelta(minutes=29)
    store.add_job(
        spec("job", jitter="30m", catchup="skip"),
        next_fire_at=NOW,
        next_due_at=jittered,
        now=NOW,
        by=None,
        origin="api",
    )
    result = store.claim_due(now=jittered + timedelta(seconds=5), owner="node", limit=10)
    assert [order.due_at for order in result.to_start] == [jittered]
    assert result.recorded == []


def test_a_manual_run_of_a_replace_job_cancels_the_running_one(store: SqlJobStore) -> None:
    add(store, overlap="replace")
    (running,) = claim(store, owner="node")
    manual = store.enqueue_run(
        "job", now=NOW + timedelta(seconds=1), trigger_source=TriggerSource.MANUAL, triggered_by="alice"
    )
    result = store.claim_due(now=NOW + timedelta(seconds=1), owner="node", limit=10)
    assert [order.run_id for order in result.to_start] == [manual]
    assert result.to_cancel == [running]


def test_live_nodes_are_those_heartbeating_within_the_lease(store: SqlJobStore) -> None:
    store.heartbeat(owner="fresh", now=NOW, hostname="h", pid=1)
    store.heartbeat(owner="stale", now=NOW - LEASE - timedelta(seconds=1), hostname="h", pid=2)
    store.heartbeat(owner="stopped", now=NOW, hostname="h", pid=3)
    store.retire_node(owner="stopped", now=NOW)
    assert SqlStatusView(store.engine).count_live_nodes(now=NOW, lease=LEASE) == 1


def test_pause_and_delete_at_a_stale_version_change_nothing(store: SqlJobStore) -> None:
    add(store)
    version = store.get_job("job").version
    with pytest.raises(ConflictError):
        store.set_paused(
            "job", True, next_fire_at=None, next_due_at=None, now=NOW, by=None, expected_version=version + 1
        )
    with pytest.raises(ConflictError):
        store.delete_job("job", expected_version=version + 1)
    for beyond_the_column in (2**31, 10**18, 0, -1):  # never a database error, on PostgreSQL neither
        with pytest.raises(ConflictError):
            store.delete_job("job", expected_version=beyond_the_column)
        with pytest.raises(ConflictError):
            store.set_paused(
                "job",
                True,
                next_fire_at=None,
                next_due_at=None,
                now=NOW,
                by=None,
                expected_version=beyond_the_column,
            )
    assert (store.get_job("job").paused, store.get_job("job").version) == (False, version)
    paused = store.set_paused(
        "job", True, next_fire_at=None, next_due_at=None, now=NOW, by=None, expected_version=version
    )
    store.delete_job("job", expected_version=paused.version)
    with pytest.raises(JobNotFoundError):
        store.delete_job("job", expected_version=paused.version)
