"""The JSON API through HTTP: each endpoint, roles, the audit trail, idempotency, paging and bad input."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, NoReturn

import pytest
from fastapi.testclient import TestClient

from cronkeeper.clock import FakeClock
from cronkeeper.exceptions import StoreError
from cronkeeper.models import Job, Run, RunStatus, TriggerSource
from cronkeeper.scheduler import Scheduler
from cronkeeper.serialize import job_to_json, run_to_json
from cronkeeper.store.idempotency import SqlIdempotencyStore
from cronkeeper.store.records import AuditFilter
from cronkeeper.testing import sql_engine
from cronkeeper.web import api
from cronkeeper.web.api_models import JobList, JobOut, PreviewOut, RunDetail, RunOut, RunPage, StatusOut

HELLO = {"id": "hello", "cron": "*/5 * * * *", "command": ["echo", "hi"]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(anon: TestClient, admin_token: str) -> TestClient:
    """The anonymous client speaking with an admin API token (no cookie, so no CSRF token either)."""
    anon.headers.update(bearer(admin_token))
    return anon


def create(client: TestClient, **options: Any) -> dict[str, Any]:
    response = client.post("/api/jobs", json={**HELLO, **options})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def audit_rows(scheduler: Scheduler) -> list[tuple[str, str, str, str | None]]:
    """(actor, action, object id, source) of every audit event, oldest first, leaving out account setup."""
    events = scheduler.audit.list(AuditFilter(limit=1000))
    return [
        (event.actor, event.action, event.object_id, event.via)
        for event in reversed(events)
        if event.object_type in ("job", "run")
    ]


def wait_until_ended(scheduler: Scheduler, run_id: int, timeout: float = 20.0) -> Run:
    """Real time, for a real subprocess: poll the run until it reaches a terminal status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scheduler.loop is not None:
            scheduler.loop.drain(0.1)
        run = scheduler.get_run(run_id)
        if not run.status.is_active:
            return run
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} did not end in {timeout} s")


# ---- jobs -----------------------------------------------------------------------------------------------


def test_create_get_and_list_a_job(admin: TestClient, scheduler: Scheduler) -> None:
    response = admin.post("/api/jobs", json={**HELLO, "timeout": "5m", "tags": ["ops"], "name": "Say hi"})
    assert response.status_code == 201
    assert response.headers["location"].endswith("/api/jobs/hello")
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert body == job_to_json(scheduler.get_job("hello"))  # the CLI's --json shape
    assert body["spec"]["timeout"] == 300.0
    assert body["created_by"] == "token:admin-bot"
    assert admin.get("/api/jobs/hello").json() == body
    assert admin.get("/api/jobs").json() == {"jobs": [body], "next_after": None}
    JobOut.model_validate(body)


def test_a_job_whose_function_does_not_import_here_is_saved_with_a_warning(
    admin: TestClient, scheduler: Scheduler
) -> None:
    elsewhere = {"id": "elsewhere", "every": "1h", "call": "billing.tasks:invoice"}
    created = admin.post("/api/jobs", json=elsewhere)
    assert created.status_code == 201
    (warning,) = created.json()["warnings"]
    assert warning.startswith("call: cannot import 'billing.tasks:invoice': ModuleNotFoundError")
    assert scheduler.get_job("elsewhere").enabled  # saved all the same
    assert "warnings" not in admin.get("/api/jobs/elsewhere").json()  # said when it is saved
    edited = admin.patch("/api/jobs/elsewhere", json={"call": "tests.jobs:metrics"})
    assert "warnings" not in edited.json()


def test_jobs_are_filtered_by_state_tag_and_text(admin: TestClient) -> None:
    create(admin, id="backup-db", name="Nightly backup", tags=["db"])
    create(admin, id="report", name="Weekly REPORT", tags=["mail"], paused=True)
    create(admin, id="cleanup", tags=["db", "mail"])

    def ids(**query: str) -> list[str]:
        response = admin.get("/api/jobs", params=query)
        assert response.status_code == 200, response.text
        return sorted(job["id"] for job in response.json()["jobs"])

    assert ids() == ["backup-db", "cleanup", "report"]
    assert ids(state="paused") == ["report"]
    assert ids(state="active") == ["backup-db", "cleanup"]
    assert ids(state="disabled") == []
    assert ids(tag="mail") == ["cleanup", "report"]
    assert ids(q="report") == ["report"]  # the name, case-insensitively
    assert ids(q="up") == ["backup-db", "cleanup"]  # the id
    assert ids(tag="db", q="night") == ["backup-db"]
    assert ids(tag="d") == []  # a whole tag, not part of one
    assert admin.get("/api/jobs", params={"state": "sleeping"}).status_code == 422


def _walk_jobs(client: TestClient, **query: Any) -> list[list[str]]:
    """Every page of the job listing, as lists of job ids."""
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        response = client.get("/api/jobs", params={**query, **({"after": after} if after else {})})
        assert response.status_code == 200, response.text
        page = JobList.model_validate(response.json())
        pages.append([job.id for job in page.jobs])
        after = page.next_after
        if after is None:
            return pages


