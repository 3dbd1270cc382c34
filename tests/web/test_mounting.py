"""The app inside someone else's: mounted under a prefix in a FastAPI host, and beside a Flask app (WSGI)."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from cronkeeper.scheduler import Scheduler
from cronkeeper.web import create_app, wsgi_app
from tests.web.conftest import ADMIN_PASSWORD, FAST_HASHER


def _with_admin(scheduler: Scheduler) -> None:
    from cronkeeper.models import Role
    from cronkeeper.services.accounts import Actor

    accounts = scheduler.accounts
    accounts.hasher = FAST_HASHER
    accounts.add_user("admin", ADMIN_PASSWORD, Role.ADMIN, actor=Actor("test-setup"))


def test_mounted_under_a_prefix_in_a_fastapi_host(scheduler: Scheduler) -> None:
    _with_admin(scheduler)
    host = FastAPI()

    @host.get("/")
    def home() -> dict[str, str]:
        return {"app": "host"}

    host.mount("/cron", create_app(scheduler))
    with TestClient(host) as client:
        assert client.get("/").json() == {"app": "host"}
        redirect = client.get("/cron/", follow_redirects=False)
        assert redirect.headers["location"] == "/cron/login?next=/"
        form = client.get("/cron/login")
        assert 'action="/cron/login"' in form.text
        assert 'href="/cron/static/app.css"' in form.text
        token = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert token is not None
        data = {"username": "admin", "password": ADMIN_PASSWORD, "login_token": token.group(1), "next": "/"}
        done = client.post("/cron/login", data=data, follow_redirects=False)
        assert done.headers["location"] == "/cron/"
        assert "Path=/cron" in done.headers["set-cookie"]
        assert client.get("/cron/").status_code == 200
        assert client.get("/cron/static/htmx.min.js").status_code == 200
        assert client.get("/cron/healthz").json() == {"status": "ok"}


def test_beside_a_flask_app(scheduler: Scheduler) -> None:
    _with_admin(scheduler)
    flask_app = Flask(__name__)

    @flask_app.get("/")
    def home() -> str:
        return "flask home"

    flask_app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        flask_app.wsgi_app, {"/cron": wsgi_app(scheduler)}
    )
    client = flask_app.test_client()
    assert client.get("/").text == "flask home"
    assert client.get("/cron/healthz").json == {"status": "ok"}
    form = client.get("/cron/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": "admin", "password": ADMIN_PASSWORD, "login_token": token.group(1), "next": "/"}
    done = client.post("/cron/login", data=data)
    assert done.status_code == 303
    assert done.headers["location"] == "/cron/"
    jobs = client.get("/cron/")
    assert jobs.status_code == 200
    assert "Jobs" in jobs.text
