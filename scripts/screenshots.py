"""Screenshots of the dashboard's main pages for the README (docs/screenshots/*.png).

    .venv/bin/python scripts/screenshots.py [OUT_DIR]

Installs the demo jobs on a scratch database with two hours of history written the way the engine writes
it, serves the dashboard with a running scheduler, and photographs it in Debian's headless Chromium.
"""

from __future__ import annotations

import random
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import insert

from cronkeeper import Scheduler
from cronkeeper.demo import DEMO_JOBS
from cronkeeper.models import Role
from cronkeeper.services.accounts import AccountService, Actor
from cronkeeper.store.schema import runs
from cronkeeper.testing import sql_engine
from cronkeeper.web import create_app

PASSWORD = "screenshot-password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PERIODS = {"demo-heartbeat": 15, "demo-report": 60, "demo-flaky": 60, "demo-slow": 120}


def history(scheduler: Scheduler, hours: int = 2) -> None:
    """Runs of the demo jobs over the last ``hours``, with the outcomes each job has by design."""
    rng = random.Random(3)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for job_id, period in PERIODS.items():
        for n in range(hours * 3600 // period, 0, -1):
            due = now - timedelta(seconds=n * period)
            status, seconds, output, error = _outcome(job_id, rng)
            started = timedelta(milliseconds=rng.randint(1, 9))
            rows.append(
                {
                    "job_id": job_id,
                    "scheduled_for": due,
                    "attempt": 0,
                    "trigger_source": "schedule",
                    "owner": "demo-node",
                    "status": status,
                    "due_at": due,
                    "queued_at": due,
                    "started_at": due + started,
                    "finished_at": due + started + timedelta(seconds=seconds),
                    "output": output,
                    "error": error,
                    "result": {"items_processed": 25, "items_succeeded": 24, "items_failed": 1}
                    if job_id == "demo-report"
                    else None,
                    "exit_code": (0 if status == "succeeded" else -15)
                    if job_id.endswith(("beat", "slow"))
                    else None,
                }
            )
    with sql_engine(scheduler).begin() as conn:
        conn.execute(insert(runs), rows)


def _outcome(job_id: str, rng: random.Random) -> tuple[str, float, str | None, str | None]:
    if job_id == "demo-slow":
        return "timed_out", 5.0 + rng.random() * 0.05, None, "timed out after 5s"
    if job_id == "demo-flaky" and rng.random() < 0.5:
        return "failed", 0.2 + rng.random() * 0.02, None, "RuntimeError: the upstream service did not answer"
    if job_id == "demo-heartbeat":
        return "succeeded", 0.002 + rng.random() * 0.003, "cronkeeper demo: still alive\n", None
    return "succeeded", 0.2 + rng.random() * 0.1, None, None


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")


def shoot(browser: Browser, url: str, out: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800}, timezone_id="UTC")
    log_in(page, url)
    page.screenshot(path=str(out / "jobs.png"), full_page=True)
    page.goto(f"{url}/jobs/demo-flaky")
    page.screenshot(path=str(out / "job.png"), full_page=True)
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url("**/runs/*")
    page.locator("#run-status").filter(has_text="succeeded").or_(
        page.locator("#run-status").filter(has_text="failed")
    ).wait_for(timeout=15_000)
    page.screenshot(path=str(out / "run.png"), full_page=True)
    page.goto(f"{url}/jobs/demo-report/edit")
    page.get_by_label("Schedule", exact=True).fill("*/5 8-18 * * 1-5")
    page.locator("#schedule-preview li").first.wait_for()
    page.screenshot(path=str(out / "edit.png"), full_page=True)
    page.goto(f"{url}/status")
    page.screenshot(path=str(out / "status.png"), full_page=True)
    page.goto(f"{url}/audit")
    page.screenshot(path=str(out / "audit.png"), full_page=True)
    page.goto(f"{url}/timeline?window=1h")
    page.screenshot(path=str(out / "timeline.png"), full_page=True)
    page.goto(f"{url}/new?copy=demo-report")
    page.screenshot(path=str(out / "new.png"), full_page=True)
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, timezone_id="UTC")
    log_in(phone, url)
    phone.screenshot(path=str(out / "phone.png"), full_page=True)
    dark = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme="dark", timezone_id="UTC")
    log_in(dark, url)
    dark.goto(f"{url}/jobs/demo-flaky")
    dark.screenshot(path=str(out / "dark.png"), full_page=True)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        scheduler = Scheduler(f"sqlite:///{tmp}/demo.db")
        scheduler.service.sync_jobs(DEMO_JOBS, origin="demo", by="demo")
        history(scheduler)
        app = create_app(scheduler)
        accounts: AccountService = app.state.cronkeeper.accounts
        accounts.add_user("admin", PASSWORD, Role.ADMIN, actor=Actor("cronkeeper", "first start"))
        scheduler.service.pause("demo-slow", by="admin", via="127.0.0.1")
        scheduler.start()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                shoot(browser, f"http://127.0.0.1:{port}", out)
                browser.close()
        finally:
            server.should_exit = True
            thread.join()
            scheduler.stop(wait=True, timeout=10)
            scheduler.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