def test_jobs_are_paged_in_id_order_by_keyset(admin: TestClient, scheduler: Scheduler) -> None:
    ids = [f"job-{i:02}" for i in range(7)]
    for job_id in reversed(ids):
        create(admin, id=job_id, tags=["odd"] if int(job_id[-1]) % 2 else ["even"])
    assert _walk_jobs(admin, limit=3) == [ids[0:3], ids[3:6], ids[6:7]]
    assert _walk_jobs(admin) == [ids]  # 100 by default
    # A page that is exactly full is the last one: no cursor to an empty page.
    assert _walk_jobs(admin, limit=7) == [ids]
    assert _walk_jobs(admin, tag="odd", limit=3) == [["job-01", "job-03", "job-05"]]
    assert _walk_jobs(admin, tag="even", limit=2) == [["job-00", "job-02"], ["job-04", "job-06"]]
    # A job added while paging does not shift the next page; each job keeps its full shape.
    first = admin.get("/api/jobs", params={"limit": 3}).json()
    assert first["next_after"] == "job-02"
    create(admin, id="job-00a")
    second = admin.get("/api/jobs", params={"limit": 3, "after": first["next_after"]}).json()
    assert second["jobs"] == [job_to_json(scheduler.get_job(job_id)) for job_id in ids[3:6]]


def test_the_job_listing_reads_one_page_not_every_job(
    admin: TestClient, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    definitions = [{"id": f"bulk-{i:04}", "every": "1h", "command": ["true"]} for i in range(1500)]
    scheduler.service.add_jobs(definitions, by="setup")

    def everything() -> None:
        raise AssertionError("the listing loaded every job")

    monkeypatch.setattr(scheduler.service, "list_jobs", everything)
    monkeypatch.setattr(scheduler.store, "list_jobs", everything)
    page = admin.get("/api/jobs", params={"q": "bulk-01", "after": "bulk-0149"}).json()
    assert [job["id"] for job in page["jobs"]] == [f"bulk-{i:04}" for i in range(150, 200)]
    assert page["next_after"] is None
    assert len(admin.get("/api/jobs").json()["jobs"]) == 100


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"after": "x" * 201}, "after"),
        ({"after": "a\x00"}, "after"),
        ({"q": "\x00"}, "q"),
        ({"tag": "db\x00"}, "tag"),
    ],
)
def test_bad_job_queries_are_422(admin: TestClient, query: dict[str, Any], field: str) -> None:
    response = admin.get("/api/jobs", params=query)
    assert (response.status_code, response.json()["field"]) == (422, field)


def test_env_values_are_shown_to_admins_only(admin: TestClient, viewer_token: str) -> None:
    create(admin, env={"API_KEY": "s3cret"})
    assert admin.get("/api/jobs/hello").json()["spec"]["env"] == {"API_KEY": "s3cret"}
    for url in ("/api/jobs/hello", "/api/jobs"):
        response = admin.get(url, headers=bearer(viewer_token))
        assert "s3cret" not in response.text
        assert "API_KEY" in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**HELLO, "bogus": 1}, "bogus"),
        ({**HELLO, "max_retries": "3"}, "max_retries"),
        ({**HELLO, "max_retries": 1.5}, "max_retries"),
        ({**HELLO, "shell": "yes"}, "shell"),
        ({**HELLO, "name": 42}, "name"),
        ({**HELLO, "cron": "61 * * * *"}, "cron"),
        ({**HELLO, "cron": "0 0 30 2 *"}, "cron"),
        ({"id": "hello", "command": ["echo"]}, "schedule"),
        ({**HELLO, "every": "5m"}, "schedule"),
        ({"cron": "* * * * *", "command": ["echo"]}, "id"),
        ({**HELLO, "id": "../etc"}, "id"),
        ({**HELLO, "command": 5}, "command"),
        ({**HELLO, "command": []}, "target"),
        ({"id": "x", "cron": "* * * * *", "command": ["a"], "call": "m:f"}, "target"),
        ({**HELLO, "timeout": True}, "timeout"),
        ({**HELLO, "timeout": "-5"}, "timeout"),
        ({**HELLO, "timeout": "soon"}, "timeout"),
        ({**HELLO, "timeout": [1]}, "timeout"),
        ({"id": "x", "every": 1e308, "command": ["a"]}, "every"),
        ({**HELLO, "timezone": "Mars/Olympus"}, "timezone"),
        ({**HELLO, "overlap": "sometimes"}, "overlap"),
        ({**HELLO, "overlap": 1}, "overlap"),
        ({**HELLO, "env": {"A": 1}}, "env.A"),
        ({**HELLO, "kwargs": {"a": 1}}, "kwargs"),
        ({"id": "x", "at": "2020-01-01T00:00:00Z", "command": ["a"]}, "at"),
        ({"id": "x", "at": "someday", "command": ["a"]}, "at"),
        ({**HELLO, "paused": "no"}, "paused"),
        ([HELLO], "body"),
        ("hello", "body"),
    ],
)
def test_bad_job_definitions_are_422_naming_the_field_and_write_nothing(
    admin: TestClient, scheduler: Scheduler, body: Any, field: str
) -> None:
    response = admin.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert scheduler.jobs() == []
    assert audit_rows(scheduler) == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"{not json", "application/json"), (b"", "application/json"), (b'{"id": "x"}', "text/plain")],
)
def test_bodies_that_are_not_json_objects_are_refused(
    admin: TestClient, scheduler: Scheduler, content: bytes, content_type: str
) -> None:
    response = admin.post("/api/jobs", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 422
    assert scheduler.jobs() == []


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"id": "x", "cron": "* * * * *", "command": ["echo"], "name": "\\ud800"}', "name"),
        (b'{"id": "x", "cron": "* * * * *", "command": ["echo"], "env": {"A": "\\udfff"}}', "env"),
        (b'{"id": "x", "cron": "* * * * *", "command": ["echo"], "env": {"\\ud800": "a"}}', "env"),
        (b'{"id": "x", "cron": "* * * * *", "command": ["echo", "\\u0000"]}', "command"),
        (b'{"id": "x", "cron": "* * * * *", "call": "m:f", "args": [[[{"k": "\\ud800"}]]]}', "args"),
    ],
)
def test_text_that_could_not_be_stored_or_sent_back_is_refused(
    admin: TestClient, scheduler: Scheduler, content: bytes, field: str
) -> None:
    response = admin.post("/api/jobs", content=content, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["field"]) == (422, field)
    assert scheduler.jobs() == []
    assert admin.get("/api/jobs").status_code == 200


