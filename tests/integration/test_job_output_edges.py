"""Edges of keeping a Python job's log records as its output (the application's own logging untouched,
undecodable text, timed-out jobs, logging reconfigured) and of warning about a function that does not
import here (stdout kept clean, page views importing nothing, isolated jobs left to their child)."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cronkeeper import FakeClock, RunStatus, Scheduler
from cronkeeper.models import Role
from cronkeeper.services.accounts import Actor
from cronkeeper.web import WebSettings, create_app
from tests.conftest import SchedulerFactory
from tests.web.conftest import FAST_HASHER, VIEWER_PASSWORD, login

CRONKEEPER = Path(sys.executable).with_name("cronkeeper")
log = logging.getLogger("tests.attack")


@pytest.fixture(autouse=True)
def warnings_reach_handlers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)


def _run_once(scheduler: Scheduler, clock: FakeClock, job_id: str):  # type: ignore[no-untyped-def]
    clock.advance(timedelta(minutes=1))
    scheduler.run_pending()
    (run,) = scheduler.runs(job_id=job_id)
    return run


# ---- log records as run output ---------------------------------------------------------------------


def test_starting_a_scheduler_silences_an_unconfigured_apps_errors_and_basicconfig(tmp_path: Path) -> None:
    """Keeping jobs' records must not touch the application's logging: Python's last resort (stderr for
    WARNING and up) still fires, and a later logging.basicConfig() still configures."""
    script = textwrap.dedent(
        f"""
        import logging, sys
        from cronkeeper import Scheduler
        s = Scheduler("sqlite:///{tmp_path / "x.db"}")
        s.start()
        logging.getLogger("app").error("unconfigured error")
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="BASIC %(message)s")
        logging.getLogger("app").info("configured info")
        s.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "unconfigured error" in done.stderr  # as without a scheduler (logging.lastResort)
    assert "BASIC configured info" in done.stdout  # basicConfig must still configure logging


def test_a_record_with_undecodable_bytes_is_kept_not_dropped(
    make_scheduler: SchedulerFactory,
    clock: FakeClock,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file name read with surrogateescape (os.listdir on a non-UTF-8 name) is kept, the bytes replaced,
    not dropped with a '--- Logging error ---' on stderr."""
    scheduler = make_scheduler()
    # The record stays out of pytest's own log capture: a test report holding a lone surrogate cannot be
    # sent from an xdist worker.
    monkeypatch.setattr(log, "propagate", False)
    monkeypatch.setattr(log, "handlers", [logging.NullHandler()])

    def odd_name() -> None:
        log.warning("cleaning %s", b"caf\xe9.csv".decode("utf-8", "surrogateescape"))

    scheduler.register(odd_name)
    scheduler.add_job(odd_name, id="odd", every="1m")
    run = _run_once(scheduler, clock, "odd")
    assert "--- Logging error ---" not in capfd.readouterr().err
    assert run.output is not None and "cleaning caf" in run.output  # like a command's invalid UTF-8: replaced


def test_a_timed_out_thread_job_keeps_the_output_it_logged(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """A thread job that times out keeps its records, as a coroutine does: they say where it hung."""
    scheduler = make_scheduler()
    release = threading.Event()

    def hangs() -> None:
        log.warning("connecting to the slow host")
        release.wait(10)

    scheduler.register(hangs)
    scheduler.add_job(hangs, id="hangs", every="1m", timeout="1s")
    try:
        run = _run_once(scheduler, clock, "hangs")
    finally:
        release.set()
    assert run.status is RunStatus.TIMED_OUT
    assert run.output is not None and "connecting to the slow host" in run.output


def test_reconfiguring_logging_after_the_scheduler_started_keeps_capturing(
    make_scheduler: SchedulerFactory, clock: FakeClock
) -> None:
    """An app that applies its logging config (dictConfig with a root section, basicConfig(force=True))
    after the first run still gets its later runs' records kept."""
    scheduler = make_scheduler()

    def chatty() -> None:
        log.warning("did the thing")

    scheduler.register(chatty)
    scheduler.add_job(chatty, id="chatty", every="1m")
    first = _run_once(scheduler, clock, "chatty")
    assert first.output is not None and "did the thing" in first.output
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"null": {"class": "logging.NullHandler"}},
                "root": {"level": "WARNING", "handlers": ["null"]},
            }
        )
        clock.advance(timedelta(minutes=1))
        scheduler.run_pending()
    finally:
        root.handlers[:] = saved
    latest = scheduler.runs(job_id="chatty")[0]
    assert latest.id != first.id
    assert latest.output is not None and "did the thing" in latest.output


