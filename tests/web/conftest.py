"""A web app over a real SQLite file with a fake clock, users of both roles, and logged-in clients.

``anon`` is a client with no credentials; ``admin_client``/``viewer_client`` hold a real session (logged in
through the form, so they carry the CSRF token as htmx would); ``admin_token``/``viewer_token`` are API
tokens for ``Authorization: Bearer``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cronkeeper.clock import FakeClock
from cronkeeper.models import Role
from cronkeeper.scheduler import Scheduler
from cronkeeper.services.accounts import AccountService, Actor
from cronkeeper.web import WebSettings, create_app

ADMIN_PASSWORD = "admin-password-1"
VIEWER_PASSWORD = "viewer-password-1"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
# Fast argon2 parameters: the tests check behaviour, not the cost of a guess.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def scheduler(tmp_path: Path, clock: FakeClock) -> Iterator[Scheduler]:
    sched = Scheduler(f"sqlite:///{tmp_path / 'web.db'}", clock=clock)
    yield sched
    sched.close()


@pytest.fixture
def app(scheduler: Scheduler) -> FastAPI:
    application = create_app(scheduler, WebSettings())
    accounts: AccountService = application.state.cronkeeper.accounts
    accounts.hasher = FAST_HASHER
    setup = Actor("test-setup")
    accounts.add_user("admin", ADMIN_PASSWORD, Role.ADMIN, actor=setup)
    accounts.add_user("viewer", VIEWER_PASSWORD, Role.VIEWER, actor=setup)
    return application


@pytest.fixture
def accounts(app: FastAPI) -> AccountService:
    service: AccountService = app.state.cronkeeper.accounts
    return service


def login(client: TestClient, username: str, password: str) -> TestClient:
    """Log in through the form, and make the client send the CSRF token the way htmx does."""
    page = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": username, "password": password, "login_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    client.headers["X-CSRF-Token"] = csrf_of(client)
    return client


def csrf_of(client: TestClient) -> str:
    page = client.get("/")
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    assert found is not None, "pages carry the CSRF token for htmx"
    return found.group(1)


@pytest.fixture
def anon(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def admin_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield login(client, "admin", ADMIN_PASSWORD)


@pytest.fixture
def viewer_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield login(client, "viewer", VIEWER_PASSWORD)


@pytest.fixture
def admin_token(accounts: AccountService) -> str:
    return accounts.create_token("admin-bot", Role.ADMIN, actor=Actor("test-setup"))[1]


@pytest.fixture
def viewer_token(accounts: AccountService) -> str:
    return accounts.create_token("viewer-bot", Role.VIEWER, actor=Actor("test-setup"))[1]