def test_an_existing_id_is_a_conflict(admin: TestClient) -> None:
    create(admin)
    response = admin.post("/api/jobs", json=HELLO)
    assert response.status_code == 409
    assert response.json()["field"] == "id"


def test_unknown_jobs_are_404(admin: TestClient) -> None:
    for method, url in [
        ("GET", "/api/jobs/nope"),
        ("PATCH", "/api/jobs/nope"),
        ("POST", "/api/jobs/nope/pause"),
        ("POST", "/api/jobs/nope/resume"),
        ("DELETE", "/api/jobs/nope"),
        ("POST", "/api/jobs/nope/runs"),
        ("GET", "/api/jobs/nope/runs"),
    ]:
        response = admin.request(method, url, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, url, response.text)


def test_edit_changes_only_what_is_sent(admin: TestClient, scheduler: Scheduler) -> None:
    create(admin, timeout=60, max_retries=2)
    response = admin.patch("/api/jobs/hello", json={"timeout": "2m", "cron": "0 3 * * *"})
    assert response.status_code == 200, response.text
    spec = response.json()["spec"]
    assert (spec["timeout"], spec["max_retries"], spec["cron"]) == (120.0, 2, "0 3 * * *")
    assert response.headers["etag"] == '"2"'
    assert scheduler.get_job("hello").spec.retry.max_retries == 2
    # Null puts an option back to its default; a new kind of schedule replaces the old one.
    response = admin.patch("/api/jobs/hello", json={"timeout": None, "every": "10m"})
    assert response.json()["spec"]["timeout"] is None
    assert response.json()["schedule"].startswith("every ")


