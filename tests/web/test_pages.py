"""The dashboard through HTTP: pages, filters and paging, the schedule editor, admin actions and their
audit trail, what viewers may not do, escaping, the output download, the live run stream and the jobs page's
cost."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, insert, update

from cronkeeper.clock import FakeClock
from cronkeeper.exceptions import ConflictError
from cronkeeper.models import AuditEvent, RunStatus, TriggerSource
from cronkeeper.scheduler import Scheduler
from cronkeeper.services.accounts import AccountService, Actor
from cronkeeper.specs import spec_to_dict
from cronkeeper.store.records import AuditFilter
from cronkeeper.store.schema import nodes, runs
from cronkeeper.testing import sql_engine
from cronkeeper.triggers import CronTrigger
from cronkeeper.web.pages import live, timeline
from tests.web.conftest import START

XSS_NAME = "<script>alert(1)</script>"
XSS_OUTPUT = "<img src=x onerror=alert(1)>"
_SECONDS = itertools.count(1)


def add_job(scheduler: Scheduler, job_id: str, **options: Any) -> None:
    """A job that runs ``true`` at 03:00 unless ``options`` say otherwise (``command=None`` for another
    target)."""
    schedule = {} if {"every", "at", "cron"} & options.keys() else {"cron": "0 3 * * *"}
    data = {"id": job_id, **schedule, "command": ["true"], **options}
    scheduler.service.add_job({key: value for key, value in data.items() if value is not None}, by="setup")


def add_runs(
    scheduler: Scheduler,
    job_id: str,
    outcomes: Sequence[tuple[str, float | None]],
    *,
    output: str | None = None,
    source: str = "schedule",
    owner: str | None = "node-1",
) -> list[int]:
    """Runs written as the engine writes them, oldest first: (status, duration in seconds or None)."""
    ids = []
    with sql_engine(scheduler).begin() as conn:
        for status, seconds in outcomes:
            due = START - timedelta(days=1) + timedelta(seconds=next(_SECONDS))
            started = None if seconds is None and status != "running" else due
            finished = None if seconds is None else due + timedelta(seconds=seconds)
            row = {
                "job_id": job_id,
                "scheduled_for": due,
                "attempt": 0,
                "trigger_source": source,
                "owner": owner,
                "status": status,
                "due_at": due,
                "queued_at": due,
                "started_at": started,
                "finished_at": finished,
                "output": output,
                "error": None if status in ("succeeded", "running") else f"{status} for a reason",
            }
            ids.append(int(conn.execute(insert(runs).returning(runs.c.id), row).scalar_one()))
    return ids


def job_links(html: str) -> list[str]:
    return re.findall(r'<a href="/jobs/([^"/]+)">', html)


def form(**changes: str) -> dict[str, str]:
    """The edit form as the page fills it for a default job with ``0 3 * * *`` that runs ``true``."""
    values = {
        "id": "",
        "name": "",
        "description": "",
        "tags": "",
        "target": "command",
        "argv": "true\n",
        "retry_jitter": "0.1",
        "output_limit": "65536",
        "kind": "cron",
        "schedule": "0 3 * * *",
        "timezone": "UTC",
        "start": "",
        "end": "",
        "timeout": "",
        "max_retries": "0",
        "retry_base": "1s",
        "retry_factor": "2",
        "retry_cap": "30s",
        "overlap": "allow",
        "max_instances": "1",
        "misfire_grace": "1m",
        "catchup": "once",
    }
    return {**values, **changes}


def last_audit(
    scheduler: Scheduler, *, object_type: str | None = None, object_id: str | None = None
) -> AuditEvent:
    events = scheduler.audit.list(AuditFilter(object_type=object_type, object_id=object_id, limit=1))
    assert events, f"no audit event for {object_type} {object_id}"
    return events[0]


# ---- pages render ----------------------------------------------------------------------------------------


def test_every_page_renders_for_a_viewer_without_actions(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "report", tags=["reports"])
    (run_id,) = add_runs(scheduler, "report", [("failed", 2.0)], output="partial")
    for path in ("/", "/jobs/report", "/runs", f"/runs/{run_id}", "/status", "/status/live", "/audit"):
        response = viewer_client.get(path)
        assert response.status_code == 200, path
    job_page = viewer_client.get("/jobs/report").text
    assert "Run now" not in job_page
    assert "/jobs/report/edit" not in job_page
    assert "/jobs/report/delete" not in job_page


def test_unknown_job_and_run_are_404(viewer_client: TestClient) -> None:
    assert viewer_client.get("/jobs/nope").status_code == 404
    assert viewer_client.get("/runs/999").status_code == 404
    assert viewer_client.get("/runs/999/events").status_code == 404


def test_jobs_page_shows_schedule_state_next_run_and_health(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "nightly", cron="30 2 * * *", timezone="Europe/Paris")
    add_job(scheduler, "held", every="5m")
    scheduler.service.pause("held")
    add_runs(
        scheduler,
        "nightly",
        [("succeeded", 1.0), ("failed", 2.0), ("skipped", None), ("succeeded", 3.0), ("cancelled", 50.0)],
    )
    page = viewer_client.get("/").text
    assert "30 2 * * *" in page
    assert "At 02:30 every day (Europe/Paris)" in page
    assert "Europe/Paris" in page
    assert "every 5m" in page
    assert '<span class="status state-paused">paused</span>' in page
    assert "2026-03-03 01:30:00 UTC" in page  # next run of nightly, 02:30 in Paris
    assert "status-cancelled" in page  # the last run, whatever it was
    assert "67%" in page  # 2 of 3 verdicts; skipped and cancelled count neither way
    assert "2.0 s" in page  # median of 1, 2 and 3 s; the cancelled 50 s is no measure of the job
    assert re.search(r'<polyline points="[\d., ]+"/>', page)
    assert "never ran" in page


def test_jobs_filters_by_state_tag_and_search(viewer_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "alpha", name="Alpha report", tags=["reports"])
    add_job(scheduler, "beta", tags=["reports-old"])
    add_job(scheduler, "gamma", command=["echo", "reports"])  # "reports" in its spec, but not as a tag
    add_job(scheduler, "delta_1")
    scheduler.service.pause("beta")
    assert job_links(viewer_client.get("/?state=paused").text) == ["beta"]
    assert job_links(viewer_client.get("/?state=active").text) == ["alpha", "delta_1", "gamma"]
    assert job_links(viewer_client.get("/?tag=reports").text) == ["alpha"]
    assert job_links(viewer_client.get("/?q=ALPHA%20REP").text) == ["alpha"]  # by name, any case
    assert job_links(viewer_client.get("/?q=ta_").text) == ["delta_1"]  # _ is literal, not a wildcard
    assert job_links(viewer_client.get("/?q=%25").text) == []
    assert job_links(viewer_client.get("/?q=&state=&tag=").text) == ["alpha", "beta", "delta_1", "gamma"]
    bad = viewer_client.get("/?state=sleepy")
    assert bad.status_code == 422
    assert "state" in bad.text


def test_the_filter_forms_htmx_request_gets_only_the_table(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "alpha")
    page = viewer_client.get("/")
    assert 'hx-get="/"' in page.text
    assert 'hx-trigger="input changed delay:300ms"' in page.text
    fragment = viewer_client.get("/?q=alp", headers={"HX-Request": "true", "HX-Target": "job-table"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert '<table class="jobs">' in fragment.text
    assert job_links(fragment.text) == ["alpha"]
    restored = viewer_client.get(
        "/?q=alp", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restored.text


def test_jobs_are_paged_by_id(viewer_client: TestClient, scheduler: Scheduler) -> None:
    scheduler.add_jobs({"id": f"job-{i:03d}", "every": "1h", "command": ["true"]} for i in range(120))
    first = viewer_client.get("/").text
    assert job_links(first) == [f"job-{i:03d}" for i in range(50)]
    assert 'href="/?after=job-049"' in first
    second = viewer_client.get("/?after=job-049").text
    assert job_links(second)[0] == "job-050"
    third = viewer_client.get("/?after=job-099").text
    assert job_links(third) == [f"job-{i:03d}" for i in range(100, 120)]
    assert "Next page" not in third
    assert "First page" in third


def test_paging_with_a_tag_continues_past_rows_the_prefilter_let_through(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    # Every job mentions "x" in its command, only every third one has the tag: most rows fail the exact check.
    scheduler.add_jobs(
        {"id": f"job-{i:03d}", "every": "1h", "command": ["echo", "x"], "tags": ["x"] if i % 3 == 0 else []}
        for i in range(300)
    )
    seen: list[str] = []
    query = "/?tag=x"
    for _ in range(10):
        page = viewer_client.get(query).text
        seen += job_links(page)
        found = re.search(r'href="(/\?[^"]*after=[^"]+)">Next page', page)
        if found is None:
            break
        query = found.group(1).replace("&amp;", "&")
    assert seen == [f"job-{i:03d}" for i in range(0, 300, 3)]


# ---- the job page ----------------------------------------------------------------------------------------


def test_job_page_shows_configuration_next_five_fires_and_a_chart(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "nightly", description="Builds the report", timeout="5m")
    add_runs(scheduler, "nightly", [("succeeded", 1.0), ("failed", 4.0), ("missed", None)])
    page = viewer_client.get("/jobs/nightly").text
    assert "Builds the report" in page
    assert "At 03:00 every day (UTC)" in page
    for day in range(3, 8):
        assert f"2026-03-0{day} 03:00:00 UTC" in page
    assert '<dt>timeout</dt><dd class="mono">5m</dd>' in page
    assert '<rect class="bar-succeeded"' in page
    assert '<rect class="bar-failed"' in page
    assert '<rect class="bar-other"' in page
    assert "<title>run 2: failed in 4.0 s</title>" in page


def test_a_job_whose_function_does_not_import_here_is_marked(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    job = scheduler.add_job("billing.tasks:invoice", id="elsewhere", every="1h")
    assert "cannot import here" not in viewer_client.get("/jobs/elsewhere").text  # a view imports nothing
    assert scheduler.service.target_problem(job.spec) is not None  # as saving it from a face does
    page = viewer_client.get("/jobs/elsewhere").text
    assert "cannot import here" in page
    assert "cannot import &#39;billing.tasks:invoice&#39;" in page


def test_env_values_are_hidden_from_viewers(
    viewer_client: TestClient, admin_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "deploy", env={"API_KEY": "s3cr3t-value"})
    seen_by_viewer = viewer_client.get("/jobs/deploy").text
    assert "s3cr3t-value" not in seen_by_viewer
    assert "********" in seen_by_viewer
    assert "s3cr3t-value" in admin_client.get("/jobs/deploy").text


def test_job_history_is_filtered_and_paged(viewer_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "busy")
    ids = add_runs(scheduler, "busy", [("succeeded", 1.0)] * 55 + [("failed", 1.0)] * 5)
    manual = add_runs(scheduler, "busy", [("succeeded", 1.0)], source="manual")
    page = viewer_client.get("/jobs/busy").text
    shown = [int(n) for n in re.findall(r'<a href="/runs/(\d+)">#', page)]
    assert shown == sorted([*ids, *manual], reverse=True)[:50]
    assert f"before_id={shown[-1]}" in page
    older = viewer_client.get(f"/jobs/busy?before_id={shown[-1]}").text
    rest = [int(n) for n in re.findall(r'<a href="/runs/(\d+)">#', older)]
    assert rest == sorted([*ids, *manual], reverse=True)[50:]
    failed = viewer_client.get("/jobs/busy?status=failed").text
    assert len(re.findall(r'<a href="/runs/(\d+)">#', failed)) == 5
    by_hand = viewer_client.get("/jobs/busy?source=manual").text
    assert re.findall(r'<a href="/runs/(\d+)">#', by_hand) == [str(manual[0])]
    assert viewer_client.get("/jobs/busy?source=telepathy").status_code == 422


def test_a_page_exactly_full_has_no_link_to_an_empty_next_page(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    scheduler.add_jobs({"id": f"job-{i:02d}", "every": "1h", "command": ["true"]} for i in range(50))
    runs_ids = add_runs(scheduler, "job-00", [("succeeded", 1.0)] * 50)
    for i in range(25):
        scheduler.service.pause(f"job-{i:02d}", by="ops")
        scheduler.service.resume(f"job-{i:02d}", by="ops")
    jobs_page = viewer_client.get("/").text
    assert len(job_links(jobs_page)) == 50
    assert "Next page" not in jobs_page
    for path in ("/runs", "/jobs/job-00"):
        page = viewer_client.get(path).text
        assert len(re.findall(r'<a href="/runs/(\d+)">#', page)) == 50, path
        assert "before_id=" not in page, path
        assert "Older" not in page, path
    audit = viewer_client.get("/audit?actor=ops").text
    assert audit.split("<tbody>")[1].count("<tr>") == 50
    assert "Older" not in audit
    # One more, and the link is back, to a page that holds it.
    (newest,) = add_runs(scheduler, "job-00", [("failed", 1.0)])
    page = viewer_client.get("/runs").text
    older = re.search(r'href="/runs\?(before_id=\d+)"', page)
    assert older is not None
    rest = viewer_client.get(f"/runs?{older.group(1)}").text
    assert re.findall(r'<a href="/runs/(\d+)">#', rest) == [str(min(runs_ids))]
    assert newest > max(runs_ids)


HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/runs?before_id={HUGE}",
        f"/jobs/nightly?before_id={HUGE}",
        f"/audit?before_id={HUGE}",
        f"/runs/{HUGE}",
        f"/runs/{HUGE}/output.txt",
        f"/runs/{HUGE}/events",
        f"/runs?before_id=-{HUGE}",
        "/runs/0",
    ],
)
def test_ids_out_of_range_are_bad_input_not_a_server_error(
    app: FastAPI, viewer_client: TestClient, scheduler: Scheduler, path: str
) -> None:
    add_job(scheduler, "nightly")
    with TestClient(app, raise_server_exceptions=False) as client:
        client.cookies = viewer_client.cookies
        response = client.get(path)
    assert response.status_code == 422, response.text
    assert "<html" in response.text


def test_cancelling_a_run_id_out_of_range_is_bad_input(app: FastAPI, admin_client: TestClient) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        client.cookies = admin_client.cookies
        client.headers.update(admin_client.headers)
        assert client.post(f"/runs/{HUGE}/cancel").status_code == 422


# ---- the schedule editor ---------------------------------------------------------------------------------


def test_preview_describes_a_good_schedule_and_names_the_field_of_a_bad_one(admin_client: TestClient) -> None:
    good = admin_client.post(
        "/jobs/preview", data={"kind": "cron", "schedule": "0 9 * * 1-5", "timezone": "Europe/Paris"}
    )
    assert good.status_code == 200
    assert "At 09:00 on Monday through Friday (Europe/Paris)" in good.text
    assert "2026-03-03 08:00:00 UTC" in good.text
    assert len(re.findall(r"<li>", good.text)) == 5
    bad = admin_client.post("/jobs/preview", data={"kind": "cron", "schedule": "61 * * * *"})
    assert bad.status_code == 200  # htmx swaps only successful answers
    assert "<strong>cron</strong>" in bad.text
    zone = admin_client.post(
        "/jobs/preview", data={"kind": "cron", "schedule": "0 9 * * *", "timezone": "Mars/Base"}
    )
    assert "<strong>timezone</strong>" in zone.text
    interval = admin_client.post("/jobs/preview", data={"kind": "every", "schedule": "90m"})
    assert "Every 1h30m" in interval.text


def test_editing_saves_and_is_audited(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    edit_page = admin_client.get("/jobs/nightly/edit")
    assert edit_page.status_code == 200
    assert 'hx-post="/jobs/preview"' in edit_page.text
    version = re.search(r'name="version" value="(\d+)"', edit_page.text)
    assert version is not None
    data = form(schedule="30 4 * * 1-5", timezone="Europe/Paris", timeout="5m", max_retries="2")
    response = admin_client.post(
        "/jobs/nightly/edit", data={**data, "version": version.group(1)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/jobs/nightly"
    job = scheduler.service.get_job("nightly")
    assert job.spec.trigger.describe() == "At 04:30 on Monday through Friday (Europe/Paris)"
    assert job.spec.timeout == timedelta(minutes=5)
    assert job.spec.retry.max_retries == 2
    audit = last_audit(scheduler, object_type="job", object_id="nightly")
    assert (audit.action, audit.actor, audit.via) == ("edit", "admin", "web testclient")
    assert audit.details is not None
    assert audit.details["cron"] == {"from": "0 3 * * *", "to": "30 4 * * 1-5"}
    assert audit.details["timeout"] == {"from": None, "to": 300.0}


def test_an_edit_that_leaves_the_schedule_alone_keeps_it(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "ticker", every="10m")
    before = scheduler.service.get_job("ticker")
    page = admin_client.get("/jobs/ticker/edit").text
    anchor = re.search(r'name="start" value="([^"]+)"', page)
    assert anchor is not None
    data = form(kind="every", schedule="10m", timezone="", start=anchor.group(1), catchup="skip")
    assert admin_client.post("/jobs/ticker/edit", data=data, follow_redirects=False).status_code == 303
    after = scheduler.service.get_job("ticker")
    assert after.spec.trigger == before.spec.trigger
    assert after.next_due_at == before.next_due_at
    assert after.spec.catchup.value == "skip"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedule": "61 * * * *"}, "cron"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"max_retries": "lots"}, "max_retries"),
        ({"timeout": "soon"}, "timeout"),
        ({"overlap": "sometimes"}, "overlap"),
        ({"kind": "whenever"}, "kind"),
    ],
)
def test_a_bad_edit_is_422_names_the_field_and_changes_nothing(
    admin_client: TestClient, scheduler: Scheduler, changes: dict[str, str], field: str
) -> None:
    add_job(scheduler, "nightly")
    before = scheduler.service.get_job("nightly")
    response = admin_client.post("/jobs/nightly/edit", data=form(**{"max_retries": "3", **changes}))
    assert response.status_code == 422
    assert f"Nothing was saved. <strong>{field}</strong>" in response.text
    assert 'aria-invalid="true"' in response.text
    assert scheduler.service.get_job("nightly") == before
    assert last_audit(scheduler, object_type="job", object_id="nightly").action == "create"


def test_a_stale_edit_is_refused(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    scheduler.service.edit_job("nightly", {"max_retries": 1})
    response = admin_client.post("/jobs/nightly/edit", data={**form(max_retries="5"), "version": "1"})
    assert response.status_code == 409
    assert scheduler.service.get_job("nightly").spec.retry.max_retries == 1


def test_an_edit_with_a_version_out_of_range_is_422(
    app: FastAPI, admin_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "nightly")
    with TestClient(app, raise_server_exceptions=False) as client:
        client.cookies = admin_client.cookies
        client.headers.update(admin_client.headers)
        response = client.post("/jobs/nightly/edit", data={**form(max_retries="5"), "version": HUGE})
    assert response.status_code == 422
    assert "Nothing was saved. <strong>version</strong>" in response.text
    assert scheduler.service.get_job("nightly").version == 1


def form_as_shown(page: str) -> dict[str, str]:
    """What a browser submits for the edit page as it was served, untouched."""
    values = {
        name: unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', page)
        if name not in ("seconds", "isolate", "csrf_token")
    }
    for name, options in re.findall(r'<select id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        selected = re.search(r'<option value="([^"]*)" selected', options)
        values[name] = selected.group(1) if selected else ""
    for name, text in re.findall(r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        values[name] = unescape(text)
    for name in ("seconds", "isolate"):
        if f'name="{name}" value="on" checked' in page:
            values[name] = "on"
    return values


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "cron": "30 2 * * *",
            "timezone": "Europe/Paris",
            "timeout": 1234.5678,
            "retry_base": 0.25,
            "retry_factor": 1.23456789,
            "retry_cap": 3600.000001,
            "misfire_grace": 0.333333,
            "jitter": "7s",
        },
        {"every": 90.125, "start": "2026-01-01T00:17:00.5+00:00"},
        {
            "command": "tar czf /backups/$(date +%F).tgz /data",
            "shell": True,
            "env": {"A": "1=2", "B": ""},
            "cwd": "/tmp",
            "tags": ["x", "y"],
            "name": "Backup <nightly>",
            "description": "keeps\ntwo lines",
            "notify": [],
            "notify_on": ["failed", "recovered"],
            "notify_after": 3,
            "notify_every_failure": False,
            "long_running": "3x",
            "retry_jitter": 0,
            "output_limit": 1000,
        },
        # A value no line can hold (a PEM key, a CRLF, a name with a space) is shown as JSON instead.
        {"command": ["env"], "env": {"KEY": "-----BEGIN-----\nabc\r\n-----END-----", " SPACED": " x"}},
        {"command": None, "call": "cronkeeper.demo:count_items", "args": [1, "a"], "kwargs": {"k": [1]}},
        {"command": None, "call": "cronkeeper.demo:count_items", "isolate": True, "long_running": 90.5},
        {"command": None, "checkin": True, "notify": ["ops"]},
    ],
)
def test_saving_the_form_untouched_changes_nothing(
    admin_client: TestClient, scheduler: Scheduler, options: dict[str, Any]
) -> None:
    add_job(scheduler, "precise", **options)
    before = scheduler.service.get_job("precise")
    shown = form_as_shown(admin_client.get("/jobs/precise/edit").text)
    response = admin_client.post("/jobs/precise/edit", data=shown, follow_redirects=False)
    assert response.status_code == 303, response.text
    after = scheduler.service.get_job("precise")
    assert spec_to_dict(after.spec) == spec_to_dict(before.spec)
    assert after == before  # same version, same next run
    assert last_audit(scheduler, object_id="precise").action == "create"


def test_an_edit_that_changes_nothing_is_not_saved(scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly", timeout="5m")
    before = scheduler.service.get_job("nightly")
    assert scheduler.service.edit_job("nightly", {"timeout": 300, "cron": "0 3 * * *"}, by="x") == before
    assert scheduler.service.get_job("nightly").version == before.version
    assert last_audit(scheduler, object_id="nightly").action == "create"
    # A stale version is still refused, even for an edit that would change nothing.
    scheduler.service.edit_job("nightly", {"max_retries": 1})
    with pytest.raises(ConflictError):
        scheduler.service.edit_job("nightly", {"max_retries": 1}, expected_version=before.version)


def test_a_blank_time_zone_means_the_default_zone(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "paris", cron="0 3 * * *", timezone="Europe/Paris")
    shown = form_as_shown(admin_client.get("/jobs/paris/edit").text)
    assert shown["timezone"] == "Europe/Paris"
    response = admin_client.post("/jobs/paris/edit", data={**shown, "timezone": ""}, follow_redirects=False)
    assert response.status_code == 303
    trigger = scheduler.service.get_job("paris").spec.trigger
    assert isinstance(trigger, CronTrigger)
    assert trigger.timezone.key == scheduler.service.default_timezone == "UTC"
    audit = last_audit(scheduler, object_id="paris")
    assert audit.details is not None
    assert audit.details["timezone"] == {"from": "Europe/Paris", "to": "UTC"}
    preview = admin_client.post(
        "/jobs/preview", data={"kind": "cron", "schedule": "0 9 * * *", "timezone": ""}
    )
    assert "At 09:00 every day (UTC)" in preview.text


# ---- actions ---------------------------------------------------------------------------------------------


def test_run_now_queues_a_manual_run_and_shows_it(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    response = admin_client.post("/jobs/nightly/trigger", follow_redirects=False)
    assert response.status_code == 303
    run_id = int(response.headers["location"].rsplit("/", 1)[1])
    run = scheduler.run_service.get_run(run_id)
    assert (run.status, run.trigger_source, run.triggered_by) == (
        RunStatus.QUEUED,
        TriggerSource.MANUAL,
        "admin",
    )
    audit = last_audit(scheduler, object_type="job", object_id="nightly")
    assert (audit.action, audit.actor, audit.via, audit.details) == (
        "trigger",
        "admin",
        "web testclient",
        {"run_id": run_id},
    )
    page = admin_client.get(f"/runs/{run_id}").text
    assert f'data-events="/runs/{run_id}/events"' in page
    assert "Cancel this run" in page


def test_pause_resume_and_delete_work_and_are_audited(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    assert admin_client.post("/jobs/nightly/pause", follow_redirects=False).status_code == 303
    assert scheduler.service.get_job("nightly").paused
    assert last_audit(scheduler, object_id="nightly").action == "pause"
    assert "Resume" in admin_client.get("/jobs/nightly").text
    assert admin_client.post("/jobs/nightly/resume", follow_redirects=False).status_code == 303
    assert not scheduler.service.get_job("nightly").paused
    assert last_audit(scheduler, object_id="nightly").action == "resume"
    confirm = admin_client.get("/jobs/nightly/delete")
    assert confirm.status_code == 200
    assert 'action="/jobs/nightly/delete"' in confirm.text
    deleted = admin_client.post("/jobs/nightly/delete", follow_redirects=False)
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/"
    assert admin_client.get("/jobs/nightly").status_code == 404
    audit = last_audit(scheduler, object_id="nightly")
    assert (audit.action, audit.actor, audit.via) == ("delete", "admin", "web testclient")


def test_cancel_a_queued_run_and_refuse_to_cancel_a_finished_one(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "nightly")
    run_id = scheduler.run_service.trigger("nightly")
    assert admin_client.post(f"/runs/{run_id}/cancel", follow_redirects=False).status_code == 303
    assert scheduler.run_service.get_run(run_id).status is RunStatus.CANCELLED
    audit = last_audit(scheduler, object_type="run", object_id=str(run_id))
    assert (audit.action, audit.actor) == ("cancel", "admin")
    assert admin_client.post(f"/runs/{run_id}/cancel").status_code == 409


def test_viewers_cannot_change_anything(viewer_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    run_id = scheduler.run_service.trigger("nightly")
    before = scheduler.service.get_job("nightly")
    for path, data in (
        ("/jobs/nightly/trigger", None),
        ("/jobs/nightly/pause", None),
        ("/jobs/nightly/resume", None),
        ("/jobs/nightly/delete", None),
        ("/jobs/nightly/edit", form(max_retries="9")),
        (f"/runs/{run_id}/cancel", None),
    ):
        assert viewer_client.post(path, data=data).status_code == 403, path
    assert viewer_client.get("/jobs/nightly/edit").status_code == 403
    assert viewer_client.get("/jobs/nightly/delete").status_code == 403
    assert scheduler.service.get_job("nightly") == before
    assert scheduler.run_service.get_run(run_id).status is RunStatus.QUEUED
    assert len(scheduler.run_service.list_runs(job_id="nightly")) == 1


def test_a_post_without_the_csrf_token_is_refused(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    token = admin_client.headers.pop("X-CSRF-Token")
    assert admin_client.post("/jobs/nightly/pause").status_code == 403
    assert admin_client.post("/jobs/nightly/pause", data={"csrf_token": "forged"}).status_code == 403
    assert not scheduler.service.get_job("nightly").paused
    # A plain form (no htmx, no header) carries the token as a field: that works.
    assert admin_client.post("/jobs/nightly/pause", data={"csrf_token": token}).status_code == 200
    assert scheduler.service.get_job("nightly").paused


def test_forms_on_the_pages_carry_the_csrf_token(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    token = admin_client.headers["X-CSRF-Token"]
    for path in ("/jobs/nightly", "/jobs/nightly/edit", "/jobs/nightly/delete"):
        page = admin_client.get(path).text
        forms = page.count('method="post"')
        assert page.count(f'name="csrf_token" value="{token}"') == forms, path


# ---- escaping and downloads ------------------------------------------------------------------------------


def test_user_text_is_escaped_everywhere(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "xss", name=XSS_NAME, description=XSS_NAME, tags=[XSS_NAME])
    (run_id,) = add_runs(scheduler, "xss", [("failed", 1.0)], output=XSS_OUTPUT)
    for path in ("/", "/jobs/xss", f"/runs/{run_id}", "/audit"):
        page = admin_client.get(path).text
        assert XSS_NAME not in page, path
        assert XSS_OUTPUT not in page, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin_client.get("/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin_client.get("/jobs/xss").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in admin_client.get(f"/runs/{run_id}").text


def test_output_downloads_as_plain_text(viewer_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    (run_id,) = add_runs(scheduler, "nightly", [("succeeded", 1.0)], output=XSS_OUTPUT + "\nrésumé\n")
    response = viewer_client.get(f"/runs/{run_id}/output.txt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == f'attachment; filename="run-{run_id}-output.txt"'
    assert response.text == XSS_OUTPUT + "\nrésumé\n"


def test_run_page_shows_every_field(viewer_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "nightly")
    (parent,) = add_runs(scheduler, "nightly", [("failed", 1.0)])
    with sql_engine(scheduler).begin() as conn:
        child = conn.execute(
            insert(runs).returning(runs.c.id),
            {
                "job_id": "nightly",
                "scheduled_for": START,
                "attempt": 1,
                "parent_run_id": parent,
                "trigger_source": "retry",
                "owner": "node-7",
                "status": "failed",
                "due_at": START,
                "queued_at": START,
                "started_at": START + timedelta(seconds=2),
                "finished_at": START + timedelta(seconds=5),
                "exit_code": 3,
                "error": "boom",
                "traceback": "Traceback: <frame>",
                "result": {"processed": 10, "failed": [1, 2]},
            },
        ).scalar_one()
    page = viewer_client.get(f"/runs/{child}").text
    assert f'<a href="/runs/{parent}">#{parent}</a>' in page
    assert "node-7" in page
    assert "<dt>duration</dt><dd>3.0 s</dd>" in page
    assert "<dt>lateness</dt><dd>2.0 s</dd>" in page
    assert "Traceback: &lt;frame&gt;" in page
    assert '<td>processed</td><td class="mono">10</td>' in page
    assert '<td>failed</td><td class="mono">[1, 2]</td>' in page
    assert "data-events" not in page  # finished: nothing to follow
    assert "Cancel this run" not in page


# ---- the live run stream ---------------------------------------------------------------------------------


def sse_events(client: TestClient, path: str) -> Iterator[tuple[str, str]]:
    with client.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                yield name, line.removeprefix("data: ")


def test_the_event_stream_follows_a_run_to_its_end(viewer_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "echo", command=["sh", "-c", "echo one; sleep 0.3; echo two"])
    scheduler.start()
    try:
        run_id = scheduler.run_service.trigger("echo")
        began = time.monotonic()
        events = list(sse_events(viewer_client, f"/runs/{run_id}/events"))
    finally:
        scheduler.stop(wait=True, timeout=10)
    assert time.monotonic() - began < 15
    names = [name for name, _ in events]
    assert names[0] == "run"
    assert names[-1] == "end"
    assert names.count("end") == 1
    final = [data for name, data in events if name == "run"][-1]
    assert '"status": "succeeded"' in final
    assert "one\\ntwo" in final
    assert events[-1][1] == '{"status": "succeeded"}'


def test_the_event_stream_of_a_finished_run_ends_at_once(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "nightly")
    (run_id,) = add_runs(scheduler, "nightly", [("succeeded", 1.0)], output="done")
    events = list(sse_events(viewer_client, f"/runs/{run_id}/events"))
    assert [name for name, _ in events] == ["run", "end"]


def follow_while(
    client: TestClient, scheduler: Scheduler, revoke: Callable[[], None], *, print_after: bool
) -> list[tuple[str, str]]:
    """Follow a running run while, from another thread, its credentials are revoked, it prints (if
    ``print_after``) and, a little later, ends: a stream that outlived its credentials would carry it all."""
    add_job(scheduler, "long")
    (run_id,) = add_runs(scheduler, "long", [("running", None)], output="before")

    first_event = threading.Event()

    def meanwhile() -> None:
        first_event.wait(10)  # revoke only once the stream is open and has sent the run as it was
        time.sleep(0.1)
        revoke()
        time.sleep(0.2)
        with sql_engine(scheduler).begin() as conn:
            if print_after:
                conn.execute(update(runs).where(runs.c.id == run_id).values(output="printed after revoking"))
        time.sleep(0.5)
        with sql_engine(scheduler).begin() as conn:
            conn.execute(
                update(runs).where(runs.c.id == run_id).values(status="succeeded", finished_at=START)
            )

    worker = threading.Thread(target=meanwhile)
    worker.start()
    events = []
    try:
        for item in sse_events(client, f"/runs/{run_id}/events"):
            events.append(item)
            first_event.set()
    finally:
        first_event.set()
        worker.join()
    return events


@pytest.mark.parametrize("how", ["remove_user", "set_password", "logout", "revoke_token"])
def test_the_event_stream_ends_when_its_credentials_do(
    app: FastAPI,
    viewer_client: TestClient,
    viewer_token: str,
    accounts: AccountService,
    scheduler: Scheduler,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    actor = Actor("test")
    browser = TestClient(app, cookies=viewer_client.cookies, headers=dict(viewer_client.headers))

    def logout() -> None:
        assert browser.post("/logout", follow_redirects=False).status_code == 303

    revokers: dict[str, Callable[[], Any]] = {
        "remove_user": lambda: accounts.remove_user("viewer", actor=actor),
        "set_password": lambda: accounts.set_password("viewer", "a-new-password-1", actor=actor),
        "logout": logout,
        "revoke_token": lambda: accounts.revoke_token("viewer-bot", actor=actor),
    }
    client = viewer_client
    if how == "revoke_token":
        client = TestClient(app, headers={"Authorization": f"Bearer {viewer_token}"})
    events = list(follow_while(client, scheduler, revokers[how], print_after=True))
    assert events[0] == ("run", '{"status": "running", "output": "before"}')
    assert "printed after revoking" not in str(events)
    assert events[-1] == ("end", '{"status": null}')


def test_a_quiet_event_stream_ends_too_when_its_credentials_do(
    viewer_client: TestClient, accounts: AccountService, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(live, "RECHECK_SECONDS", 0.1)
    revoke = lambda: accounts.remove_user("viewer", actor=Actor("test"))  # noqa: E731
    events = follow_while(viewer_client, scheduler, revoke, print_after=False)
    assert [name for name, _ in events] == ["run", "end"]
    assert events[-1] == ("end", '{"status": null}')


# ---- runs, status and audit ------------------------------------------------------------------------------


def test_runs_page_filters_and_pages(viewer_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "one")
    add_job(scheduler, "two")
    ones = add_runs(scheduler, "one", [("succeeded", 1.0)] * 40)
    twos = add_runs(scheduler, "two", [("failed", 1.0)] * 20, source="api")
    page = viewer_client.get("/runs").text
    shown = [int(n) for n in re.findall(r'<a href="/runs/(\d+)">#', page)]
    assert shown == sorted(ones + twos, reverse=True)[:50]
    older = re.search(r'href="/runs\?(before_id=\d+)"', page)
    assert older is not None
    rest = viewer_client.get(f"/runs?{older.group(1)}").text
    assert len(re.findall(r'<a href="/runs/(\d+)">#', rest)) == 10
    assert len(re.findall(r'<a href="/runs/(\d+)">#', viewer_client.get("/runs?status=failed").text)) == 20
    assert len(re.findall(r'<a href="/runs/(\d+)">#', viewer_client.get("/runs?source=api").text)) == 20
    assert len(re.findall(r'<a href="/runs/(\d+)">#', viewer_client.get("/runs?job=one").text)) == 40
    assert viewer_client.get("/runs?status=bogus").status_code == 422


def test_status_page_shows_running_queued_nodes_and_failures(
    viewer_client: TestClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    add_job(scheduler, "nightly")
    (running,) = add_runs(scheduler, "nightly", [("running", None)], owner="node-a")
    (failed,) = add_runs(scheduler, "nightly", [("timed_out", 9.0)])
    queued = scheduler.run_service.trigger("nightly")
    with sql_engine(scheduler).begin() as conn:
        conn.execute(
            insert(nodes),
            [
                {"id": "node-a", "hostname": "web-1", "pid": 41, "started_at": START, "heartbeat_at": START},
                {
                    "id": "node-b",
                    "hostname": "web-2",
                    "pid": 42,
                    "started_at": START - timedelta(hours=1),
                    "heartbeat_at": START - timedelta(minutes=10),
                },
            ],
        )
    clock.advance(5)
    page = viewer_client.get("/status").text
    assert 'hx-get="/status/live" hx-trigger="every 5s"' in page
    running_table = page.split('<table class="running">')[1].split("</table>")[0]
    assert f'<a href="/runs/{running}">' in running_table
    assert "node-a" in running_table
    queued_table = page.split('<table class="queued">')[1].split("</table>")[0]
    assert f'<a href="/runs/{queued}">' in queued_table
    nodes_table = page.split('<table class="nodes">')[1].split("</table>")[0]
    assert "web-1" in nodes_table and ">live<" in nodes_table
    assert "web-2" in nodes_table and ">silent<" in nodes_table
    assert f'<a href="/runs/{failed}">' in page.split("Recent failures")[1]
    fragment = viewer_client.get("/status/live").text
    assert "<html" not in fragment
    assert f'<a href="/runs/{running}">' in fragment


def test_audit_log_filters_links_and_escapes(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "kept", name="<b>bold</b>")
    add_job(scheduler, "gone")
    admin_client.post("/jobs/kept/pause")
    admin_client.post("/jobs/gone/delete")
    run_id = scheduler.run_service.trigger("kept")
    admin_client.post(f"/runs/{run_id}/cancel")
    page = admin_client.get("/audit").text
    assert '<a href="/jobs/kept">kept</a>' in page
    assert '<a href="/jobs/gone">' not in page  # deleted: no link to a 404
    assert f'<a href="/runs/{run_id}">{run_id}</a>' in page
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    by_admin = admin_client.get("/audit?actor=admin").text
    assert "setup" not in by_admin.split("<tbody>")[1]
    only_runs = admin_client.get("/audit?object_type=run").text.split("<tbody>")[1]
    assert only_runs.count("<tr>") == 1
    one_job = admin_client.get("/audit?object_type=job&object_id=kept").text.split("<tbody>")[1]
    assert one_job.count("<tr>") == 3  # create, pause, trigger


def test_audit_log_is_paged(viewer_client: TestClient, scheduler: Scheduler) -> None:
    for i in range(30):
        add_job(scheduler, f"job-{i:02d}")
        scheduler.service.pause(f"job-{i:02d}", by="ops")
        scheduler.service.resume(f"job-{i:02d}", by="ops")
    first = viewer_client.get("/audit?actor=ops").text
    assert first.split("<tbody>")[1].count("<tr>") == 50
    older = re.search(r'href="/audit\?([^"]+)">Older', first)
    assert older is not None
    rest = viewer_client.get("/audit?" + older.group(1).replace("&amp;", "&")).text
    assert rest.split("<tbody>")[1].count("<tr>") == 10


# ---- cost ------------------------------------------------------------------------------------------------


def statements_for(client: TestClient, scheduler: Scheduler, path: str) -> int:
    count = 0

    def counted(*_args: Any) -> None:
        nonlocal count
        count += 1

    event.listen(sql_engine(scheduler), "before_cursor_execute", counted)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(sql_engine(scheduler), "before_cursor_execute", counted)
    return count


def test_the_jobs_page_costs_a_few_statements_whatever_the_number_of_jobs(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    for i in range(5):
        add_job(scheduler, f"job-{i:02d}")
        add_runs(scheduler, f"job-{i:02d}", [("succeeded", 1.0), ("failed", 2.0), ("succeeded", 3.0)])
    few = statements_for(viewer_client, scheduler, "/")
    for i in range(5, 30):
        add_job(scheduler, f"job-{i:02d}")
        add_runs(scheduler, f"job-{i:02d}", [("succeeded", 1.0), ("failed", 2.0), ("succeeded", 3.0)])
    many = statements_for(viewer_client, scheduler, "/")
    assert len(job_links(viewer_client.get("/").text)) == 30
    assert many == few
    assert many <= 8  # the session lookup, one query for the jobs, one for their runs, and BEGINs


def test_a_run_page_links_its_neighbours_and_attempts_and_names_the_signal(
    admin_client: TestClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    """A command a signal ended shows the signal; its retries are listed as one chain; the previous and next
    runs of the job are a click away; an ended run without output has no empty box."""
    scheduler.service.add_job(
        {
            "id": "killed",
            "cron": "0 3 * * *",
            "command": ["sh", "-c", "kill -TERM $$"],
            "max_retries": 1,
            "retry_base": "1s",
            "retry_jitter": 0,
        },
        by="setup",
    )
    scheduler.run_service.trigger("killed")
    scheduler.run_pending()
    clock.advance(timedelta(seconds=2))
    scheduler.run_pending()
    first, retry = sorted(run.id for run in scheduler.runs(job_id="killed"))
    page = admin_client.get(f"/runs/{retry}").text
    assert "-15 (SIGTERM)" in page
    assert f'<a href="/runs/{first}" rel="prev">' in page and 'rel="next"' not in page
    assert "Attempts at this fire" in page
    assert (
        f'<a href="/runs/{first}">#{first}</a>' in page
        and f'<strong aria-current="page">#{retry}</strong>' in page
    )
    assert "No output." in page and 'id="run-output"' not in page and "Download output" not in page
    assert 'action="/jobs/killed/trigger"' in page  # run again
    assert f'<a href="/runs/{retry}" rel="next">' in admin_client.get(f"/runs/{first}").text


def test_a_running_runs_page_counts_its_time(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "long")
    (run_id,) = add_runs(scheduler, "long", [("running", None)])
    page = admin_client.get(f"/runs/{run_id}").text
    assert re.search(r'<span id="run-elapsed" data-since="[^"]+">[^<]+</span> so far', page)
    assert 'id="run-output"' in page  # the live output's box, empty until the first line


def test_a_job_page_groups_its_configuration_and_shows_its_alerts_and_open_incident(
    viewer_client: TestClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.service.add_job(
        {"id": "broken", "cron": "0 3 * * *", "command": ["false"], "timeout": "5m", "notify_after": 2},
        by="setup",
    )
    page = viewer_client.get("/jobs/broken").text
    assert "No open incident" in page
    for title in ("About", "Schedule", "Target", "Policies", "Record"):
        assert f"<h3>{title}</h3>" in page
    assert re.search(r"<dt>notify_after</dt><dd class=\"mono\">2</dd>", page)  # its own
    assert re.search(
        r"<dt>notify</dt><dd class=\"mono\">[^<]*<small>\(the \[notify\] default\)</small>", page
    )
    for _ in range(2):
        scheduler.run_service.trigger("broken")
        scheduler.run_pending()
    failed = scheduler.runs(job_id="broken")[0].id
    page = viewer_client.get("/jobs/broken").text
    assert "2 bad runs in a row since" in page
    assert f'<a href="/runs/{failed}">the latest</a>' in page


def test_a_job_page_counts_outcomes_over_a_day_a_week_and_a_month(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "counted")
    add_runs(scheduler, "counted", [("succeeded", 1.0), ("failed", 2.0), ("lost", None), ("skipped", None)])
    with sql_engine(scheduler).begin() as conn:  # one success long ago, outside every window
        conn.execute(
            insert(runs),
            {
                "job_id": "counted",
                "scheduled_for": START - timedelta(days=40),
                "trigger_source": "schedule",
                "status": "succeeded",
                "due_at": START - timedelta(days=40),
                "queued_at": START - timedelta(days=40),
            },
        )
    page = viewer_client.get("/jobs/counted").text
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th>(.*?)</tr>', page, re.S)
    counted = {label: re.findall(r">(\d+)<", cells) for label, cells in rows}
    assert counted == {label: ["4", "1", "2", "1"] for label in ("24 h", "7 days", "30 days")}


def test_bulk_actions_pause_resume_and_run_ticked_jobs_each_audited(
    admin_client: TestClient, viewer_client: TestClient, scheduler: Scheduler
) -> None:
    for job_id in ("a", "b", "c"):
        add_job(scheduler, job_id)
    assert 'form="bulk"' in admin_client.get("/").text and 'form="bulk"' not in viewer_client.get("/").text

    paused = admin_client.post(
        "/jobs/bulk", data={"action": "pause", "job": ["a", "b"]}, follow_redirects=False
    )
    assert paused.status_code == 303
    assert [scheduler.service.get_job(j).paused for j in ("a", "b", "c")] == [True, True, False]
    assert last_audit(scheduler, object_id="b").action == "pause"

    ran = admin_client.post(
        "/jobs/bulk", data={"action": "trigger", "job": ["a", "c"]}, follow_redirects=False
    )
    assert ran.headers["location"] == "/runs?source=manual"
    assert sorted(run.job_id for run in scheduler.runs()) == ["a", "c"]

    # A job that is gone, an unknown action, nothing ticked: refused, and nothing changes.
    assert admin_client.post("/jobs/bulk", data={"action": "resume", "job": ["a", "gone"]}).status_code == 404
    assert scheduler.service.get_job("a").paused
    assert admin_client.post("/jobs/bulk", data={"action": "delete", "job": ["a"]}).status_code == 422
    assert admin_client.post("/jobs/bulk", data={"action": "resume"}).status_code == 422
    assert viewer_client.post("/jobs/bulk", data={"action": "pause", "job": ["c"]}).status_code == 403
    assert not scheduler.service.get_job("c").paused


def new_job_form(**values: str) -> dict[str, str]:
    """The new-job form as a browser submits it: its defaults, and what was typed."""
    blank = {
        "kind": "cron",
        "schedule": "",
        "catchup": "once",
        "target": "command",
        "max_retries": "0",
        "overlap": "allow",
        "max_instances": "1",
        "notify_every_failure": "",
    }
    return {**blank, **values}


def test_create_a_command_job_from_the_form_argv_unsplit(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    assert 'href="/new"' in admin_client.get("/").text
    assert admin_client.get("/new").status_code == 200
    data = new_job_form(
        id="greet", schedule="*/5 * * * *", argv="echo\nhello world\n$HOME\n", env="GREETING=hi=there\n"
    )
    response = admin_client.post("/new", data=data, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/jobs/greet"
    job = scheduler.service.get_job("greet")
    assert job.origin == "web" and job.created_by == "admin"
    assert spec_to_dict(job.spec)["command"] == [
        "echo",
        "hello world",
        "$HOME",
    ]  # three arguments, unexpanded
    assert spec_to_dict(job.spec)["env"] == {"GREETING": "hi=there"}
    assert last_audit(scheduler, object_id="greet").action == "create"


def test_a_bad_new_job_names_the_field_beside_it_and_saves_nothing(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    for values, field in (
        ({"id": "bad", "schedule": "61 * * * *", "argv": "true"}, "schedule"),
        ({"id": "bad", "schedule": "0 3 * * *", "argv": ""}, "argv"),
        ({"id": "bad", "schedule": "0 3 * * *", "target": "call", "call": "m:f", "args": "{"}, "args"),
        ({"id": "bad", "schedule": "0 3 * * *", "argv": "true", "env": "NOVALUE"}, "env"),
        ({"id": "bad", "schedule": "0 3 * * *", "argv": "true", "env": '{"A": 1}'}, "env"),
        ({"id": "bad", "schedule": "0 3 * * *", "argv": "true", "env": '{"A": "x"'}, "env"),
        ({"id": "bad", "schedule": "0 3 * * *", "target": "shell", "shell_command": ""}, "shell_command"),
        ({"id": "", "schedule": "0 3 * * *", "argv": "true"}, "id"),
    ):
        response = admin_client.post("/new", data=new_job_form(**values))
        assert response.status_code == 422, values
        assert f'<small class="error field-error" id="f-{field}-error">' in response.text, (values, field)
        assert f'aria-describedby="f-{field}-hint f-{field}-error"' in response.text or (
            f'aria-describedby="f-{field}-error"' in response.text
        )
    assert scheduler.jobs() == []


def test_a_shell_job_is_marked_and_a_job_is_duplicated_and_edited_to_another_target(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    created = admin_client.post(
        "/new",
        data=new_job_form(id="tidy", schedule="0 4 * * *", target="shell", shell_command="rm -f /tmp/x*"),
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert (
        "state-shell" in admin_client.get("/").text and "state-shell" in admin_client.get("/jobs/tidy").text
    )
    copy = admin_client.get("/new?copy=tidy").text
    assert re.search(r'name="id" value="tidy-copy"', copy) and "rm -f /tmp/x*" in copy
    shown = form_as_shown(copy)
    assert admin_client.post("/new", data=shown, follow_redirects=False).status_code == 303
    assert spec_to_dict(scheduler.service.get_job("tidy-copy").spec)["command"] == "rm -f /tmp/x*"

    edit = form_as_shown(admin_client.get("/jobs/tidy-copy/edit").text)
    edit.update(target="call", call="cronkeeper.demo:count_items", kwargs='{"items": 2}', env="", cwd="")
    assert admin_client.post("/jobs/tidy-copy/edit", data=edit, follow_redirects=False).status_code == 303
    spec = spec_to_dict(scheduler.service.get_job("tidy-copy").spec)
    assert (spec["call"], spec["kwargs"], "command" in spec) == (
        "cronkeeper.demo:count_items",
        {"items": 2},
        False,
    )
    renamed = admin_client.post("/jobs/tidy-copy/edit", data={**edit, "id": "other"})
    assert renamed.status_code == 422 and 'id="f-id-error"' in renamed.text


def test_the_timeline_draws_runs_in_their_lane_and_the_fires_ahead(
    viewer_client: TestClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    add_job(scheduler, "quick", every="10m")
    add_job(scheduler, "other", every="1h")
    with sql_engine(scheduler).begin() as conn:  # quick failed half an hour ago, after 5 minutes
        at = START - timedelta(minutes=30)
        conn.execute(
            insert(runs),
            {
                "job_id": "quick",
                "scheduled_for": at,
                "trigger_source": "schedule",
                "status": "failed",
                "due_at": at,
                "queued_at": at,
                "started_at": at,
                "finished_at": at + timedelta(minutes=5),
            },
        )
    page = viewer_client.get("/timeline?window=1h").text
    (bar,) = re.findall(r'<rect class="bar-failed" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', page)
    # 1 h behind and 10 min ahead, over 1040 units after 160 of labels: 30 min ago is at 160 + 1040 * 30/70.
    assert float(bar[0]) == pytest.approx(160 + 1040 * 30 / 70, abs=0.1)
    assert float(bar[1]) == pytest.approx(1040 * 5 / 70, abs=0.1)
    assert 'class="fire-ahead"' in page  # quick fires again within the 10 minutes ahead
    assert ">other</text>" not in page  # no run in the window
    only = viewer_client.get("/timeline?window=1h&job=other").text
    assert '<rect class="bar-failed"' not in only and ">other</text>" in only
    assert viewer_client.get("/timeline?window=2y").status_code == 422


def test_upcoming_lists_the_next_fires_of_every_active_job_in_order(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "hourly", every="1h")
    add_job(scheduler, "daily", cron="0 3 * * *")
    add_job(scheduler, "paused", every="1m")
    scheduler.service.pause("paused")
    page = viewer_client.get("/upcoming").text
    jobs = re.findall(r'<td><a href="/jobs/([^"]+)">', page)
    # Every hour from its creation now: the first ten of its 23 fires in the next 24 h.
    assert jobs.count("hourly") == 10 and jobs.count("daily") == 1 and "paused" not in jobs
    instants = re.findall(r"<tr><td>([^<]+)</td>", page)
    assert instants == sorted(instants)


def test_times_are_shown_in_the_browsers_zone_the_users_choice_or_each_jobs(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "paris", cron="0 3 * * *", timezone="Europe/Paris")
    add_job(scheduler, "tokyo", cron="0 3 * * *", timezone="Asia/Tokyo")
    # No cookie, no choice: UTC.  2026-03-03 03:00 in Paris is 02:00 UTC.
    assert "2026-03-03 02:00:00 UTC" in admin_client.get("/jobs/paris").text
    admin_client.cookies.set("ck_zone", "America/New_York")
    page = admin_client.get("/jobs/paris").text
    assert "2026-03-02 21:00:00 -05:00" in page and "(03:00 Europe/Paris)" in page  # its local time too
    assert 'datetime="2026-03-03T02:00:00+00:00" title="2026-03-03 02:00:00 UTC"' in page
    admin_client.cookies.set("ck_zone", "../../etc/passwd")  # not a zone: ignored
    assert "2026-03-03 02:00:00 UTC" in admin_client.get("/jobs/paris").text

    chosen = admin_client.post(
        "/preferences/time-zone", data={"time_zone": "job", "back": "/jobs/tokyo"}, follow_redirects=False
    )
    assert chosen.status_code == 303 and chosen.headers["location"] == "/jobs/tokyo"
    assert "2026-03-03 03:00:00 +09:00" in admin_client.get("/jobs/tokyo").text
    assert "2026-03-03 03:00:00 +01:00" in admin_client.get("/jobs/paris").text
    admin_client.post("/preferences/time-zone", data={"time_zone": "Asia/Tokyo"})
    assert "2026-03-03 11:00:00 +09:00" in admin_client.get("/jobs/paris").text
    for bad in ({"time_zone": "Mars/Olympus"}, {"time_zone": "UTC", "back": "//evil.example/"}):
        assert admin_client.post("/preferences/time-zone", data=bad).status_code == 422
    assert "2026-03-03 11:00:00 +09:00" in admin_client.get("/jobs/paris").text  # unchanged


def test_the_forms_line_breaks_and_spaces_are_kept_as_shown(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    """Browsers send CRLF from a text box: a shell line must not end in a carriage return; an argument of
    spaces or an empty one in the middle stays an argument."""
    data = new_job_form(
        id="two", schedule="0 3 * * *", target="shell", shell_command="cd /tmp\r\necho here\r\n"
    )
    assert admin_client.post("/new", data=data, follow_redirects=False).status_code == 303
    assert spec_to_dict(scheduler.service.get_job("two").spec)["command"] == "cd /tmp\necho here\n"
    add_job(scheduler, "args", command=["printf", "%s|", "", "x", " "], description="two\nlines")
    shown = form_as_shown(admin_client.get("/jobs/args/edit").text)
    shown = {key: value.replace("\n", "\r\n") for key, value in shown.items()}  # as a browser sends it
    assert admin_client.post("/jobs/args/edit", data=shown, follow_redirects=False).status_code == 303
    job = scheduler.service.get_job("args")
    assert spec_to_dict(job.spec)["command"] == ["printf", "%s|", "", "x", " "] and job.version == 1


def test_a_taken_id_is_named_beside_the_field_and_other_targets_leave_env_aside(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "taken", env={"A": "1"}, cwd="/tmp")
    response = admin_client.post("/new", data=new_job_form(id="taken", schedule="0 3 * * *", argv="true"))
    assert response.status_code == 422 and 'id="f-id-error"' in response.text and "0 3 * * *" in response.text
    shown = form_as_shown(admin_client.get("/jobs/taken/edit").text)
    shown.update(target="call", call="cronkeeper.demo:count_items")  # env and cwd still filled in
    assert admin_client.post("/jobs/taken/edit", data=shown, follow_redirects=False).status_code == 303
    assert "env" not in spec_to_dict(scheduler.service.get_job("taken").spec)


def test_bulk_checks_every_job_first_and_leaves_jobs_already_so(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "a")
    add_job(scheduler, "hb", command=None, checkin=True)
    refused = admin_client.post("/jobs/bulk", data={"action": "trigger", "job": ["a", "hb"]})
    assert refused.status_code == 422 and scheduler.runs() == []  # nothing queued for a
    add_job(scheduler, "held")
    scheduler.service.pause("held")
    before = scheduler.service.get_job("a")
    admin_client.post("/jobs/bulk", data={"action": "resume", "job": ["a", "held"]})
    assert scheduler.service.get_job("a") == before  # active already: not touched, not audited
    assert not scheduler.service.get_job("held").paused


def test_the_timeline_keeps_long_runs_filters_in_the_query_and_draws_no_fires_of_paused_jobs(
    viewer_client: TestClient, scheduler: Scheduler
) -> None:
    add_job(scheduler, "long", every="10m")
    add_job(scheduler, "busy", every="10m")
    scheduler.service.pause("busy")
    with sql_engine(scheduler).begin() as conn:
        nine_hours_ago = START - timedelta(hours=9)
        conn.execute(
            insert(runs),
            [
                {
                    "job_id": "long",
                    "scheduled_for": nine_hours_ago,
                    "trigger_source": "schedule",
                    "status": "running",
                    "due_at": nine_hours_ago,
                    "queued_at": nine_hours_ago,
                    "started_at": nine_hours_ago,
                },
                *(
                    {
                        "job_id": "busy",
                        "scheduled_for": START - timedelta(seconds=n),
                        "trigger_source": "schedule",
                        "status": "succeeded",
                        "due_at": START - timedelta(seconds=n),
                        "queued_at": START - timedelta(seconds=n),
                        "started_at": START - timedelta(seconds=n),
                    }
                    for n in range(1, 3100)
                ),
            ],
        )
    page = viewer_client.get("/timeline?window=1h").text
    assert '<rect class="bar-active"' in page  # running for nine hours, drawn across the window
    assert "More than 3000 runs" in page
    lanes = re.findall(r">(\w+)</text></a>", page)
    assert "long" in lanes and "busy" in lanes
    assert "fire-ahead" not in page.split(">busy</text>")[1].split(">long</text>")[0]  # paused: no fires
    only_long = viewer_client.get("/timeline?window=1h&job=lon").text
    assert "More than 3000 runs" not in only_long and '<rect class="bar-active"' in only_long


def test_at_the_cap_no_lane_is_drawn_for_a_job_whose_runs_are_left_out(
    viewer_client: TestClient, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lanes are chosen from counts of the capped scan, the runs read from the same scan: a job whose
    only run is just past the cap has no lane, and the page says runs were left out."""
    monkeypatch.setattr(timeline, "MAX_RUNS", 3)
    add_job(scheduler, "newer", every="10m")
    add_job(scheduler, "older", every="10m")
    with sql_engine(scheduler).begin() as conn:
        conn.execute(
            insert(runs),
            [
                {
                    "job_id": job_id,
                    "scheduled_for": START - ago,
                    "trigger_source": "schedule",
                    "status": "succeeded",
                    "due_at": START - ago,
                    "queued_at": START - ago,
                    "started_at": START - ago,
                    "finished_at": START - ago + timedelta(seconds=30),
                }
                for job_id, ago in [("newer", timedelta(minutes=m)) for m in (1, 2, 3)]
                + [("older", timedelta(minutes=40))]
            ],
        )
    page = viewer_client.get("/timeline?window=1h").text
    assert re.findall(r'<text class="lane"[^>]*>([^<]+)</text>', page) == ["newer"]
    assert page.count('<rect class="bar-succeeded"') == 3
    assert "More than 3 runs in this window" in page


def test_upcoming_shows_at_most_ten_fires_of_a_job(viewer_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "often", every="1s")
    add_job(scheduler, "daily", cron="0 3 * * *")
    jobs = re.findall(r'<td><a href="/jobs/([^"]+)">', viewer_client.get("/upcoming").text)
    assert jobs.count("often") == 10 and jobs.count("daily") == 1


def test_run_again_is_offered_only_where_it_can_work(admin_client: TestClient, scheduler: Scheduler) -> None:
    add_job(scheduler, "hb", command=None, checkin=True)
    (missed,) = add_runs(scheduler, "hb", [("missed", None)])
    assert "Run again" not in admin_client.get(f"/runs/{missed}").text
    add_job(scheduler, "gone")
    (old,) = add_runs(scheduler, "gone", [("succeeded", 1.0)])
    assert "Run again" in admin_client.get(f"/runs/{old}").text
    scheduler.service.remove("gone")
