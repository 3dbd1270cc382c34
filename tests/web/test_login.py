"""Logging in and out, sessions, throttling and the headers every page carries."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cronkeeper import Scheduler
from cronkeeper.clock import FakeClock
from cronkeeper.web.app import create_app
from cronkeeper.web.settings import WebSettings
from tests.web.conftest import ADMIN_PASSWORD, csrf_of, login


def _form_token(client: TestClient) -> str:
    page = client.get("/login")
    return page.text.split('name="login_token" value="')[1].split('"')[0]


def _try(client: TestClient, username: str, password: str) -> int:
    data = {"username": username, "password": password, "login_token": _form_token(client), "next": "/"}
    return client.post("/login", data=data, follow_redirects=False).status_code


def test_pages_redirect_to_login_and_api_answers_401(anon: TestClient) -> None:
    page = anon.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")
    api = anon.get("/api/jobs")
    assert api.status_code in (401, 404)  # 404 until the API has its routes


def test_login_sets_an_httponly_samesite_cookie_and_rotates_the_session(anon: TestClient) -> None:
    data = {"username": "admin", "password": ADMIN_PASSWORD, "login_token": _form_token(anon), "next": "/"}
    first = anon.post("/login", data=data, follow_redirects=False)
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.replace("Lax", "lax")
    old = anon.cookies.get("ck_session")
    data["login_token"] = _form_token(anon)
    anon.post("/login", data=data, follow_redirects=False)
    assert anon.cookies.get("ck_session") != old


def test_unknown_user_and_wrong_password_get_the_same_answer(anon: TestClient) -> None:
    data = {"username": "nobody", "password": "whatever-1", "login_token": _form_token(anon), "next": "/"}
    unknown = anon.post("/login", data=data)
    data = {"username": "admin", "password": "wrong-password", "login_token": _form_token(anon), "next": "/"}
    wrong = anon.post("/login", data=data)
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong user name or password." in unknown.text
    assert "Wrong user name or password." in wrong.text


def test_login_without_the_form_token_is_refused(anon: TestClient) -> None:
    data = {"username": "admin", "password": ADMIN_PASSWORD, "login_token": "forged", "next": "/"}
    assert anon.post("/login", data=data, follow_redirects=False).status_code == 400


def test_failed_logins_are_throttled_per_account_known_or_not(anon: TestClient, clock: FakeClock) -> None:
    for name in ("admin", "ghost"):
        for _ in range(5):
            assert _try(anon, name, "wrong-password") == 401
        assert _try(anon, name, "wrong-password") == 429
    assert _try(anon, "admin", ADMIN_PASSWORD) == 429  # even the right password waits
    assert _try(anon, "viewer", "wrong-password") == 401  # other accounts are not affected
    clock.advance(timedelta(minutes=16))
    assert _try(anon, "admin", ADMIN_PASSWORD) == 303


def test_the_limit_holds_for_the_cluster_and_across_restarts(app: FastAPI, scheduler: Scheduler) -> None:
    """Guesses alternating between two nodes on one database count together, and a restarted node
    remembers them."""

    def node() -> FastAPI:
        made = Scheduler(scheduler.database_url, clock=scheduler.clock)
        nodes.append(made)
        return create_app(made, WebSettings())

    nodes: list[Scheduler] = []
    try:
        with TestClient(app) as first, TestClient(node()) as second:
            for client in (first, second, first, second, first):
                assert _try(client, "admin", "wrong-password") == 401
            assert _try(second, "admin", "wrong-password") == 429
        with TestClient(node()) as restarted:
            assert _try(restarted, "admin", ADMIN_PASSWORD) == 429
    finally:
        for made in nodes:
            made.close()


def test_logout_ends_the_session_on_the_server(admin_client: TestClient) -> None:
    cookie = admin_client.cookies.get("ck_session")
    response = admin_client.post("/logout", follow_redirects=False)
    assert response.status_code == 303
    admin_client.cookies.set("ck_session", cookie or "")
    assert admin_client.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_the_csrf_token(admin_client: TestClient) -> None:
    del admin_client.headers["X-CSRF-Token"]
    assert admin_client.post("/logout", follow_redirects=False).status_code == 403


def test_open_redirects_are_refused(anon: TestClient) -> None:
    data = {
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "login_token": _form_token(anon),
        "next": "//evil.example/",
    }
    response = anon.post("/login", data=data, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_every_response_carries_the_security_headers(anon: TestClient) -> None:
    response = anon.get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_healthz_needs_no_login_and_says_nothing_more(anon: TestClient) -> None:
    response = anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_password_change_ends_the_users_sessions(admin_client: TestClient, accounts: object) -> None:
    from cronkeeper.services.accounts import AccountService, Actor

    assert isinstance(accounts, AccountService)
    accounts.set_password("admin", "a-new-password", actor=Actor("test"))
    assert admin_client.get("/", follow_redirects=False).status_code == 303
    login(admin_client, "admin", "a-new-password")
    assert csrf_of(admin_client)