def test_bad_edits_are_refused_and_change_nothing(admin: TestClient, scheduler: Scheduler) -> None:
    create(admin)
    for body, field in [
        ({"cron": "* * *"}, "cron"),
        ({"paused": True}, "paused"),
        ({"id": "other"}, "id"),
        ({"max_instances": 0}, "max_instances"),
        ({"command": None}, "target"),
    ]:
        response = admin.patch("/api/jobs/hello", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field
    assert scheduler.get_job("hello").version == 1


def test_stale_edits_are_refused_with_if_match_or_expected_version(admin: TestClient) -> None:
    create(admin)
    assert admin.patch("/api/jobs/hello", json={"timeout": 5}, headers={"If-Match": '"1"'}).status_code == 200
    stale = admin.patch("/api/jobs/hello", json={"timeout": 9}, headers={"If-Match": '"1"'})
    assert (stale.status_code, stale.json()["field"]) == (412, "If-Match")  # a failed precondition
    # The precondition comes first: a stale edit is 412 whatever its body.
    assert admin.patch("/api/jobs/hello", json={"cron": "x"}, headers={"If-Match": "1"}).status_code == 412
    # The version in the body is the edit's own check, not a precondition: a conflict.
    assert admin.patch("/api/jobs/hello", json={"timeout": 9, "expected_version": 1}).status_code == 409
    assert admin.get("/api/jobs/hello").json()["spec"]["timeout"] == 5.0
    current = admin.patch("/api/jobs/hello", json={"timeout": 9}, headers={"If-Match": 'W/"2"'})
    assert current.status_code == 200
    for header in ("three", '"3", "4"', "99999999999999999999999"):
        response = admin.patch("/api/jobs/hello", json={}, headers={"If-Match": header})
        assert (response.status_code, response.json()["field"]) == (422, "If-Match")
    both = admin.patch("/api/jobs/hello", json={"expected_version": 2}, headers={"If-Match": '"3"'})
    assert both.status_code == 422
    for version in (10**30, 0, "3"):
        response = admin.patch("/api/jobs/hello", json={"expected_version": version})
        assert (response.status_code, response.json()["field"]) == (422, "expected_version")


def test_an_edit_that_loses_a_race_after_its_if_match_check_is_412(
    admin: TestClient, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(admin)
    read = scheduler.store.get_job
    raced: list[str] = []

    def read_then_someone_edits(job_id: str) -> Job:
        """The edit's own read sees version 1; another edit lands before the edit writes."""
        job = read(job_id)
        if not raced:
            raced.append(job_id)
            scheduler.service.edit_job(job_id, {"timeout": 1}, by="someone")
        return job

    monkeypatch.setattr(scheduler.store, "get_job", read_then_someone_edits)
    response = admin.patch("/api/jobs/hello", json={"timeout": 9}, headers={"If-Match": '"1"'})
    assert (response.status_code, response.json()["field"]) == (412, "If-Match")
    assert scheduler.get_job("hello").spec.timeout == timedelta(seconds=1)


@pytest.mark.parametrize(("method", "url"), [("POST", "/pause"), ("POST", "/resume"), ("DELETE", "")])
def test_pause_resume_and_delete_check_if_match(
    admin: TestClient, scheduler: Scheduler, method: str, url: str
) -> None:
    create(admin)
    admin.patch("/api/jobs/hello", json={"timeout": 5})  # now at version 2
    for stale in ('"1"', 'W/"1"', "1", '"3"'):
        response = admin.request(method, f"/api/jobs/hello{url}", headers={"If-Match": stale})
        assert response.status_code == 412, (stale, response.text)
        assert response.json() == {
            "detail": "job 'hello' has changed since the version in If-Match; reload it and try again",
            "field": "If-Match",
        }
    assert scheduler.get_job("hello").version == 2
    assert [row[1] for row in audit_rows(scheduler)] == ["create", "edit"]
    for bad in ("two", '"1", "2"'):
        response = admin.request(method, f"/api/jobs/hello{url}", headers={"If-Match": bad})
        assert (response.status_code, response.json()["field"]) == (422, "If-Match")
    gone = admin.request(method, f"/api/jobs/nope{url}", headers={"If-Match": '"1"'})
    assert gone.status_code == 404
    current = admin.request(method, f"/api/jobs/hello{url}", headers={"If-Match": 'W/"2"'})
    assert current.status_code == (204 if method == "DELETE" else 200)
    assert [row[1] for row in audit_rows(scheduler)][2:] == [url.strip("/") or "delete"]


def test_if_match_any_version_is_no_condition(admin: TestClient, scheduler: Scheduler) -> None:
    create(admin)
    assert admin.post("/api/jobs/hello/pause", headers={"If-Match": "*"}).status_code == 200
    assert admin.delete("/api/jobs/hello", headers={"If-Match": "*"}).status_code == 204
    assert scheduler.jobs() == []


def test_pause_resume_and_delete_are_audited_with_the_user(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    create(admin_client)
    paused = admin_client.post("/api/jobs/hello/pause")
    assert paused.status_code == 200
    assert (paused.json()["paused"], paused.json()["next_due_at"]) == (True, None)
    resumed = admin_client.post("/api/jobs/hello/resume")
    assert (resumed.json()["paused"], resumed.json()["updated_by"]) == (False, "admin")
    assert resumed.json()["next_run_at"] == resumed.json()["next_due_at"] is not None, "the old name stays"
    admin_client.patch("/api/jobs/hello", json={"timeout": 5})
    deleted = admin_client.delete("/api/jobs/hello")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert admin_client.get("/api/jobs/hello").status_code == 404
    assert audit_rows(scheduler) == [
        ("admin", action, "hello", "api testclient")
        for action in ("create", "pause", "resume", "edit", "delete")
    ]


# ---- roles and credentials ------------------------------------------------------------------------------

MUTATIONS = [
    ("POST", "/api/jobs", {**HELLO, "id": "new"}),
    ("PATCH", "/api/jobs/hello", {"timeout": 5}),
    ("POST", "/api/jobs/hello/pause", None),
    ("POST", "/api/jobs/hello/resume", None),
    ("DELETE", "/api/jobs/hello", None),
    ("POST", "/api/jobs/hello/runs", None),
    ("POST", "/api/runs/1/cancel", None),
]
READS = [
    "/api/jobs",
    "/api/jobs/hello",
    "/api/jobs/hello/runs",
    "/api/jobs/hello/stats",
    "/api/runs",
    "/api/runs/1",
    "/api/stats",
    "/api/status",
]


@pytest.fixture
def hello_with_a_run(admin: TestClient, scheduler: Scheduler) -> int:
    create(admin)
    return scheduler.trigger("hello")


def _unchanged(scheduler: Scheduler, run_id: int) -> None:
    job = scheduler.get_job("hello")
    assert (job.version, job.paused) == (1, False)
    assert [job.id for job in scheduler.jobs()] == ["hello"]
    assert [run.id for run in scheduler.runs()] == [run_id]
    assert scheduler.get_run(run_id).status is RunStatus.QUEUED


@pytest.mark.parametrize(("method", "url", "body"), MUTATIONS)
def test_viewers_cannot_change_anything(
    anon: TestClient,
    viewer_client: TestClient,
    viewer_token: str,
    scheduler: Scheduler,
    hello_with_a_run: int,
    method: str,
    url: str,
    body: dict[str, Any] | None,
) -> None:
    by_session = viewer_client.request(method, url, json=body)
    by_token = anon.request(method, url, json=body, headers=bearer(viewer_token))
    assert by_session.status_code == by_token.status_code == 403
    _unchanged(scheduler, hello_with_a_run)


@pytest.mark.parametrize(("method", "url", "body"), MUTATIONS)
def test_sessions_need_the_csrf_token_to_change_anything(
    admin_client: TestClient, scheduler: Scheduler, hello_with_a_run: int, method: str, url: str, body: Any
) -> None:
    del admin_client.headers["X-CSRF-Token"]
    assert admin_client.request(method, url, json=body).status_code == 403
    admin_client.headers["X-CSRF-Token"] = "forged"
    assert admin_client.request(method, url, json=body).status_code == 403
    _unchanged(scheduler, hello_with_a_run)


@pytest.mark.parametrize(("method", "url", "body"), MUTATIONS)
def test_sessions_cannot_change_anything_from_another_site(
    admin_client: TestClient, scheduler: Scheduler, hello_with_a_run: int, method: str, url: str, body: Any
) -> None:
    for header, value in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Origin", "http://testserver.evil.example"),
        ("Referer", "https://evil.example/page"),
    ]:
        response = admin_client.request(method, url, json=body, headers={header: value})
        assert response.status_code == 403, (header, value)
    _unchanged(scheduler, hello_with_a_run)


def test_sessions_change_things_from_their_own_site_and_tokens_from_anywhere(
    admin: TestClient, admin_client: TestClient, scheduler: Scheduler
) -> None:
    own = {"Origin": "http://testserver", "Referer": "https://evil.example/"}  # Origin wins over Referer
    referred = {"Referer": "http://testserver/jobs"}
    for client, job_id, headers in [
        (admin_client, "same-origin", own),
        (admin_client, "same-referer", referred),
        (admin, "by-token", {"Origin": "https://elsewhere.example"}),
    ]:
        response = client.post("/api/jobs", json={**HELLO, "id": job_id}, headers=headers)
        assert response.status_code == 201, response.text
    assert {job.id for job in scheduler.jobs()} == {"same-origin", "same-referer", "by-token"}


def test_without_credentials_everything_is_401(
    anon: TestClient, scheduler: Scheduler, hello_with_a_run: int
) -> None:
    anon.headers.pop("Authorization")
    requests = [
        *((method, url, body) for method, url, body in MUTATIONS),
        *(("GET", url, None) for url in READS),
    ]
    for method, url, body in [*requests, ("POST", "/api/schedule/preview", {"cron": "* * * * *"})]:
        response = anon.request(method, url, json=body)
        assert response.status_code == 401, (method, url)
        assert response.headers["www-authenticate"] == "Bearer"
    for header in ("Bearer wrong", "Basic YWRtaW46eA==", "Bearer"):
        assert anon.get("/api/jobs", headers={"Authorization": header}).status_code == 401
    _unchanged(scheduler, hello_with_a_run)


def test_viewers_read_everything(
    anon: TestClient, viewer_client: TestClient, viewer_token: str, hello_with_a_run: int
) -> None:
    for url in READS:
        assert viewer_client.get(url).status_code == 200, url
        assert anon.get(url, headers=bearer(viewer_token)).status_code == 200, url


def test_admins_change_things_by_token_without_csrf_and_by_session_with_it(
    admin: TestClient, admin_client: TestClient, scheduler: Scheduler
) -> None:
    assert "X-CSRF-Token" not in admin.headers
    create(admin, id="by-token")
    create(admin_client, id="by-session")
    assert {job.id: job.created_by for job in scheduler.jobs()} == {
        "by-token": "token:admin-bot",
        "by-session": "admin",
    }


# ---- runs -----------------------------------------------------------------------------------------------


def test_trigger_queues_a_run_recorded_with_who_asked(admin: TestClient, scheduler: Scheduler) -> None:
    create(admin)
    response = admin.post("/api/jobs/hello/runs")
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert response.json() == {"run_id": run_id, "job_id": "hello"}
    run = scheduler.get_run(run_id)
    assert (run.status, run.trigger_source, run.triggered_by) == (
        RunStatus.QUEUED,
        TriggerSource.API,
        "token:admin-bot",
    )
    assert audit_rows(scheduler)[-1] == ("token:admin-bot", "trigger", "hello", "api testclient")


def test_an_idempotency_key_makes_a_repeated_trigger_return_the_same_run(
    admin: TestClient, admin_client: TestClient, scheduler: Scheduler
) -> None:
    create(admin)
    create(admin, id="other")
    first = admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "deploy-42"})
    again = admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "deploy-42"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert len(scheduler.runs(job_id="hello")) == 1
    other_key = admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "deploy-43"})
    assert other_key.json()["run_id"] != first.json()["run_id"]
    # Keys belong to whoever sent them: the same key from another user is another request.
    other_user = admin_client.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "deploy-42"})
    assert other_user.json()["run_id"] not in (first.json()["run_id"], other_key.json()["run_id"])
    assert len(scheduler.runs(job_id="hello")) == 3
    # The same key for another job is a mistake, not a replay.
    wrong_job = admin.post("/api/jobs/other/runs", headers={"Idempotency-Key": "deploy-42"})
    assert (wrong_job.status_code, wrong_job.json()["field"]) == (422, "Idempotency-Key")
    assert scheduler.runs(job_id="other") == []


