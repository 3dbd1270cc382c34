"""The engine end to end on a real SQLite file, stepped with a fake clock."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import pytest

from cronkeeper import EventKind, FakeClock, RunEvent, RunStatus, Scheduler, TriggerSource, ValidationError
from cronkeeper.models import CallableTarget, CommandTarget
from cronkeeper.testing import advance, run_until


def is_alive(pid: int) -> bool:
    """A killed process whose parent died may linger as a zombie until init reaps it: that is dead."""
    try:
        status: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return False
    return status != "zombie"


def statuses(scheduler: Scheduler, job_id: str) -> list[str]:
    return [run.status.value for run in reversed(scheduler.runs(job_id=job_id, limit=1000))]


def test_runs_a_month_of_daily_jobs_in_the_jobs_zone(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:metrics", id="backup", cron="0 3 * * *", timezone="Europe/Paris")
    run_until(scheduler, clock, clock.now() + timedelta(days=31))
    runs = scheduler.runs(job_id="backup", limit=100)
    assert len(runs) == 31
    assert all(run.status is RunStatus.SUCCEEDED for run in runs)
    local_hours = {
        run.scheduled_for.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).hour for run in runs
    }
    assert local_hours == {3}  # across the March DST change
    assert runs[0].result == {"items_processed": 10, "items_succeeded": 9, "items_failed": 1}


def test_interval_job_fires_on_its_grid(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:metrics", id="tick", every="5m")
    run_until(scheduler, clock, clock.now() + timedelta(hours=1))
    fires = sorted(run.scheduled_for for run in scheduler.runs(job_id="tick", limit=100))
    assert len(fires) == 12
    assert {b - a for a, b in itertools.pairwise(fires)} == {timedelta(minutes=5)}


def test_one_off_job_runs_once_and_then_has_no_next_run(scheduler: Scheduler, clock: FakeClock) -> None:
    at = clock.now() + timedelta(hours=2)
    scheduler.add_job("tests.jobs:metrics", id="once", at=at.isoformat())
    advance(scheduler, clock, timedelta(days=2))
    assert statuses(scheduler, "once") == ["succeeded"]
    assert scheduler.get_job("once").next_due_at is None


def test_decorated_function_is_scheduled_and_run(scheduler: Scheduler, clock: FakeClock) -> None:
    calls: list[datetime] = []

    @scheduler.job(id="local", every="1h")
    def local() -> None:
        calls.append(clock.now())

    advance(scheduler, clock, timedelta(hours=3))
    assert len(calls) == 3


def test_failure_is_recorded_with_traceback_and_retried_with_backoff(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.add_job(
        "tests.jobs:boom", id="boom", cron="0 * * * *", max_retries=2, retry_base="10s", retry_jitter=0
    )
    advance(scheduler, clock, timedelta(hours=1, minutes=1))
    runs = list(reversed(scheduler.runs(job_id="boom")))
    assert [run.status.value for run in runs] == ["failed", "failed", "failed"]
    assert [run.attempt for run in runs] == [0, 1, 2]
    assert [run.trigger_source for run in runs] == [
        TriggerSource.SCHEDULE,
        TriggerSource.RETRY,
        TriggerSource.RETRY,
    ]
    assert runs[1].parent_run_id == runs[0].id and runs[2].parent_run_id == runs[1].id
    assert runs[1].due_at - runs[0].finished_at == timedelta(seconds=10)  # type: ignore[operator]
    assert runs[2].due_at - runs[1].finished_at == timedelta(seconds=20)  # type: ignore[operator]
    assert runs[0].error == "RuntimeError: boom"
    assert runs[0].traceback is not None and "raise RuntimeError" in runs[0].traceback


def test_retry_survives_a_restart(make_scheduler: object, clock: FakeClock, db_url: str) -> None:
    first = Scheduler(db_url, clock=clock)
    first.add_job(
        "tests.jobs:boom", id="boom", cron="0 * * * *", max_retries=1, retry_base="1m", retry_jitter=0
    )
    run_until(first, clock, clock.now() + timedelta(minutes=59, seconds=59))
    clock.advance(1)
    first.run_pending()
    first.close()
    second = Scheduler(db_url, clock=clock)
    try:
        advance(second, clock, timedelta(minutes=2))
        assert [run.attempt for run in reversed(second.runs(job_id="boom"))] == [0, 1]
    finally:
        second.close()


def test_command_job_records_output_exit_code_and_metrics(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job(id="cmd", every="1h", command=["sh", "-c", "echo out; echo err >&2; exit 3"])
    advance(scheduler, clock, timedelta(hours=1))
    run = scheduler.runs(job_id="cmd")[0]
    assert run.status is RunStatus.FAILED
    assert run.exit_code == 3
    assert run.output == "out\nerr\n"
    assert run.error == "exited with status 3"
    assert run.cpu_time is not None


def test_command_is_not_interpreted_by_a_shell_unless_asked(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job(id="argv", every="1h", command="echo $HOME;ls")
    scheduler.add_job(id="shell", every="1h", command="echo $((1+2))", shell=True)
    advance(scheduler, clock, timedelta(hours=1))
    assert scheduler.runs(job_id="argv")[0].output == "$HOME;ls\n"
    assert scheduler.runs(job_id="shell")[0].output == "3\n"


def test_output_is_tail_truncated_with_a_marker(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job(
        id="loud", every="1h", command=["python3", "-c", "print('x' * 5000 + 'END')"], output_limit=100
    )
    advance(scheduler, clock, timedelta(hours=1))
    output = scheduler.runs(job_id="loud")[0].output
    assert output is not None
    assert output.startswith("[... 4904 earlier bytes truncated ...]\n")
    assert output.endswith("xxEND\n")


@pytest.mark.parametrize(
    "background",
    [
        pytest.param("sleep 60 &", id="in-its-group"),
        pytest.param("setsid sleep 60 &", id="that-left-its-group"),
    ],
)
def test_command_timeout_kills_the_whole_process_group_and_every_descendant(
    scheduler: Scheduler, clock: FakeClock, background: str
) -> None:
    scheduler.add_job(
        id="hang",
        every="1h",
        timeout="0.5s",
        command=["sh", "-c", f"{background} echo $! > /dev/stderr; sleep 60"],
    )
    advance(scheduler, clock, timedelta(hours=1))
    run = scheduler.runs(job_id="hang")[0]
    assert run.status is RunStatus.TIMED_OUT
    assert run.error is not None and "process group killed" in run.error
    assert not is_alive(int((run.output or "").strip()))


def test_isolated_callable_runs_in_a_child_and_is_killed_on_timeout(
    scheduler: Scheduler, clock: FakeClock, tmp_path: object
) -> None:
    import os
    from pathlib import Path

    pid_file = Path(str(tmp_path)) / "pid"
    scheduler.add_job(
        "tests.jobs:write_pid_and_sleep",
        id="iso",
        every="1h",
        isolate=True,
        # Long enough for a child Python to start and write its pid on a loaded machine.
        timeout="3s",
        kwargs={"path": str(pid_file), "seconds": 60},
    )
    scheduler.add_job("tests.jobs:shout", id="iso-ok", every="1h", isolate=True, kwargs={"text": "hi"})
    advance(scheduler, clock, timedelta(hours=1))
    run = scheduler.runs(job_id="iso")[0]
    assert run.status is RunStatus.TIMED_OUT
    child = int(pid_file.read_text())
    assert child != os.getpid()
    assert not is_alive(child)
    ok = scheduler.runs(job_id="iso-ok")[0]
    assert ok.status is RunStatus.SUCCEEDED
    assert ok.result == {"value": "HI"}
    assert ok.output == "hihihi\n"
    assert ok.peak_memory_bytes is None or ok.peak_memory_bytes > 1_000_000


def test_thread_job_past_its_timeout_is_marked_timed_out_and_its_late_result_dropped(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.add_job("tests.jobs:sleep", id="slow", every="1h", timeout="0.2s", kwargs={"seconds": 1})
    advance(scheduler, clock, timedelta(hours=1))
    assert scheduler.loop is not None
    scheduler.loop.drain(3)
    run = scheduler.runs(job_id="slow")[0]
    assert run.status is RunStatus.TIMED_OUT
    assert run.error is not None and "cannot be killed" in run.error


def test_unimportable_target_is_a_failed_run_not_a_silent_drop(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.add_job("tests.no_such_module:job", id="ghost", every="1h")
    advance(scheduler, clock, timedelta(hours=2))
    runs = scheduler.runs(job_id="ghost")
    assert [run.status for run in runs] == [RunStatus.FAILED, RunStatus.FAILED]
    assert runs[0].error is not None and "cannot import 'tests.no_such_module:job'" in runs[0].error


def test_manual_trigger_is_recorded_with_who_asked(scheduler: Scheduler) -> None:
    scheduler.add_job("tests.jobs:metrics", id="report", cron="0 0 1 1 *")
    run_id = scheduler.trigger("report", triggered_by="alice")
    scheduler.run_pending()
    run = scheduler.get_run(run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert run.trigger_source is TriggerSource.MANUAL
    assert run.triggered_by == "alice"


def test_pause_stops_fires_and_resume_does_not_burst(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:metrics", id="tick", every="1m")
    advance(scheduler, clock, timedelta(minutes=3))
    scheduler.pause("tick")
    advance(scheduler, clock, timedelta(hours=1))
    assert len(scheduler.runs(job_id="tick")) == 3
    scheduler.resume("tick")
    advance(scheduler, clock, timedelta(minutes=1))
    assert statuses(scheduler, "tick") == ["succeeded"] * 4


def test_reschedule_takes_effect_from_now(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:metrics", id="job", cron="0 3 * * *")
    job = scheduler.reschedule("job", cron="30 2 * * *")
    assert job.next_due_at == datetime.fromisoformat("2026-03-03T02:30:00+00:00")
    assert job.version == 2


def test_downtime_is_caught_up_once_and_the_rest_summarised(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:metrics", id="hourly", cron="0 * * * *")
    clock.advance(timedelta(hours=10, minutes=30))  # the process was down
    scheduler.run_pending()
    runs = list(reversed(scheduler.runs(job_id="hourly")))
    assert [run.status.value for run in runs] == ["missed", "succeeded"]
    assert runs[0].result is not None and runs[0].result["missed"] == 9
    assert runs[1].trigger_source is TriggerSource.CATCHUP
    assert runs[1].scheduled_for == datetime.fromisoformat("2026-03-02T18:00:00+00:00")


def test_overlap_forbid_records_skipped_fires(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:sleep", id="long", every="1s", overlap="forbid", kwargs={"seconds": 0.5})
    scheduler.add_job("tests.jobs:sleep", id="long2", every="1s", max_instances=2, kwargs={"seconds": 0.5})
    for _ in range(3):
        clock.advance(1)
        scheduler.run_pending(wait=False)
    assert scheduler.loop is not None
    scheduler.loop.drain(5)
    assert statuses(scheduler, "long") == ["succeeded", "skipped", "skipped"]
    assert statuses(scheduler, "long2") == ["succeeded", "succeeded", "skipped"]
    skipped = scheduler.runs(job_id="long", status="skipped")[0]
    assert skipped.error is not None and "overlap=forbid" in skipped.error


def test_overlap_replace_cancels_the_running_one(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job(id="replace", every="1s", overlap="replace", command=["sleep", "30"])
    clock.advance(1)
    scheduler.run_pending(wait=False)
    clock.advance(1)
    scheduler.run_pending(wait=False)
    clock.advance(1)
    scheduler.run_pending(wait=False)
    assert scheduler.loop is not None
    scheduler.loop.cancel_local(scheduler.runs(job_id="replace")[0].id, "test over")
    scheduler.loop.drain(10)
    assert statuses(scheduler, "replace") == ["cancelled", "cancelled", "cancelled"]


def test_listeners_hear_every_outcome(scheduler: Scheduler, clock: FakeClock) -> None:
    events: list[RunEvent] = []
    scheduler.add_listener(events.append)
    scheduler.add_job("tests.jobs:metrics", id="ok", every="1h")
    scheduler.add_job("tests.jobs:boom", id="bad", every="1h")
    advance(scheduler, clock, timedelta(hours=1))
    kinds = sorted((event.job_id, event.kind.value) for event in events)
    assert kinds == [("bad", "failed"), ("bad", "started"), ("ok", "started"), ("ok", "succeeded")]
    failed = next(event for event in events if event.kind is EventKind.FAILED)
    assert isinstance(failed.exception, RuntimeError)


def test_a_failing_listener_does_not_stop_the_scheduler(scheduler: Scheduler, clock: FakeClock) -> None:
    def broken(event: RunEvent) -> None:
        raise ValueError("listener bug")

    scheduler.add_listener(broken)
    scheduler.add_job("tests.jobs:metrics", id="ok", every="1h")
    advance(scheduler, clock, timedelta(hours=2))
    assert statuses(scheduler, "ok") == ["succeeded", "succeeded"]


def test_history_is_paginated_newest_first(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:metrics", id="tick", every="1m")
    advance(scheduler, clock, timedelta(minutes=25))
    first = scheduler.runs(job_id="tick", limit=10)
    second = scheduler.runs(job_id="tick", limit=10, before_id=first[-1].id)
    third = scheduler.runs(job_id="tick", limit=10, before_id=second[-1].id)
    ids = [run.id for run in first + second + third]
    assert len(ids) == 25 and ids == sorted(ids, reverse=True)


def test_edit_can_switch_a_job_between_command_and_call(scheduler: Scheduler) -> None:
    scheduler.add_job(id="switch", every="1h", command=["echo", "hi"], env={"A": "1"})
    job = scheduler.edit("switch", call="tests.jobs:metrics", kwargs={"items": 3})
    assert job.spec.target == CallableTarget("tests.jobs:metrics", (), {"items": 3})
    job = scheduler.edit("switch", command="echo back")
    assert job.spec.target == CommandTarget(("echo", "back"))


def test_sync_jobs_declares_a_whole_set_and_validate_checks_one(scheduler: Scheduler) -> None:
    first = scheduler.sync_jobs(
        [{"id": "a", "every": "1h", "command": ["true"]}, {"id": "b", "every": "2h", "command": ["true"]}],
        origin="reports",
    )
    assert (first.added, first.disabled) == (["a", "b"], [])
    again = scheduler.sync_jobs([{"id": "a", "every": "1h", "command": ["true"]}], origin="reports")
    assert (again.unchanged, again.disabled) == (["a"], ["b"])
    assert not scheduler.get_job("b").enabled
    with pytest.raises(ValidationError) as caught:
        scheduler.validate({"id": "c", "every": "soon", "command": ["true"]})
    assert caught.value.field == "every"


def test_validate_refuses_what_adding_would_refuse(scheduler: Scheduler) -> None:
    with pytest.raises(ValidationError) as caught:
        scheduler.validate({"id": "once", "at": "2020-01-01T08:00:00+00:00", "command": ["true"]})
    assert caught.value.field == "at"


def test_declaring_a_job_another_process_just_added_updates_it(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler.add_job(id="shared", every="1h", command=["true"])
    real_find = scheduler.store.find_job
    calls = iter([None])  # the first look-up misses: the other process added it just after

    def racing_find(job_id: str) -> object:
        return next(calls, real_find(job_id)) if job_id == "shared" else real_find(job_id)

    monkeypatch.setattr(scheduler.store, "find_job", racing_find)
    job, change = scheduler.service.upsert_job(
        {"id": "shared", "every": "1h", "command": ["true"]}, origin="code"
    )
    assert (job.id, change) == ("shared", "unchanged")


def test_a_schedule_that_cannot_be_computed_is_recorded_on_its_job_and_the_others_fire(
    scheduler: Scheduler, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler.add_job("tests.jobs:metrics", id="stuck", cron="* * * * *", timezone="Pacific/Chatham")
    scheduler.add_job("tests.jobs:metrics", id="fine", every="1m")
    # The search bound, normally far beyond any real search, stands in for a defect that would spin.
    monkeypatch.setattr("cronkeeper.cron.MAX_CANDIDATES", 0)
    advance(scheduler, clock, timedelta(minutes=5))
    (stuck,) = scheduler.runs(job_id="stuck")
    assert stuck.status is RunStatus.FAILED
    assert stuck.error is not None
    assert "'* * * * *' in Pacific/Chatham" in stuck.error
    assert statuses(scheduler, "fine") == ["succeeded"] * 5
    assert "job stuck: could not plan its fires" in caplog.text
    # Once the schedule computes again, the job fires again.
    monkeypatch.undo()
    advance(scheduler, clock, timedelta(minutes=3))
    assert RunStatus.SUCCEEDED in {run.status for run in scheduler.runs(job_id="stuck")}


def test_a_schedule_that_cannot_be_computed_is_refused_when_saved_naming_it(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cronkeeper.cron.MAX_CANDIDATES", 0)
    with pytest.raises(ValidationError) as refused:
        scheduler.add_job(
            "tests.jobs:metrics", id="stuck", cron="*/5 3 * * *", timezone="Australia/Lord_Howe"
        )
    assert refused.value.field == "cron"
    assert "'*/5 3 * * *' in Australia/Lord_Howe" in str(refused.value)
    assert scheduler.jobs() == []


def test_resuming_from_several_places_at_once_is_no_conflict(scheduler: Scheduler) -> None:
    scheduler.add_job("tests.jobs:metrics", id="nightly", cron="0 3 * * *")
    errors: list[Exception] = []

    def resume(barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            scheduler.resume("nightly")
        except Exception as exc:
            errors.append(exc)

    for _ in range(5):  # a double click, two admins, the CLI and the dashboard
        scheduler.pause("nightly")
        barrier = threading.Barrier(4)
        threads = [threading.Thread(target=resume, args=(barrier,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    job = scheduler.get_job("nightly")
    assert not job.paused
    assert job.next_due_at is not None


@pytest.mark.parametrize(
    ("expression", "zone"), [("* 2 * 3 0L", "Europe/Berlin"), ("*/30 0 * 3 0#2", "America/Havana")]
)
def test_a_schedule_whose_every_time_the_clock_skips_is_refused_naming_the_zone(
    scheduler: Scheduler, expression: str, zone: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        scheduler.add_job("tests.jobs:metrics", id="never", cron=expression, timezone=zone)
    assert refused.value.field == "cron"
    assert f"never fires in {zone}" in str(refused.value)
    assert scheduler.jobs() == []


def test_a_scheduler_opens_a_sqlite_file_from_its_path(tmp_path: Path, clock: FakeClock) -> None:
    folder = tmp_path / "odd?name=%41"  # a path, not a URL: nothing in it is parsed
    folder.mkdir()
    with Scheduler(folder / "jobs.db", clock=clock) as scheduler:
        scheduler.add_job("tests.jobs:metrics", id="tick", every="1m")
        shown = scheduler.database_url
    assert [path.name for path in folder.iterdir() if path.suffix == ".db"] == ["jobs.db"]
    with Scheduler(shown, clock=clock) as again:  # the URL it shows, quoted, names the same file
        assert [job.id for job in again.jobs()] == ["tick"]
