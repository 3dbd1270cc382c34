"""Where declarations, homes and turns meet: isolated homed jobs, a lambda declared again, live replicas of a
program, configs behind a release symlink, past one-offs at serve, paused jobs' queued runs, catch-ups waiting
their turn, and throttled names that differ by case."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.compat.apscheduler import BaseScheduler
from cronkeeper.config import load_config
from cronkeeper.exceptions import ValidationError
from cronkeeper.models import Role
from cronkeeper.services.accounts import Actor
from tests.conftest import SchedulerFactory

REPO = Path(__file__).resolve().parent.parent


class Counter:
    def __init__(self) -> None:
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1


def at_least(items: list[threading.Event], count: int) -> Callable[[], bool]:
    return lambda: len(items) >= count


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# ---- jobs kept at the object that holds their target --------------------------------------------------


def test_editing_a_homed_job_to_isolate_is_refused(scheduler: Scheduler) -> None:
    """add_job(bound_method, isolate=True) is refused, but edit(isolate=True) is accepted: every run then
    fails, since a child process cannot import a bound method."""
    job = scheduler.add_job(Counter().tick, every="1m")
    assert job.runs_on == scheduler.instance_id
    with pytest.raises(ValidationError):
        scheduler.edit(job.id, isolate=True)


def test_a_refused_isolate_redeclaration_writes_nothing(scheduler: Scheduler) -> None:
    """upsert_job saves the new spec first and only then asks the placement, which refuses: the caller gets
    a ValidationError, yet isolate=True is stored (version bumped)."""
    counter = Counter()
    scheduler.add_job(counter.tick, id="job", every="1m")
    with pytest.raises(ValidationError):
        scheduler.add_job(counter.tick, id="job", every="1m", isolate=True)
    job = scheduler.get_job("job")
    assert job.spec.target.isolate is False  # type: ignore[union-attr]
    assert job.version == 1


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(lambda calls: lambda: calls.append(1), id="lambda"),
        pytest.param(lambda calls: functools.partial(calls.append, 1), id="partial"),
    ],
)
def test_declaring_the_same_job_again_keeps_one_job(
    scheduler: Scheduler, clock: FakeClock, target: Callable[[list[int]], Callable[[], None]]
) -> None:
    """Jobs in code are declarations (add_job replaces).  A program that runs its setup again on one
    scheduler object (a reload) now gets a second job ``lambda_2``/``partial_2`` and double runs."""
    calls: list[int] = []

    def setup() -> None:
        scheduler.add_job(target(calls), every="1m")

    setup()
    setup()
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    assert len(scheduler.jobs()) == 1
    assert calls == [1]


# ---- origins per declaration ----------------------------------------------------------------------------


def enabled(scheduler: BaseScheduler) -> dict[str, bool]:
    return {job.id: job.enabled for job in scheduler.core.jobs()}


def test_a_config_behind_a_release_symlink_keeps_its_origin(scheduler: Scheduler, tmp_path: Path) -> None:
    """Config.origin resolves symlinks: with the usual `current -> releases/N` deploy, every release is a new
    origin, and a job removed from the file is never disabled ."""
    current = tmp_path / "current"
    for release, ids in (("r1", ["a", "b"]), ("r2", ["a"])):
        folder = tmp_path / release
        folder.mkdir()
        tables = "".join(f'[[jobs]]\nid = "{i}"\nevery = "1m"\ncommand = "true"\n' for i in ids)
        (folder / "cronkeeper.toml").write_text(tables)
        if current.is_symlink():
            current.unlink()
        current.symlink_to(folder)
        config = load_config(current / "cronkeeper.toml", environ={})
        scheduler.service.sync_jobs(config.jobs(), origin=config.origin, by="config")
    jobs = {job.id: job.enabled for job in scheduler.service.list_jobs(include_disabled=True)}
    assert jobs == {"a": True, "b": False}


# ---- serve checks everything before writing -------------------------------------------------------------


def test_serve_refuses_a_past_one_off_before_creating_the_database(tmp_path: Path) -> None:
    """declared_jobs checks with build_spec only; the "one-off in the past" check (_first_due) runs inside
    sync_jobs, after app.scheduler() has created the database.  The error does not name the job either."""
    (tmp_path / "cronkeeper.toml").write_text(
        'db = "sqlite:///ck.db"\n[[jobs]]\nid = "once"\nat = "2020-01-01T00:00:00Z"\ncommand = "true"\n'
    )
    cli = Path(sys.executable).parent / "cronkeeper"
    done = subprocess.run(
        [str(cli), "serve", "--no-web"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0, done.stderr
    assert not (tmp_path / "ck.db").exists(), done.stderr
    assert "jobs[0]" in done.stderr


# ---- runs claimed ahead, vetted when due ---------------------------------------------------------------


def test_a_run_handed_back_at_shutdown_does_not_run_after_its_job_is_paused(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    first = make_scheduler()
    first.add_job("tests.jobs:metrics", id="job", every="1m", start="2026-03-02T08:00:00+00:00")
    clock.set(clock.now() + timedelta(seconds=59.7))
    first.run_pending(wait=False)  # 08:01 claimed ahead
    first.close()  # handed back
    second = make_scheduler()
    second.pause("job")
    clock.set(clock.now() + timedelta(seconds=0.5))
    second.run_pending()
    statuses = [run.status for run in second.runs(job_id="job")]
    assert RunStatus.SUCCEEDED not in statuses, statuses


# ---- catchup="all" waits its turn --------------------------------------------------------------------


def test_catch_up_runs_waiting_their_turn_do_not_run_once_the_job_is_paused(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    gate = threading.Event()
    started: list[int] = []

    def slow() -> None:
        started.append(1)
        gate.wait(20)

    scheduler.add_job(slow, id="job", every="1m", catchup="all")
    clock.advance(timedelta(minutes=4, seconds=30))  # 4 fires due: one starts, three wait
    scheduler.run_pending(wait=False)
    _wait_for(lambda: len(started) == 1)
    scheduler.pause("job")
    gate.set()
    for _ in range(6):
        scheduler.run_pending()
    assert len(started) == 1, [(run.status, run.trigger_source) for run in scheduler.runs(job_id="job")]


def test_runs_waiting_their_turn_are_capped(scheduler: Scheduler, clock: FakeClock) -> None:
    """A job stuck for 150 minutes on a 1-minute schedule: every fire is queued to wait (overlap forbids
    a second run), without bound; CATCHUP_ALL_CAP (100) is applied per claim only."""
    gate = threading.Event()
    scheduler.add_job(lambda: gate.wait(60), id="job", every="1m", catchup="all")
    try:
        for _ in range(150):
            clock.advance(timedelta(minutes=1))
            scheduler.run_pending(wait=False)
        runs = scheduler.runs(job_id="job", limit=1000)
        waiting = [run for run in runs if run.status is RunStatus.QUEUED and run.owner is None]
        assert len(waiting) <= 100
    finally:
        gate.set()


def test_waiting_catch_ups_are_not_starved_by_new_fires(scheduler: Scheduler, clock: FakeClock) -> None:
    """max_instances=2: WAITING_ITS_TURN hides waiting runs while *any* run is active, so each freed slot
    goes to the next on-time fire and the old catch-ups never run (contrary to "queued runs first")."""
    gates: list[threading.Event] = []
    lock = threading.Lock()

    def work() -> None:
        gate = threading.Event()
        with lock:
            gates.append(gate)
        gate.wait(30)

    scheduler.add_job(work, id="job", every="1m", catchup="all", max_instances=2)
    clock.advance(timedelta(minutes=5, seconds=30))  # 5 fires due: two start, three wait
    scheduler.run_pending(wait=False)
    _wait_for(lambda: len(gates) == 2)

    def waiting() -> list[str]:
        runs = scheduler.runs(job_id="job", limit=500)
        return sorted(
            r.scheduled_for.strftime("%H:%M")
            for r in runs
            if r.status is RunStatus.QUEUED and r.owner is None
        )

    assert waiting() == ["08:03", "08:04", "08:05"]
    try:
        for released in range(10):  # each minute one run ends
            gates[released].set()
            time.sleep(0.1)
            scheduler.run_pending(wait=False)
            clock.advance(timedelta(minutes=1))
            scheduler.run_pending(wait=False)
            _wait_for(at_least(gates, released + 3))
        assert "08:03" not in waiting(), waiting()
    finally:
        for gate in gates:
            gate.set()


# ---- login throttling ----------------------------------------------------------------------------------


def test_a_login_of_another_account_does_not_clear_the_count(scheduler: Scheduler) -> None:
    """Names are unique case-sensitively ("admin" and "ADMIN" may both exist) but throttled casefolded:
    the owner of "ADMIN" resets the count of "admin" by logging in, and guesses on without limit."""
    accounts = scheduler.accounts
    actor = Actor("test", "test")
    accounts.add_user("admin", "correct-horse-1", Role.ADMIN, actor=actor)
    accounts.add_user("ADMIN", "attacker-pass-2", Role.VIEWER, actor=actor)
    window = timedelta(minutes=15)
    passed = 0
    for _ in range(5):
        for _ in range(4):  # guesses at admin's password
            if accounts.count_login_attempt("admin", limit=5, window=window) is None:
                passed += 1
        assert accounts.count_login_attempt("ADMIN", limit=5, window=window) is None
        assert accounts.authenticate("ADMIN", "attacker-pass-2") is not None
        accounts.login_succeeded("ADMIN")  # what web/login.py does next
    assert passed <= 5