def test_bad_idempotency_keys_are_refused(admin: TestClient, scheduler: Scheduler) -> None:
    create(admin)
    for key in ("k" * 201, ""):
        response = admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": key})
        assert (response.status_code, response.json()["field"]) == (422, "Idempotency-Key")
    assert scheduler.runs() == []


def test_a_key_in_flight_is_a_conflict_and_a_failed_trigger_frees_its_key(
    admin: TestClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    now = clock.now()
    SqlIdempotencyStore(sql_engine(scheduler)).reserve_key(
        "token:admin-bot",
        "busy",
        "hello",
        now=now,
        forget_before=now - timedelta(days=1),
        abandoned_before=now - timedelta(minutes=1),
    )
    create(admin)
    assert admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "busy"}).status_code == 409
    assert admin.post("/api/jobs/late/runs", headers={"Idempotency-Key": "retry-me"}).status_code == 404
    create(admin, id="late")
    retried = admin.post("/api/jobs/late/runs", headers={"Idempotency-Key": "retry-me"})
    assert retried.status_code == 202
    # Keys are forgotten after a day.
    clock.advance(timedelta(hours=25))
    assert admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "busy"}).status_code == 202


def test_a_key_whose_request_died_is_taken_over_after_a_minute(
    admin: TestClient, scheduler: Scheduler, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(admin)

    def blip(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise StoreError("database write failed: connection reset")

    with monkeypatch.context() as patched:  # giving the key back fails too
        patched.setattr(SqlIdempotencyStore, "settle_key", blip)
        # The request's own error is the answer, not the failed cleanup's.
        assert admin.post("/api/jobs/nope/runs", headers={"Idempotency-Key": "k0"}).status_code == 404
        patched.setattr(scheduler.store, "enqueue_run", blip)
        assert admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "k"}).status_code == 503
    assert admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "k"}).status_code == 409
    clock.advance(timedelta(seconds=59))
    assert admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "k"}).status_code == 409
    assert scheduler.runs() == []
    clock.advance(timedelta(seconds=2))
    retried = admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "k"})
    assert retried.status_code == 202
    again = admin.post("/api/jobs/hello/runs", headers={"Idempotency-Key": "k"})
    assert again.json() == retried.json()
    assert [run.id for run in scheduler.runs()] == [retried.json()["run_id"]]


