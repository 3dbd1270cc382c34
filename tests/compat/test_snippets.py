"""APScheduler 3 code as people write it (from the seeds and APScheduler's own documentation), with only the
import changed, run on a fake clock: the jobs fire when APScheduler would fire them and listeners hear what
APScheduler would tell them.

``make(Cls, **options)`` stands for ``Cls(**options)`` plus the test's database and fake clock.
"""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from cronkeeper import FakeClock
from cronkeeper.compat.apscheduler import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    AsyncIOScheduler,
    BackgroundScheduler,
    BlockingScheduler,
    CronTrigger,
    IntervalTrigger,
    Job,
    JobExecutionEvent,
    SchedulerEvent,
)
from tests.compat.conftest import Factory
from tests.compat.helpers import Settler, guard

log = logging.getLogger("myapp")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_fastapi_app_registers_cron_tasks_with_defaults_and_listeners(
    make: Factory, clock: FakeClock
) -> None:
    ran: list[tuple[str, datetime]] = []
    outcomes: list[str] = []

    def task(name: str) -> dict[str, int]:
        ran.append((name, clock.now()))
        return {"items_processed": 1}

    # --- the application's scheduler module, as written for APScheduler ---
    job_defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 900}
    scheduler = make(BackgroundScheduler, job_defaults=job_defaults, timezone="UTC")

    def job_listener(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            outcomes.append(f"missed {event.job_id}")
        elif event.exception:
            outcomes.append(f"error {event.job_id}: {event.exception}")
        else:
            outcomes.append(f"executed {event.job_id}: {event.retval}")

    scheduler.add_listener(job_listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.add_job(
        task,
        trigger="cron",
        hour=2,
        minute=0,
        args=["scrape"],
        id="mam_scraping",
        name="Daily MAM Scraping",
        replace_existing=True,
    )
    scheduler.add_job(
        task,
        trigger="cron",
        day_of_week="sun",
        hour=3,
        minute=0,
        args=["top10"],
        id="top10_discovery",
        name="Weekly Top-10 Discovery",
        replace_existing=True,
    )
    scheduler.add_job(
        task,
        trigger="cron",
        day=1,
        hour=4,
        minute=0,
        args=["full"],
        id="metadata_full",
        name="Monthly Full Metadata Refresh",
        replace_existing=True,
    )
    scheduler.add_job(
        task,
        trigger="cron",
        day_of_week="sun",
        hour=4,
        minute=30,
        args=["new"],
        id="metadata_new",
        name="Weekly New Books Metadata Refresh",
        replace_existing=True,
    )
    settler = Settler(scheduler, clock)
    scheduler.start()

    listing = [f"{job.id}: {job.name} (next run: {job.next_run_time})" for job in scheduler.get_jobs()]
    assert listing[0] == "mam_scraping: Daily MAM Scraping (next run: 2026-03-03 02:00:00+00:00)"
    assert listing[-1] == "metadata_full: Monthly Full Metadata Refresh (next run: 2026-04-01 04:00:00+00:00)"

    settler.advance(timedelta(days=7))  # Monday 2 March 08:00 to Monday 9 March 08:00
    assert [when for name, when in ran if name == "scrape"] == [
        at(f"2026-03-0{d}T02:00:00+00:00") for d in range(3, 10)
    ]
    assert [(name, when) for name, when in ran if name != "scrape"] == [
        ("top10", at("2026-03-08T03:00:00+00:00")),
        ("new", at("2026-03-08T04:30:00+00:00")),
    ]
    assert outcomes[0] == "executed mam_scraping: {'items_processed': 1}"

    scheduler.pause_job("mam_scraping")
    settler.advance(timedelta(days=1))
    assert len([name for name, _ in ran if name == "scrape"]) == 7
    scheduler.resume_job("mam_scraping")
    scheduler.remove_job("metadata_new")
    assert [job.id for job in scheduler.get_jobs()] == ["mam_scraping", "top10_discovery", "metadata_full"]
    scheduler.shutdown(wait=True)
    assert not scheduler.running


def test_safe_wrapper_around_a_background_scheduler(make: Factory, clock: FakeClock) -> None:
    notified: list[str] = []

    def send_notification(user_id: int, message: str) -> None:
        notified.append(f"{user_id}: {message}")

    class BackgroundTasks:
        """The seed's wrapper: safe_* methods that return an error code instead of raising."""

        def __init__(self, success: int = 0, error: int = 84) -> None:
            self.success, self.error = success, error
            self.scheduler = make(BackgroundScheduler)

        def safe_add_task(
            self, func: Any, args: Any = None, kwargs: Any = None, trigger: str = "interval", seconds: int = 5
        ) -> int | Job:
            try:
                job: Job = self.scheduler.add_job(
                    func, trigger=trigger, seconds=seconds, args=args, kwargs=kwargs
                )
                return job
            except ValueError:
                return self.error

        def safe_start(self) -> int:
            self.scheduler.start()
            return self.success

        def safe_pause(self) -> int:
            self.scheduler.pause()
            return self.success

        def safe_resume(self) -> int:
            self.scheduler.resume()
            return self.success

        def safe_stop(self, wait: bool = True) -> int:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=wait)
            return self.success

    background = BackgroundTasks()
    job = background.safe_add_task(send_notification, args=(123,), kwargs={"message": "Hello!"}, seconds=300)
    assert isinstance(job, Job)
    assert background.safe_add_task(send_notification, args=(object(),)) == 84  # not JSON: refused, no crash
    settler = Settler(background.scheduler, clock)
    assert background.safe_start() == 0
    settler.advance(timedelta(minutes=10))
    assert notified == ["123: Hello!"] * 2
    background.safe_pause()
    settler.advance(timedelta(minutes=10))
    assert len(notified) == 2
    background.safe_resume()
    settler.advance(timedelta(minutes=5))
    assert len(notified) == 4  # one catch-up for the fires missed while paused, then the next fire
    assert background.safe_stop() == 0


def test_asyncio_bot_with_trigger_objects(make: Factory, clock: FakeClock) -> None:
    cleaned: list[datetime] = []
    deleted: list[datetime] = []

    async def cleanup_expired_tokens() -> None:
        await asyncio.sleep(0)
        cleaned.append(clock.now())

    async def delete_due_messages() -> int:
        deleted.append(clock.now())
        return 0

    async def main() -> None:
        scheduler = make(AsyncIOScheduler)
        scheduler.add_job(cleanup_expired_tokens, CronTrigger(hour="0,12", minute=0), id="token_cleanup")
        scheduler.add_job(delete_due_messages, IntervalTrigger(minutes=15), id="message_deleter")
        settler = Settler(scheduler, clock)
        scheduler.start()
        try:
            await settler.advance_async(timedelta(hours=16))
        finally:
            scheduler.shutdown()

    asyncio.run(main())
    assert cleaned == [at("2026-03-02T12:00:00+00:00"), at("2026-03-03T00:00:00+00:00")]
    assert len(deleted) == 16 * 4


def test_decorated_jobs_and_a_listener_that_reports(make: Factory, clock: FakeClock) -> None:
    scheduler = make(BackgroundScheduler)
    report = io.StringIO()

    @scheduler.scheduled_job("interval", id="my_job_id", seconds=20)
    def job_function() -> str:
        return "Hello World"

    @scheduler.scheduled_job("cron", day_of_week="mon-fri", hour=17, minute=30)
    def weekday_evening() -> None:
        raise RuntimeError("disk full")

    def my_listener(event: JobExecutionEvent) -> None:
        if event.exception:
            report.write(f"The job crashed :( {event.job_id}\n")
        else:
            report.write(f"The job worked :) {event.retval}\n")

    scheduler.add_listener(my_listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    settler = Settler(scheduler, clock)
    scheduler.start()
    settler.advance(timedelta(minutes=1))
    assert report.getvalue() == "The job worked :) Hello World\n" * 3
    scheduler.pause_job("my_job_id")
    settler.advance(timedelta(hours=10))
    crashed = [line for line in report.getvalue().splitlines() if "crashed" in line]
    evening = next(job for job in scheduler.get_jobs() if job.name.endswith("weekday_evening"))
    assert crashed == [f"The job crashed :( {evening.id}"]
    scheduler.shutdown()


def test_modify_and_reschedule_as_in_apschedulers_user_guide(make: Factory, clock: FakeClock) -> None:
    scheduler = make(BackgroundScheduler)
    fired: list[datetime] = []

    def myfunc() -> None:
        fired.append(clock.now())

    job = scheduler.add_job(myfunc, "interval", minutes=2, id="my_job_id")
    job.modify(max_instances=6, name="Alternate name")
    assert (scheduler.get_job("my_job_id").max_instances, job.name) == (6, "Alternate name")  # type: ignore[union-attr]
    scheduler.reschedule_job("my_job_id", trigger="cron", minute="*/5")
    listing = io.StringIO()
    scheduler.print_jobs(out=listing)
    assert listing.getvalue() == (
        "Jobstore default:\n"
        "    Alternate name (trigger: cron[minute='*/5'], next run at: 2026-03-02 08:05:00 UTC)\n"
    )
    settler = Settler(scheduler, clock)
    scheduler.start()
    settler.advance(timedelta(minutes=16))
    assert fired == [at(f"2026-03-02T08:{m:02}:00+00:00") for m in (5, 10, 15)]
    scheduler.shutdown()


def test_one_off_date_job_with_arguments(make: Factory, clock: FakeClock) -> None:
    scheduler = make(BackgroundScheduler)
    texts: list[str] = []

    def my_job(text: str) -> None:
        texts.append(text)

    scheduler.add_job(my_job, "date", run_date=datetime(2026, 3, 5, 16, 30, 5), args=["text"])  # noqa: DTZ001
    scheduler.add_job(my_job, "date", run_date="2026-03-04 09:00:00", args=["earlier"])
    settler = Settler(scheduler, clock)
    scheduler.start()
    settler.advance(timedelta(days=5))
    assert texts == ["earlier", "text"]
    assert scheduler.get_jobs() == []
    scheduler.shutdown()


def test_blocking_scheduler_script_with_ctrl_c_handling(make: Factory, clock: FakeClock) -> None:
    ticks: list[datetime] = []
    scheduler = make(BlockingScheduler)

    def tick() -> None:
        ticks.append(clock.now())

    def enough(event: SchedulerEvent) -> None:
        if len(ticks) >= 3:
            scheduler.shutdown(wait=False)
        else:
            clock.advance(timedelta(seconds=3))  # the next fire is due: time goes on

    scheduler.add_job(tick, "interval", seconds=3)
    scheduler.add_listener(enough, EVENT_JOB_EXECUTED)
    clock.advance(timedelta(seconds=3))
    with guard(scheduler):
        try:  # noqa: SIM105 - as APScheduler's examples write it
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass
    assert ticks == [
        at("2026-03-02T08:00:03+00:00"),
        at("2026-03-02T08:00:06+00:00"),
        at("2026-03-02T08:00:09+00:00"),
    ]


def test_configuration_in_the_three_ways_of_apschedulers_docs(make: Factory, db_url: str) -> None:
    # Method 2: a global configuration dictionary with the "apscheduler." prefix.
    with pytest.warns(UserWarning, match="jobstores are ignored"):
        scheduler = make(
            BackgroundScheduler,
            gconfig={
                "apscheduler.jobstores.default": {"type": "sqlalchemy", "url": db_url},
                "apscheduler.executors.default": {
                    "class": "apscheduler.executors.pool:ThreadPoolExecutor",
                    "max_workers": "20",
                },
                "apscheduler.job_defaults.coalesce": "false",
                "apscheduler.job_defaults.max_instances": "3",
                "apscheduler.timezone": "UTC",
            },
        )
    assert scheduler.core.settings.workers == 20
    # Method 3: keyword arguments with plugin objects.
    from cronkeeper.compat.apscheduler import SQLAlchemyJobStore, ThreadPoolExecutor

    with pytest.warns(UserWarning, match="jobstores are ignored"):
        scheduler = make(
            BackgroundScheduler,
            jobstores={"default": SQLAlchemyJobStore(url=db_url)},
            executors={"default": ThreadPoolExecutor(20)},
            job_defaults={"coalesce": False, "max_instances": 3},
            timezone="UTC",
        )
    job = scheduler.add_job(print, "interval", minutes=1, args=["hi"], id="printer")
    assert (job.coalesce, job.max_instances) == (False, 3)
