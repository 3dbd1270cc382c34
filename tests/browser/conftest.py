"""A real cronkeeper (scheduler running, web app served by uvicorn on a loopback port) and a real headless
Chromium (Debian's ``chromium``, driven by Playwright with ``executable_path``).

Without Chromium or Playwright these tests are skipped, except under ``CI=true``, where a missing browser is
an error: ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from cronkeeper.models import Role
from cronkeeper.scheduler import Scheduler
from cronkeeper.services.accounts import AccountService, Actor
from cronkeeper.settings import SchedulerSettings
from cronkeeper.web import create_app
from tests.web.conftest import ADMIN_PASSWORD, FAST_HASHER, VIEWER_PASSWORD

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - only without the test extra
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own background traffic is refused by a closed network, and slows every start; no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need_browser() -> None:
    if sync_playwright is not None and Path(CHROMIUM).exists():
        return
    message = "headless Chromium (Debian package 'chromium') and playwright are needed for browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True, slots=True)
class Site:
    url: str
    scheduler: Scheduler


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """cronkeeper as ``serve`` runs it: a running scheduler and the web app on one database."""
    _need_browser()
    scheduler = Scheduler(
        f"sqlite:///{tmp_path / 'browser.db'}", settings=SchedulerSettings(poll_interval=0.5)
    )
    app = create_app(scheduler)
    accounts: AccountService = app.state.cronkeeper.accounts
    accounts.hasher = FAST_HASHER
    accounts.add_user("admin", ADMIN_PASSWORD, Role.ADMIN, actor=Actor("test-setup"))
    accounts.add_user("viewer", VIEWER_PASSWORD, Role.VIEWER, actor=Actor("test-setup"))
    scheduler.service.add_job(
        {
            "id": "nightly-report",
            "name": "Nightly report",
            "cron": "0 3 * * *",
            "timezone": "Europe/Paris",
            "command": ["sh", "-c", "echo building report; sleep 1; echo 42 rows"],
            "tags": ["reports"],
        },
        by="test-setup",
    )
    scheduler.service.add_job(
        {"id": "cleanup", "every": "1h", "command": ["echo", "cleaned"], "tags": ["maintenance"]},
        by="test-setup",
    )
    scheduler.start()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", scheduler)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        scheduler.stop(wait=True, timeout=10)
        scheduler.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per module: Playwright's sync API keeps an event loop in this thread while it runs, so it
    must be gone before later tests call asyncio.run()."""
    _need_browser()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def log_in(page: Page, site: Site, username: str, password: str) -> None:
    page.goto(f"{site.url}/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/")
