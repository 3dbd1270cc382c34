"""/metrics: Prometheus text, protected like the API unless configured public, fed by real runs."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from cronkeeper.clock import FakeClock
from cronkeeper.scheduler import Scheduler
from cronkeeper.testing import advance
from cronkeeper.web import WebSettings, create_app


def test_metrics_need_credentials_unless_public(
    anon: TestClient, viewer_token: str, scheduler: Scheduler
) -> None:
    assert anon.get("/metrics").status_code == 401
    assert anon.get("/metrics", headers={"Authorization": f"Bearer {viewer_token}"}).status_code == 200
    with TestClient(create_app(scheduler, WebSettings(public_metrics=True))) as public:
        response = public.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_runs_durations_lateness_and_loop_health_are_exported(
    scheduler: Scheduler, clock: FakeClock, viewer_token: str, anon: TestClient
) -> None:
    scheduler.add_job("tests.jobs:metrics", id="tick", every="1m")
    scheduler.add_job("tests.jobs:boom", id="fails", every="1m")
    advance(scheduler, clock, timedelta(minutes=3))
    text = anon.get("/metrics", headers={"Authorization": f"Bearer {viewer_token}"}).text
    assert 'cronkeeper_runs_total{job="tick",status="succeeded"} 3.0' in text
    assert 'cronkeeper_runs_total{job="fails",status="failed"} 3.0' in text
    assert 'cronkeeper_run_duration_seconds_count{job="tick"} 3.0' in text
    assert "cronkeeper_run_lateness_seconds_count 6.0" in text
    assert 'cronkeeper_runs_active{status="running"} 0.0' in text
    assert "cronkeeper_scheduler_up" in text
