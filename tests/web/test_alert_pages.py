"""The alerts page: channels masked for everyone, added, tested and removed by admins (with CSRF), and the
outbox listed."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from cronkeeper import Scheduler
from tests.sinks import WebhookSink

SECRET_URL = "json://deploy:hunter2secret@127.0.0.1:{port}/hook"


def csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/alerts").text)
    assert found is not None
    return found.group(1)


def test_an_admin_adds_tests_and_removes_a_channel_whose_secret_is_never_shown(
    admin_client: TestClient, webhook: WebhookSink, scheduler: Scheduler
) -> None:
    url = SECRET_URL.format(port=webhook.port)
    added = admin_client.post("/channels", data={"name": "ops", "url": url, "csrf_token": csrf(admin_client)})
    assert added.status_code == 200  # followed the 303 back to the page
    assert "hunter2secret" not in added.text
    assert "deploy:****@127.0.0.1" in added.text

    tested = admin_client.post("/channels/ops/test", data={"csrf_token": csrf(admin_client)})
    assert "took the test message" in tested.text
    assert len(webhook.posts) == 1

    assert "Remove the channel ops?" in admin_client.get("/channels/ops/remove").text
    admin_client.post("/channels/ops/remove", data={"csrf_token": csrf(admin_client)})
    assert scheduler.alerts.list_channels() == []


def test_a_bad_channel_is_named_beside_the_form_and_nothing_is_saved(
    admin_client: TestClient, scheduler: Scheduler
) -> None:
    answer = admin_client.post(
        "/channels", data={"name": "ops", "url": "nosuch://u:topsecret@h", "csrf_token": csrf(admin_client)}
    )
    assert answer.status_code == 422
    assert "no notification service understands this nosuch:// URL" in answer.text
    assert "topsecret" not in answer.text
    assert scheduler.alerts.list_channels() == []


def test_viewers_see_channels_masked_and_alerts_but_change_nothing(
    viewer_client: TestClient, scheduler: Scheduler, webhook: WebhookSink
) -> None:
    scheduler.alerts.add_channel("ops", SECRET_URL.format(port=webhook.port))
    scheduler.alerts.enqueue("test", "ops", {"kind": "test"})
    page = viewer_client.get("/alerts")
    assert page.status_code == 200
    assert "hunter2secret" not in page.text
    assert "Send a test" not in page.text
    assert "pending" in page.text
    assert (
        viewer_client.post("/channels/ops/test", data={"csrf_token": csrf(viewer_client)}).status_code == 403
    )


def test_a_form_without_its_csrf_token_is_refused(admin_client: TestClient, webhook: WebhookSink) -> None:
    admin_client.headers.pop("X-CSRF-Token", None)
    answer = admin_client.post("/channels", data={"name": "ops", "url": SECRET_URL.format(port=webhook.port)})
    assert answer.status_code == 403
