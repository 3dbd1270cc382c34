"""Maintenance through the scheduler: the built-in jobs on a fake clock, backups and their rotation, restores
refused while a scheduler runs, and bad input refused without changing anything."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.exceptions import CronkeeperError, SchedulerStateError, ValidationError
from cronkeeper.services.builtin_jobs import (
    BACKUP_ID,
    HOUSEKEEPING_ID,
    ORIGIN,
    PRUNE_ID,
    builtin_jobs,
    housekeeping,
)
from cronkeeper.settings import MaintenanceSettings
from cronkeeper.testing import advance
from tests.conftest import SchedulerFactory

BUILTIN = (BACKUP_ID, HOUSEKEEPING_ID, PRUNE_ID)


def declare(scheduler: Scheduler, settings: MaintenanceSettings | None = None) -> None:
    jobs = builtin_jobs(settings or MaintenanceSettings(), sqlite=scheduler.maintenance.sqlite)
    scheduler.sync_jobs(jobs, origin=ORIGIN, by="cronkeeper")


def test_the_built_in_jobs_are_ordinary_jobs_that_run_on_their_schedules(
    scheduler: Scheduler, clock: FakeClock, tmp_path: Path
) -> None:
    scheduler.add_job("tests.jobs:metrics", id="work", every="1h")
    declare(scheduler)
    assert [job.id for job in scheduler.jobs() if job.origin == ORIGIN] == list(BUILTIN)

    advance(scheduler, clock, timedelta(days=1))

    pruned = scheduler.runs(job_id=PRUNE_ID)
    assert [run.status for run in pruned] == [RunStatus.SUCCEEDED]
    assert pruned[0].result == {
        "runs": 0,
        "audit_events": 0,
        "alerts": 0,
        "incidents": 0,
        "sessions": 0,
        "idempotency_keys": 0,
        "login_attempts": 0,
        "nodes": 0,
    }
    (backed_up,) = scheduler.runs(job_id=BACKUP_ID)
    assert backed_up.status is RunStatus.SUCCEEDED, backed_up.error
    assert backed_up.result is not None
    made = Path(backed_up.result["path"])
    assert made.parent == tmp_path / "backups"
    assert made.name == "cronkeeper-20260303T034700Z.sqlite3"
    assert made.stat().st_size == backed_up.result["bytes"]
    housekept = scheduler.runs(job_id=HOUSEKEEPING_ID, limit=100)
    assert len(housekept) == 24
    assert {run.status for run in housekept} == {RunStatus.SUCCEEDED}


def test_the_prune_job_deletes_history_past_what_it_keeps(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:metrics", id="work", every="1h")
    declare(scheduler, MaintenanceSettings(keep_runs_per_job=5, backup=None, housekeeping=None))

    advance(scheduler, clock, timedelta(days=1, hours=4))

    (pruned,) = scheduler.runs(job_id=PRUNE_ID)
    assert pruned.result is not None
    assert pruned.result["runs"] == 19 - 5  # the hourly runs of work up to 03:17 on the second day, less five
    assert len(scheduler.runs(job_id="work", limit=100)) == 5 + 9  # and nine since, up to noon


def test_a_paused_built_in_job_does_not_run_and_turned_off_ones_are_disabled(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    declare(scheduler)
    scheduler.pause(BACKUP_ID)

    advance(scheduler, clock, timedelta(days=1))
    declare(scheduler, MaintenanceSettings(enabled=False))

    assert scheduler.runs(job_id=BACKUP_ID) == []
    assert len(scheduler.runs(job_id=PRUNE_ID)) == 1, "history stays"
    assert {job.id: job.enabled for job in scheduler.jobs()} == dict.fromkeys(BUILTIN, False)


def test_a_built_in_job_called_outside_a_scheduler_says_where_it_runs() -> None:
    with pytest.raises(CronkeeperError, match="runs only in a scheduler's worker thread"):
        housekeeping()


def test_backups_into_a_folder_keep_the_newest_and_leave_other_files_alone(
    scheduler: Scheduler, clock: FakeClock, tmp_path: Path
) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    made = []
    for _ in range(4):
        made.append(scheduler.maintenance.backup(folder, keep=2))
        clock.advance(timedelta(hours=1))

    assert sorted(path.name for path in folder.iterdir()) == sorted(
        ["notes.txt", made[2].path.name, made[3].path.name]
    )
    assert made[3].removed == (made[1].path,)


def test_two_backups_in_one_second_get_two_names(scheduler: Scheduler, tmp_path: Path) -> None:
    first = scheduler.maintenance.backup(tmp_path)
    second = scheduler.maintenance.backup(tmp_path)

    assert (first.path.name, second.path.name) == (
        "cronkeeper-20260302T080000Z.sqlite3",
        "cronkeeper-20260302T080000Z-2.sqlite3",
    )


def test_a_backup_over_an_existing_file_or_into_a_missing_folder_is_refused(
    scheduler: Scheduler, tmp_path: Path
) -> None:
    taken = tmp_path / "taken.sqlite3"
    taken.write_text("keep me")

    with pytest.raises(ValidationError, match="exists"):
        scheduler.maintenance.backup(taken)
    with pytest.raises(ValidationError, match="does not exist"):
        scheduler.maintenance.backup(tmp_path / "nowhere" / "copy.sqlite3")

    assert taken.read_text() == "keep me"


def test_a_restore_is_refused_while_a_scheduler_is_live_on_the_database(
    make_scheduler: SchedulerFactory, clock: FakeClock, tmp_path: Path
) -> None:
    scheduler = make_scheduler()
    scheduler.add_job("tests.jobs:metrics", id="before", every="1h")
    backup = scheduler.maintenance.backup(tmp_path / "copy.sqlite3").path
    scheduler.add_job("tests.jobs:metrics", id="after", every="1h")
    scheduler.store.heartbeat(owner="node-x", now=clock.now(), hostname=socket.gethostname(), pid=1)

    with pytest.raises(SchedulerStateError, match="node-x"):
        scheduler.maintenance.restore(backup)
    assert [job.id for job in scheduler.jobs()] == ["after", "before"]

    clock.advance(scheduler.settings.lease + timedelta(seconds=1))  # the node went silent
    scheduler.maintenance.restore(backup)
    assert [job.id for job in scheduler.jobs()] == ["before"]


def test_prune_refuses_bad_retention_naming_the_field(scheduler: Scheduler) -> None:
    for options, field in (
        ({"older_than": "soon"}, "older_than"),
        ({"older_than": "0d"}, "older_than"),
        ({"keep": 0}, "keep"),
        ({"audit_older_than": -5}, "audit_older_than"),
    ):
        with pytest.raises(ValidationError) as caught:
            scheduler.maintenance.prune(**options)
        assert caught.value.field == field