@pytest.fixture
def history(scheduler: Scheduler, clock: FakeClock, admin: TestClient) -> list[int]:
    """120 runs over two jobs, newest last: every third by the API, every tenth of "a" cancelled."""
    create(admin, id="a")
    create(admin, id="b")
    ids = []
    for i in range(120):
        clock.advance(timedelta(seconds=1))
        source = TriggerSource.API if i % 3 == 0 else TriggerSource.MANUAL
        ids.append(scheduler.trigger("a" if i % 2 == 0 else "b", trigger_source=source))
    scheduler.run_service.cancel(ids[0:120:10])
    return ids


def _walk(client: TestClient, url: str, **query: Any) -> list[list[int]]:
    """Every page of a listing, as lists of run ids."""
    pages: list[list[int]] = []
    before: int | None = None
    while True:
        params = {**query, **({"before_id": before} if before else {})}
        response = client.get(url, params=params)
        assert response.status_code == 200, response.text
        page = RunPage.model_validate(response.json())
        pages.append([run.id for run in page.runs])
        before = page.next_before_id
        if before is None:
            return pages


def test_runs_are_paged_newest_first_by_keyset(admin: TestClient, history: list[int]) -> None:
    pages = _walk(admin, "/api/runs", limit=50)
    assert [len(page) for page in pages] == [50, 50, 20]
    assert [run_id for page in pages for run_id in page] == sorted(history, reverse=True)
    assert _walk(admin, "/api/runs", limit=1000) == [sorted(history, reverse=True)]
    # A run added while paging does not shift the next page.
    first = admin.get("/api/runs", params={"limit": 10}).json()
    admin.post("/api/jobs/a/runs")
    second = admin.get("/api/runs", params={"limit": 10, "before_id": first["next_before_id"]}).json()
    assert [run["id"] for run in second["runs"]] == sorted(history, reverse=True)[10:20]


def test_a_page_that_is_exactly_full_is_the_last(admin: TestClient, history: list[int]) -> None:
    assert [len(page) for page in _walk(admin, "/api/runs", limit=60)] == [60, 60]
    assert [len(page) for page in _walk(admin, "/api/jobs/a/runs", limit=30)] == [30, 30]
    assert [len(page) for page in _walk(admin, "/api/runs", status="cancelled", limit=12)] == [12]
    assert admin.get("/api/runs", params={"limit": 120}).json()["next_before_id"] is None


