"""``cronkeeper serve`` with its dashboard: a real process on a free port, spoken to over real HTTP."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import httpx2
import pytest

from cronkeeper.demo import DEMO_JOBS
from tests.e2e.test_cli import CRONKEEPER, Cli, seed, wait_for
from tests.sinks import free_port

PASSWORD_LINE = re.compile(r"dashboard login: admin / (\S+)")
_numbers = count(1)


@dataclass
class Served:
    """A running ``cronkeeper serve``; after the block, how it ended and what it wrote."""

    port: int
    proc: subprocess.Popen[bytes]
    err_path: Path
    returncode: int | None = None
    stopped_in: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()


@contextmanager
def serving(
    cli: Cli, port: int, *args: str, env: dict[str, str] | None = None, web: bool = True
) -> Iterator[Served]:
    """``cronkeeper serve ARGS``, expected on ``port``, until the block ends, then SIGTERM, timing the exit.
    Only standard error is kept: serve writes its log and a first password there, nothing on stdout."""
    err_path = cli.cwd / f"serve-{next(_numbers)}.err"
    with (
        err_path.open("w") as err,
        subprocess.Popen(
            [str(CRONKEEPER), "serve", *args],
            cwd=cli.cwd,
            env={**cli.env, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=err,
        ) as proc,
    ):
        served = Served(port, proc, err_path)
        try:
            wait_for(lambda: proc.poll() is not None or _ready(served, web), "serve to start")
            assert proc.poll() is None, served.stderr
            yield served
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            served.returncode = proc.wait(timeout=15)
            served.stopped_in = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()


def _ready(served: Served, web: bool) -> bool:
    """Serving, and with the web app: answering, with its first user made (which comes just after)."""
    if not web:
        return "cronkeeper serving" in served.stderr
    if "dashboard at" not in served.stderr:
        return False
    try:
        return httpx2.get(f"{served.url}/healthz", trust_env=False).status_code == 200
    except httpx2.TransportError:
        return False


@contextmanager
def logged_in(url: str, username: str, password: str) -> Iterator[httpx2.Client]:
    """A client holding a session, logged in through the form as a browser does."""
    with httpx2.Client(base_url=url, trust_env=False) as client:
        form = client.get("/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert token is not None, form.text
        assert client.cookies.get("ck_login") == token.group(1), "the double-submit pair"
        data = {"username": username, "password": password, "login_token": token.group(1), "next": "/"}
        answer = client.post("/login", data=data)
        assert answer.status_code == 303, answer.text
        yield client


def test_serve_runs_the_dashboard_shows_a_generated_admin_password_once_and_stops_on_sigterm(
    cli: Cli,
) -> None:
    port = free_port()

    with serving(cli, port, "--demo", "--port", str(port)) as first:
        shown = PASSWORD_LINE.findall(first.stderr)
        assert len(shown) == 1, first.stderr
        password = shown[0]
        assert first.stderr.count(password) == 1, "printed once, never logged"
        assert "cronkeeper users passwd admin" in first.stderr
        assert f"dashboard at http://127.0.0.1:{port}/" in first.stderr
        with logged_in(first.url, "admin", password) as client:
            jobs_page = client.get("/")
        assert jobs_page.status_code == 200
        for job in DEMO_JOBS:
            assert job["id"] in jobs_page.text
        anonymous = httpx2.get(f"{first.url}/", trust_env=False)
        assert anonymous.status_code in (302, 303, 401), "the dashboard needs a login"

    assert first.returncode == 0, first.stderr
    assert "received SIGTERM" in first.stderr, "serve's handler, not uvicorn's"
    assert first.stopped_in is not None
    assert first.stopped_in < 10
    assert first.stderr.rstrip().endswith("stopped")

    with (
        serving(cli, port, "--demo", "--port", str(port)) as second,
        logged_in(second.url, "admin", password) as client,
    ):
        assert client.get("/").status_code == 200, "the same admin, on the same port again"

    assert second.returncode == 0, second.stderr
    assert "dashboard login" not in second.stderr
    assert password not in second.stderr


def test_the_first_admin_gets_the_password_from_the_environment_and_the_port_from_the_web_table(
    cli: Cli,
) -> None:
    port = free_port()
    password = "from-the-environment-1"
    (cli.cwd / "cronkeeper.toml").write_text(f'[web]\nport = {port}\nsession_lifetime = "1h"\n')

    environ = {"CRONKEEPER_ADMIN_PASSWORD": password}
    with serving(cli, port, env=environ) as served, logged_in(served.url, "admin", password) as client:
        assert client.get("/").status_code == 200
        session = next(cookie for cookie in client.cookies.jar if cookie.name == "ck_session")
        assert session.expires is not None
        assert 3500 < session.expires - time.time() <= 3600, "session_lifetime from the [web] table"

    assert served.returncode == 0, served.stderr
    assert "dashboard login" not in served.stderr
    assert password not in served.stderr
    assert "with the password from CRONKEEPER_ADMIN_PASSWORD" in served.stderr


def test_no_web_serves_nothing_on_the_port_and_creates_no_user(cli: Cli) -> None:
    port = free_port()

    with (
        serving(cli, port, "--no-web", "--port", str(port), web=False) as served,
        pytest.raises(httpx2.ConnectError),
    ):
        httpx2.get(f"{served.url}/healthz", trust_env=False)

    assert served.returncode == 0, served.stderr
    assert "dashboard" not in served.stderr
    assert cli.json("users", "list") == []


def test_a_port_in_use_is_one_clear_line_and_exit_status_1_and_nothing_is_written(cli: Cli) -> None:
    (cli.cwd / "cronkeeper.toml").write_text('[[jobs]]\nid = "beat"\nevery = "1m"\ncommand = "true"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = cli("serve", "--port", str(port))

    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot serve the dashboard on http://127.0.0.1:{port}/: address already in use"
    )
    assert "Traceback" not in result.stderr
    assert "dashboard login" not in result.stderr, "a password shown when nobody can use it would be lost"
    # Checked before anything is written: no database made, no job of the file synced into it.
    assert not (cli.cwd / "x.db").exists()


def test_a_second_interrupt_cancels_the_running_jobs_while_the_dashboard_says_stopping(cli: Cli) -> None:
    seed(cli, {"id": "long", "every": "1h", "command": ["sleep", "60"]})
    port = free_port()
    with serving(cli, port, "--port", str(port)) as served:
        cli("jobs", "trigger", "long")
        wait_for(lambda: _statuses(cli) == ["running"], "the job to run")
        served.proc.send_signal(signal.SIGINT)  # the first: a graceful stop, waiting for the job
        wait_for(lambda: _health(served) == (503, "stopping"), "the dashboard to say it is stopping")
        assert served.proc.poll() is None
        served.proc.send_signal(signal.SIGINT)  # the second: stop at once
        assert served.proc.wait(timeout=15) == 0, served.stderr
    assert _statuses(cli) == ["cancelled"]
    assert "received SIGINT again; cancelling the running jobs now" in served.stderr


def _statuses(cli: Cli) -> list[str]:
    return [run["status"] for run in cli.json("runs", "list", "--job", "long")]


def _health(served: Served) -> tuple[int, str] | None:
    try:
        answer = httpx2.get(f"{served.url}/healthz", trust_env=False)
    except httpx2.TransportError:
        return None
    return answer.status_code, answer.json()["status"]


def test_the_demo_shows_an_alert_arriving_in_its_own_inbox(cli: Cli) -> None:
    port = free_port()
    password = "demo-password-1"
    with (
        serving(
            cli, port, "--demo", "--port", str(port), env={"CRONKEEPER_ADMIN_PASSWORD": password}
        ) as served,
        logged_in(served.url, "admin", password) as client,
    ):
        assert "Nothing yet" in client.get("/demo/inbox").text
        assert cli("jobs", "trigger", "demo-slow").returncode == 0  # times out after 5 s: an incident

        deadline = time.monotonic() + 30
        while "demo-slow: timed out" not in (page := client.get("/demo/inbox").text):
            assert time.monotonic() < deadline, page
            time.sleep(0.2)
        channels = client.get("/alerts").text
    assert "demo-inbox" in channels
    assert served.returncode == 0, served.stderr
