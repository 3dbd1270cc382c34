"""Figures and history by time window over HTTP: the documented shapes, the window, and bad windows as 422s
naming the parameter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cronkeeper.clock import FakeClock
from cronkeeper.scheduler import Scheduler
from cronkeeper.store.records import stats_to_json
from cronkeeper.testing import advance
from cronkeeper.web.api_models import JobStatsOut, RunPage, StatsOut

HOUR = timedelta(hours=1)


@pytest.fixture
def viewer(anon: TestClient, viewer_token: str) -> TestClient:
    anon.headers["Authorization"] = f"Bearer {viewer_token}"
    return anon


@pytest.fixture
def history(scheduler: Scheduler, clock: FakeClock) -> str:
    """Fires of "ok" (succeeds) and "boom" (fails) at +1 h … +4 h from now; returns the first as ISO-8601."""
    first = clock.now() + HOUR
    scheduler.add_job("tests.jobs:metrics", id="ok", every="1h")
    scheduler.add_job("tests.jobs:boom", id="boom", every="1h")
    advance(scheduler, clock, 4 * HOUR)
    return first.isoformat()


def test_a_jobs_stats_are_the_librarys_in_the_documented_shape(
    viewer: TestClient, scheduler: Scheduler, history: str
) -> None:
    response = viewer.get("/api/jobs/ok/stats")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == stats_to_json(scheduler.stats("ok")["ok"])
    assert set(body) == set(JobStatsOut.model_fields)
    stats = JobStatsOut.model_validate(body)
    assert (stats.total, stats.succeeded, stats.success_rate, stats.last_failure) == (4, 4, 1.0, None)
    assert stats.last_success is not None and stats.last_success.at.utcoffset() == timedelta(0)


def test_every_jobs_stats_over_a_window(viewer: TestClient, history: str, clock: FakeClock) -> None:
    first = clock.now() - 3 * HOUR
    until = (first + 2 * HOUR).isoformat()
    response = viewer.get("/api/stats", params={"since": history, "until": until})
    assert response.status_code == 200, response.text
    report = StatsOut.model_validate(response.json())
    assert (report.since, report.until) == (first, first + 2 * HOUR)
    assert [(job.job_id, job.total, job.failures) for job in report.jobs] == [("boom", 2, 2), ("ok", 2, 0)]
    boom = report.jobs[0]
    assert boom.success_rate == 0.0 and boom.last_failure is not None
    assert "boom" in (boom.last_failure.error or "")
    assert response.json()["since"] == first.isoformat()


def test_run_listings_are_filtered_by_the_instant_runs_are_for(
    viewer: TestClient, history: str, clock: FakeClock
) -> None:
    first = clock.now() - 3 * HOUR
    window = {"since": (first + HOUR).isoformat(), "until": (first + 3 * HOUR).isoformat()}
    for url in ("/api/runs", "/api/jobs/ok/runs"):
        response = viewer.get(url, params={**window, "job_id": "ok"})
        page = RunPage.model_validate(response.json())
        assert [run.scheduled_for for run in page.runs] == [first + 2 * HOUR, first + HOUR], url
    assert len(viewer.get("/api/runs", params={"since": history.replace("+00:00", "Z")}).json()["runs"]) == 8


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00+00:00"}, "until"),
        ({"since": "2026-03-02T08:00:00"}, "since"),
        ({"since": "2026-03-02T10:00:00+00:00", "until": "2026-03-02T09:00:00+00:00"}, "until"),
        ({"until": "9999-12-31T23:59:59-05:00"}, "until"),
        ({"since": "2026-03-02T08:00:00+00:00" * 3}, "since"),
    ],
)
def test_bad_windows_are_422_naming_the_parameter(
    viewer: TestClient, history: str, query: dict[str, Any], field: str
) -> None:
    for url in ("/api/stats", "/api/jobs/ok/stats", "/api/runs", "/api/jobs/ok/runs"):
        response = viewer.get(url, params=query)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["field"] == field, url


def test_the_stats_of_an_unknown_job_are_404(viewer: TestClient) -> None:
    assert viewer.get("/api/jobs/ghost/stats").status_code == 404


def test_jobs_without_runs_have_zeros(viewer: TestClient, scheduler: Scheduler) -> None:
    scheduler.add_job("tests.jobs:metrics", id="quiet", cron="0 0 1 1 *")
    body = viewer.get("/api/stats").json()
    assert body["since"] is None and body["until"] is None
    (quiet,) = body["jobs"]
    assert (quiet["total"], quiet["success_rate"], quiet["median_seconds"], quiet["last_success"]) == (
        0,
        None,
        None,
        None,
    )
    assert set(quiet["runs"].values()) == {0}
