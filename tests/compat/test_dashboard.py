"""The issue's promise: APScheduler 3 code with one import changed shows its runs in the dashboard."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from cronkeeper import FakeClock
from cronkeeper.compat.apscheduler import BackgroundScheduler
from cronkeeper.models import Role
from cronkeeper.services.accounts import Actor
from cronkeeper.web import create_app
from tests.compat.conftest import Factory
from tests.compat.helpers import step
from tests.web.conftest import ADMIN_PASSWORD, FAST_HASHER, login


def nightly_report() -> dict[str, int]:
    return {"items_processed": 12}


def test_facade_jobs_and_their_runs_appear_in_the_dashboard(make: Factory, clock: FakeClock) -> None:
    scheduler = make(BackgroundScheduler)
    scheduler.add_job(nightly_report, "cron", hour=3, id="nightly-report")
    step(scheduler, clock, timedelta(days=2))
    app = create_app(scheduler.core)
    accounts = app.state.cronkeeper.accounts
    accounts.hasher = FAST_HASHER
    accounts.add_user("admin", ADMIN_PASSWORD, Role.ADMIN, actor=Actor("test-setup"))
    with TestClient(app) as client:
        login(client, "admin", ADMIN_PASSWORD)
        jobs = client.get("/")
        assert "nightly-report" in jobs.text
        assert "At 03:00" in jobs.text
        page = client.get("/jobs/nightly-report")
        assert page.text.count("succeeded") >= 2
        runs = client.get("/api/runs", params={"job_id": "nightly-report"}).json()["runs"]
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
    assert runs[0]["result"] == {"items_processed": 12}