def test_a_full_page_of_the_largest_size_looks_one_row_further(
    admin: TestClient, history: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "MAX_PAGE", 40)  # what the service reads at most, lowered to spare 1000 runs
    assert [len(page) for page in _walk(admin, "/api/runs", limit=40)] == [40, 40, 40]
    assert [len(page) for page in _walk(admin, "/api/runs", limit=20)] == [20] * 6


def test_runs_are_filtered_by_job_status_and_source(
    admin: TestClient, scheduler: Scheduler, history: list[int]
) -> None:
    def ids(url: str = "/api/runs", **query: Any) -> list[int]:
        return [run_id for page in _walk(admin, url, **query) for run_id in page]

    newest_first = sorted(history, reverse=True)
    of_a = [run_id for run_id in newest_first if scheduler.get_run(run_id).job_id == "a"]
    assert ids(job_id="a") == ids("/api/jobs/a/runs") == of_a
    assert ids(status="cancelled") == sorted(history[0:120:10], reverse=True)
    assert ids(status=["cancelled", "queued"]) == newest_first
    assert ids(source="api") == sorted(history[0:120:3], reverse=True)
    assert ids("/api/jobs/b/runs", source="api", status="queued", limit=7) == [
        run_id for run_id in sorted(history[0:120:3], reverse=True) if run_id in history[1::2]
    ]
    assert ids(job_id="nope") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "bogus"}, "status"),
        ({"source": "cron"}, "source"),
        ({"before_id": "x"}, "before_id"),
        ({"before_id": 10**30}, "before_id"),
    ],
)
def test_bad_run_queries_are_422(admin: TestClient, history: list[int], query: Any, field: str) -> None:
    for url in ("/api/runs", "/api/jobs/a/runs"):
        response = admin.get(url, params=query)
        assert response.status_code == 422, response.text
        assert response.json()["field"].split(".")[0] == field


def test_run_pages_leave_output_out_and_match_the_cli_shape(admin: TestClient, history: list[int]) -> None:
    run = admin.get("/api/runs", params={"limit": 1}).json()["runs"][0]
    assert "output" not in run
    assert run["triggered_by"] is None
    RunOut.model_validate(run)


