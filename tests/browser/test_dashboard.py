"""The dashboard in a real headless Chromium, against a real running cronkeeper."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from cronkeeper.models import RunStatus
from tests.browser.conftest import Site, log_in
from tests.sinks import wait_until
from tests.web.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD

# Screenshots of the main pages, for the README: CRONKEEPER_SCREENSHOTS=docs/screenshots scripts/test.sh ...
SCREENSHOTS = os.environ.get("CRONKEEPER_SCREENSHOTS")


def _shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def test_log_in_and_see_the_jobs(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    log_in(page, site, "admin", ADMIN_PASSWORD)
    expect(page.get_by_role("link", name="Nightly report")).to_be_visible()
    expect(page.get_by_role("link", name="cleanup")).to_be_visible()
    expect(page.get_by_text("At 03:00")).to_be_visible()
    _shot(page, "jobs")


def test_trigger_a_run_and_watch_it_finish(page: Page, site: Site) -> None:
    log_in(page, site, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Nightly report").click()
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    status = page.locator("#run-status")
    expect(status).to_have_text(re.compile("queued|running"))
    expect(page.locator("#run-output")).to_contain_text("building report")  # live, while it runs
    expect(status).to_have_text("succeeded", timeout=15_000)
    expect(page.get_by_text("42 rows")).to_be_visible()
    _shot(page, "run")
    page.get_by_role("link", name="nightly-report").first.click()
    expect(page.locator("#history")).to_be_visible()
    _shot(page, "job")


def test_edit_a_schedule_with_the_preview(page: Page, site: Site) -> None:
    log_in(page, site, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/jobs/nightly-report/edit")
    schedule = page.get_by_label("Schedule", exact=True)
    schedule.fill("0 3 * *")
    expect(page.locator("#schedule-preview")).to_contain_text("cron")
    expect(page.locator("#schedule-preview")).to_contain_text("fields")
    schedule.fill("30 6 * * 1-5")
    expect(page.locator("#schedule-preview")).to_contain_text("At 06:30")
    expect(page.locator("#schedule-preview li")).to_have_count(5)
    _shot(page, "edit")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/jobs/nightly-report$"))
    expect(page.get_by_text("30 6 * * 1-5").first).to_be_visible()
    assert site.scheduler.get_job("nightly-report").spec.trigger.describe().startswith("At 06:30")


def test_pause_and_resume(page: Page, site: Site) -> None:
    log_in(page, site, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/jobs/cleanup")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h1 .status")).to_have_text("paused")
    assert site.scheduler.get_job("cleanup").paused
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("h1 .status")).to_have_text("active")
    assert not site.scheduler.get_job("cleanup").paused
    page.goto(f"{site.url}/audit")
    expect(page.get_by_role("cell", name="pause", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="resume", exact=True)).to_be_visible()
    _shot(page, "audit")


def test_a_viewer_sees_no_admin_actions_and_is_refused_them(page: Page, site: Site) -> None:
    log_in(page, site, "viewer", VIEWER_PASSWORD)
    page.goto(f"{site.url}/jobs/cleanup")
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    # A hand-made POST, as a page with a forged button would send it, is refused by the server.
    status = page.evaluate(
        """async (url) => {
            const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"];
            const body = new URLSearchParams({csrf_token: token});
            const response = await fetch(url, {method: "POST", body});
            return response.status;
        }""",
        f"{site.url}/jobs/cleanup/pause",
    )
    assert status == 403
    assert not site.scheduler.get_job("cleanup").paused


def test_live_status_page(page: Page, site: Site) -> None:
    log_in(page, site, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/status")
    expect(page.get_by_role("heading", name="Nodes")).to_be_visible()
    expect(page.locator("body")).to_contain_text(site.scheduler.loop.owner if site.scheduler.loop else "")
    _shot(page, "status")


def test_a_running_runs_time_counts_up_and_its_neighbours_are_linked(page: Page, site: Site) -> None:
    site.scheduler.service.add_job(
        {
            "id": "slow",
            "cron": "0 3 * * *",
            "command": ["sh", "-c", "sleep 3; kill -TERM $$"],
            "max_instances": 2,
        },
        by="test-setup",
    )
    earlier, run_id = site.scheduler.trigger("slow"), site.scheduler.trigger("slow")
    wait_until(lambda: site.scheduler.get_run(run_id).status is RunStatus.RUNNING)
    log_in(page, site, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/runs/{run_id}")
    # Counted by the page itself, second by second, from the run's start.
    expect(page.locator("#run-elapsed")).to_have_text(re.compile(r"^[12]\.\d s$"), timeout=5_000)
    expect(page.locator("#run-status")).to_have_text("failed", timeout=15_000)
    expect(page.get_by_text("-15 (SIGTERM)")).to_be_visible()
    page.get_by_role("link", name=re.compile("previous run of slow")).click()
    expect(page).to_have_url(re.compile(rf"/runs/{earlier}$"))


def test_create_a_command_job_from_the_form_and_see_its_first_run(page: Page, site: Site) -> None:
    log_in(page, site, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="New job").click()
    page.get_by_label("Id", exact=True).fill("hello")
    page.get_by_label("Schedule", exact=True).fill("*/2 * * * * *")
    page.get_by_label("cron with a seconds field").check()
    expect(page.locator("#schedule-preview")).to_contain_text("Every second second")
    page.get_by_label("Command (kind command)").fill("echo\nhello from the form")
    _shot(page, "new-job")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/jobs/hello$"))
    wait_until(lambda: any(not run.status.is_active for run in site.scheduler.runs(job_id="hello")))
    page.reload()
    page.locator("#history").scroll_into_view_if_needed()
    page.locator("table.runs a").first.click()
    expect(page.locator("#run-output")).to_have_text("hello from the form\n")


def test_the_timeline_shows_a_failed_run_in_red_just_before_now(page: Page, site: Site) -> None:
    site.scheduler.service.add_job(
        {"id": "breaks", "cron": "0 3 * * *", "command": ["false"]}, by="test-setup"
    )
    run_id = site.scheduler.trigger("breaks")
    wait_until(lambda: site.scheduler.get_run(run_id).status is RunStatus.FAILED)
    log_in(page, site, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Timeline").click()
    bar = page.locator("#timeline rect.bar-failed")
    expect(bar).to_have_count(1)
    fill = bar.evaluate("element => getComputedStyle(element).fill")
    assert fill == "rgb(179, 38, 30)", fill  # --fail
    now = page.locator("#timeline line.now").bounding_box()
    box = bar.bounding_box()
    assert now is not None and box is not None
    assert -2 <= now["x"] - box["x"] < 10  # it ran a moment ago, on a one-hour axis (a line has a width)
    _shot(page, "timeline")
    bar.click()
    expect(page).to_have_url(re.compile(rf"/runs/{run_id}$"))


def test_times_follow_the_browsers_zone_and_the_switch(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Asia/Kolkata")
    page = context.new_page()
    try:
        log_in(page, site, "admin", ADMIN_PASSWORD)
        page.get_by_role("link", name="Nightly report").click()
        # 03:00 in Paris, read in Kolkata (+05:30): the page was redrawn in the browser's zone.
        next_run = page.get_by_text(re.compile(r"^Next run:"))
        expect(next_run).to_contain_text("+05:30")
        expect(next_run).to_contain_text("(03:00 Europe/Paris)")
        expect(page.get_by_label("Times in")).to_contain_text(re.compile("Asia/(Kolkata|Calcutta)"))
        page.get_by_label("Times in").select_option("UTC")
        expect(next_run).to_contain_text(" UTC")
        expect(next_run).not_to_contain_text("+05:30")
        page.get_by_label("Times in").select_option("job")
        expect(next_run).to_contain_text("03:00:00 +0")  # Paris: +01:00 or +02:00
    finally:
        context.close()


PAGES = [
    "/",
    "/jobs/nightly-report",
    "/runs",
    "/timeline",
    "/upcoming",
    "/status",
    "/alerts",
    "/audit",
    "/new",
]


def test_every_page_fits_a_phone_with_no_sideways_scroll(browser: Browser, site: Site) -> None:
    run_id = site.scheduler.trigger("nightly-report")
    wait_until(lambda: not site.scheduler.get_run(run_id).status.is_active)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        log_in(page, site, "admin", ADMIN_PASSWORD)
        for path in [*PAGES, f"/runs/{run_id}", "/jobs/nightly-report/edit"]:
            page.goto(f"{site.url}{path}")
            wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 0, f"{path} scrolls sideways by {wide} px"
            header = page.locator("header.top").bounding_box()
            main = page.locator("main").bounding_box()
            assert header is not None and main is not None and header["y"] + header["height"] <= main["y"] + 1
        page.goto(f"{site.url}/")
        _shot(page, "phone")
    finally:
        context.close()


def test_dark_mode_follows_the_system_and_the_switch_is_remembered(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    page = context.new_page()
    background = "getComputedStyle(document.body).backgroundColor"
    try:
        log_in(page, site, "admin", ADMIN_PASSWORD)
        assert page.evaluate(background) == "rgb(16, 22, 29)"  # the system asks for dark
        _shot(page, "dark")
        switch = page.locator("#theme")
        expect(switch).to_have_text("Theme: system")
        switch.click()  # dark
        switch.click()  # light
        expect(switch).to_have_text("Theme: light")
        assert page.evaluate(background) == "rgb(247, 248, 250)"
        page.reload()
        assert page.evaluate(background) == "rgb(247, 248, 250)"  # remembered
        expect(page.locator("#theme")).to_have_text("Theme: light")
    finally:
        context.close()


def serious_violations(page: Page) -> list[str]:
    """What axe-core finds serious or critical on the page as it is."""
    found = Axe().run(page).response["violations"]
    return [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']][:3]}"
        for violation in found
        if violation["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_has_a_serious_accessibility_violation(browser: Browser, site: Site, scheme: str) -> None:
    run_id = site.scheduler.trigger("nightly-report")
    wait_until(lambda: not site.scheduler.get_run(run_id).status.is_active)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)  # type: ignore[arg-type]
    page = context.new_page()
    try:
        page.goto(f"{site.url}/login")
        problems = {"/login": serious_violations(page)}
        log_in(page, site, "admin", ADMIN_PASSWORD)
        for path in [*PAGES, f"/runs/{run_id}", "/jobs/nightly-report/edit", "/jobs/nightly-report/delete"]:
            page.goto(f"{site.url}{path}")
            problems[path] = serious_violations(page)
        assert {path: found for path, found in problems.items() if found} == {}
    finally:
        context.close()


def test_a_job_is_run_by_keyboard_alone(page: Page, site: Site) -> None:
    log_in(page, site, "admin", ADMIN_PASSWORD)
    page.goto(f"{site.url}/jobs/nightly-report")
    for _ in range(40):  # tab until the button has the focus, as a keyboard user would
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Run now":
            break
    else:
        pytest.fail("Run now cannot be reached with Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
