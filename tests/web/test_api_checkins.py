"""POST /api/jobs/{id}/checkins: runs reported by jobs that run elsewhere, by a token limited to that."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cronkeeper import FakeClock, Scheduler
from cronkeeper.models import Role, RunStatus, TriggerSource
from cronkeeper.services.accounts import AccountService, Actor


@pytest.fixture
def checkin_client(app: FastAPI, accounts: AccountService, scheduler: Scheduler) -> Iterator[TestClient]:
    scheduler.add_job(id="nightly", cron="0 3 * * *", checkin=True)
    scheduler.add_job(command=["true"], id="ours", cron="0 3 * * *")
    secret = accounts.create_token("cron-host", Role.CHECKIN, actor=Actor("test-setup"))[1]
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        yield client


def test_a_start_and_its_end_are_one_run(
    checkin_client: TestClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    started = checkin_client.post("/api/jobs/nightly/checkins", json={"event": "start"})
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    clock.advance(timedelta(seconds=42))
    ended = checkin_client.post(
        "/api/jobs/nightly/checkins",
        json={"event": "fail", "run_id": run_id, "exit_code": 2, "output": "disk full\n"},
    )
    assert ended.json() == {"run_id": run_id, "job_id": "nightly", "status": "failed"}

    run = scheduler.get_run(run_id)
    assert (run.status, run.exit_code, run.output, run.error) == (
        RunStatus.FAILED,
        2,
        "disk full\n",
        "exit code 2",
    )
    assert run.trigger_source is TriggerSource.CHECKIN
    assert run.triggered_by == "token:cron-host"
    assert run.duration == timedelta(seconds=42)


def test_a_success_alone_is_a_whole_run_and_moves_the_expectation(
    checkin_client: TestClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    fire = scheduler.get_job("nightly").next_fire_at
    assert fire is not None
    clock.set(fire + timedelta(seconds=5))
    answer = checkin_client.post("/api/jobs/nightly/checkins", json={"event": "success", "duration": "3m"})
    assert answer.status_code == 201, answer.text
    run = scheduler.get_run(answer.json()["run_id"])
    assert run.status is RunStatus.SUCCEEDED
    assert run.duration == timedelta(minutes=3)
    job = scheduler.get_job("nightly")
    assert job.next_fire_at is not None and job.next_fire_at - clock.now() > timedelta(hours=23)


def test_a_check_in_token_can_do_nothing_else(checkin_client: TestClient) -> None:
    assert checkin_client.get("/api/jobs").status_code == 403
    assert checkin_client.post("/api/jobs/nightly/runs").status_code == 403
    assert checkin_client.get("/api/channels").status_code == 403


@pytest.mark.parametrize(
    ("job_id", "body", "status", "field"),
    [
        ("nightly", {"event": "finished"}, 422, "event"),
        ("nightly", {"event": "start", "run_id": 1}, 422, "run_id"),
        ("nightly", {"event": "success", "duration": "-5m"}, 422, "duration"),
        ("ours", {"event": "success"}, 409, None),
        ("nosuch", {"event": "success"}, 404, None),
        ("nightly", {"event": "success", "run_id": 999}, 404, None),
    ],
)
def test_bad_check_ins_are_refused_and_change_nothing(
    checkin_client: TestClient,
    scheduler: Scheduler,
    job_id: str,
    body: dict[str, object],
    status: int,
    field: str | None,
) -> None:
    answer = checkin_client.post(f"/api/jobs/{job_id}/checkins", json=body)
    assert answer.status_code == status, answer.text
    if field is not None:
        assert field in answer.text
    assert scheduler.runs() == []


def test_a_run_cannot_be_ended_twice(checkin_client: TestClient) -> None:
    run_id = checkin_client.post("/api/jobs/nightly/checkins", json={"event": "start"}).json()["run_id"]
    checkin_client.post("/api/jobs/nightly/checkins", json={"event": "success", "run_id": run_id})
    again = checkin_client.post("/api/jobs/nightly/checkins", json={"event": "fail", "run_id": run_id})
    assert again.status_code == 409