def test_a_finished_run_has_its_output_and_a_download(
    admin: TestClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    text = "<script>alert(1)</script> & ünïcödé"
    create(admin, command=["printf", "%s", text])
    scheduler.start()
    try:
        run_id = admin.post("/api/jobs/hello/runs").json()["run_id"]
        finished = wait_until_ended(scheduler, run_id)
    finally:
        scheduler.stop()
    assert finished.status is RunStatus.SUCCEEDED, finished.error
    detail = admin.get(f"/api/runs/{run_id}")
    assert detail.status_code == 200
    assert detail.json() == run_to_json(scheduler.get_run(run_id))
    assert detail.json()["output"] == text
    assert detail.json()["traceback"] is None
    RunDetail.model_validate(detail.json())
    download = admin.get(f"/api/runs/{run_id}/output")
    assert download.status_code == 200
    assert download.content == text.encode()
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == f'attachment; filename="run-{run_id}.txt"'


def test_run_ids_must_be_numbers_of_existing_runs(admin: TestClient) -> None:
    for url in ("/api/runs/abc", "/api/runs/0", f"/api/runs/{10**30}", "/api/runs/1.5/output"):
        assert admin.get(url).status_code == 422, url
    assert admin.post("/api/runs/abc/cancel").status_code == 422
    for url in ("/api/runs/77", "/api/runs/77/output"):
        assert admin.get(url).status_code == 404
    assert admin.post("/api/runs/77/cancel").status_code == 404


def test_cancel_a_queued_run(admin: TestClient, scheduler: Scheduler) -> None:
    create(admin)
    run_id = scheduler.trigger("hello")
    response = admin.post(f"/api/runs/{run_id}/cancel")
    assert response.status_code == 202
    assert response.json() == {"run_id": run_id, "job_id": "hello"}
    assert scheduler.get_run(run_id).status is RunStatus.CANCELLED
    again = admin.post(f"/api/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert audit_rows(scheduler)[-1] == ("token:admin-bot", "cancel", str(run_id), "api testclient")


def test_cancel_a_running_command(admin: TestClient, scheduler: Scheduler) -> None:
    create(admin, command=["sleep", "30"])
    scheduler.start()
    try:
        run_id = admin.post("/api/jobs/hello/runs").json()["run_id"]
        deadline = time.monotonic() + 10
        while scheduler.get_run(run_id).status is not RunStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.02)
        assert admin.post(f"/api/runs/{run_id}/cancel").status_code == 202
        finished = wait_until_ended(scheduler, run_id)
    finally:
        scheduler.stop()
    assert finished.status is RunStatus.CANCELLED


# ---- status and schedules -------------------------------------------------------------------------------


def test_status_without_a_scheduler_in_this_process(admin: TestClient, history: list[int]) -> None:
    body = admin.get("/api/status").json()
    StatusOut.model_validate(body)
    assert body["scheduler"] == {
        "running": False,
        "node": None,
        "last_loop_at": None,
        "loop_errors": 0,
        "clock_skew": None,
        "clock_too_far": False,
    }
    assert body["nodes"] == []
    assert body["counts"]["cancelled"] == 12
    assert body["counts"]["queued"] == 108
    assert body["active"] == 108
    assert set(body["counts"]) == {status.value for status in RunStatus}


def test_status_with_a_running_scheduler(admin: TestClient, scheduler: Scheduler) -> None:
    scheduler.start()
    try:
        assert scheduler.loop is not None
        deadline = time.monotonic() + 10
        body = admin.get("/api/status").json()
        while not body["nodes"] and time.monotonic() < deadline:
            time.sleep(0.02)
            body = admin.get("/api/status").json()
        StatusOut.model_validate(body)
        assert body["scheduler"]["running"] is True
        assert body["scheduler"]["node"] == scheduler.loop.owner
        assert [(node["id"], node["live"]) for node in body["nodes"]] == [(scheduler.loop.owner, True)]
    finally:
        scheduler.stop()


def test_schedule_preview_is_open_to_viewers(viewer_client: TestClient, scheduler: Scheduler) -> None:
    response = viewer_client.post(
        "/api/schedule/preview", json={"cron": "0 9 * * 1-5", "timezone": "Europe/Paris", "count": 3}
    )
    assert response.status_code == 200, response.text
    body = PreviewOut.model_validate(response.json())
    assert "09:00" in body.description
    assert [instant.isoformat() for instant in body.next] == [
        "2026-03-03T08:00:00+00:00",
        "2026-03-04T08:00:00+00:00",
        "2026-03-05T08:00:00+00:00",
    ]
    default = viewer_client.post("/api/schedule/preview", json={"every": "90m"})
    assert len(default.json()["next"]) == 5
    once = viewer_client.post("/api/schedule/preview", json={"at": "2026-04-01T12:00:00"})
    assert once.json()["next"] == ["2026-04-01T12:00:00+00:00"]
    assert audit_rows(scheduler) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "0 25 * * *"}, "cron"),
        ({}, "schedule"),
        ({"cron": "* * * * *", "every": "5m"}, "schedule"),
        ({"cron": "* * * * *", "count": 0}, "count"),
        ({"cron": "* * * * *", "count": 51}, "count"),
        ({"cron": "* * * * *", "command": ["x"]}, "command"),
        ({"cron": "* * * * *", "timezone": "Nowhere/Else"}, "timezone"),
        ({"every": "0s"}, "every"),
        ([], "body"),
    ],
)
def test_bad_schedules_are_422(viewer_client: TestClient, body: Any, field: str) -> None:
    response = viewer_client.post("/api/schedule/preview", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


# ---- the OpenAPI document -------------------------------------------------------------------------------


def test_openapi_describes_the_api_and_its_bearer_scheme(anon: TestClient) -> None:
    document = anon.get("/api/openapi.json").json()
    paths = document["paths"]
    assert set(paths) >= {
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/pause",
        "/api/jobs/{job_id}/resume",
        "/api/jobs/{job_id}/runs",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/output",
        "/api/runs/{run_id}/cancel",
        "/api/jobs/{job_id}/stats",
        "/api/stats",
        "/api/status",
        "/api/schedule/preview",
    }
    schemes = document["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["HTTPBearer"].items()
    for path, operations in paths.items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            assert {"HTTPBearer": []} in operation["security"], (method, path)
            assert operation["summary"] and operation["tags"], (method, path)
            assert "401" in operation["responses"]
    for path, method in [
        ("/api/jobs/{job_id}", "patch"),
        ("/api/jobs/{job_id}", "delete"),
        ("/api/jobs/{job_id}/pause", "post"),
        ("/api/jobs/{job_id}/resume", "post"),
    ]:
        operation = paths[path][method]
        assert "412" in operation["responses"], (method, path)
        assert "If-Match" in [parameter["name"] for parameter in operation["parameters"]], (method, path)
    listing = paths["/api/jobs"]["get"]
    assert {parameter["name"] for parameter in listing["parameters"]} == {
        "state",
        "tag",
        "q",
        "after",
        "limit",
    }
    assert set(document["components"]["schemas"]["JobList"]["required"]) == {"jobs", "next_after"}
    create_job = paths["/api/jobs"]["post"]
    assert "201" in create_job["responses"]
    body_schema = document["components"]["schemas"]["JobCreate"]
    assert body_schema["additionalProperties"] is False
    assert body_schema["properties"]["timeout"]["description"]
    assert document["components"]["schemas"]["ErrorOut"]["properties"].keys() == {"detail", "field"}


def test_documented_shapes_match_what_the_serializers_produce(
    admin: TestClient, scheduler: Scheduler
) -> None:
    job = create(admin)
    assert set(job) == set(JobOut.model_fields) - {"warnings"}  # only there when there are any
    run = scheduler.get_run(scheduler.trigger("hello"))
    assert set(run_to_json(run, with_output=False)) == set(RunOut.model_fields)
    assert set(run_to_json(run)) == set(RunDetail.model_fields)