# ---- warning about a function that does not import here --------------------------------------------


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    where = tmp_path / "mods"
    where.mkdir()
    monkeypatch.syspath_prepend(str(where))
    before = set(sys.modules)
    yield where
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write_module(where: Path, source: str) -> str:
    name = f"attack_{uuid.uuid4().hex[:8]}"
    (where / f"{name}.py").write_text(textwrap.dedent(source))
    return name


@pytest.fixture
def viewer(scheduler: Scheduler) -> Iterator[TestClient]:
    app = create_app(scheduler, WebSettings())
    accounts = app.state.cronkeeper.accounts
    accounts.hasher = FAST_HASHER
    accounts.add_user("viewer", VIEWER_PASSWORD, Role.VIEWER, actor=Actor("test-setup"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield login(client, "viewer", VIEWER_PASSWORD)


def test_cli_jobs_add_json_stays_one_json_document_when_the_module_prints(
    tmp_path: Path, module_dir: Path
) -> None:
    """`jobs add --json` checks the module after printing the job: what the module prints at import goes
    to stderr, and stdout stays one JSON document."""
    name = write_module(module_dir, 'print("loading plugins...")\ndef run():\n    return 1\n')
    env = {**os.environ, "CRONKEEPER_DB": f"sqlite:///{tmp_path / 'cli.db'}", "PYTHONPATH": str(module_dir)}
    added = subprocess.run(
        [str(CRONKEEPER), "jobs", "add", "j", "--every", "1h", "--call", f"{name}:run", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["id"] == "j"


def test_viewing_a_job_page_does_not_run_its_modules_code_again_and_again(
    scheduler: Scheduler, viewer: TestClient, module_dir: Path
) -> None:
    """A viewer's GET imports nothing: a module whose import fails is not kept in sys.modules, so importing
    on each view would run its top-level code (a side effect, a slow connect) each time."""
    counter = module_dir / "count"
    name = write_module(
        module_dir,
        f"""
        with open({str(counter)!r}, "a") as f:
            f.write("x")
        raise RuntimeError("settings missing")
        """,
    )
    scheduler.add_job(f"{name}:run", id="sidefx", every="1h")
    for _ in range(3):
        assert viewer.get("/jobs/sidefx").status_code == 200
    assert not counter.exists()  # the page only shows what a save or a run found


def test_viewing_a_job_page_is_not_held_up_by_a_slow_import(
    scheduler: Scheduler, viewer: TestClient, module_dir: Path
) -> None:
    name = write_module(module_dir, "import time\ntime.sleep(2)\ndef run():\n    return 1\n")
    scheduler.add_job(f"{name}:run", id="slow", every="1h")
    started = time.monotonic()
    assert viewer.get("/jobs/slow").status_code == 200
    assert time.monotonic() - started < 1.0  # importing there would hold the page (and its thread)


def test_an_isolated_jobs_module_is_not_imported_into_this_process(
    scheduler: Scheduler, viewer: TestClient, module_dir: Path
) -> None:
    """isolate=true runs the function in a child; nothing here imports it, the warning check included."""
    name = write_module(module_dir, "HEAVY = bytearray(10)\ndef run():\n    return 1\n")
    scheduler.add_job(f"{name}:run", id="iso", every="1h", isolate=True)
    assert name not in sys.modules
    assert viewer.get("/jobs/iso").status_code == 200
    assert name not in sys.modules
