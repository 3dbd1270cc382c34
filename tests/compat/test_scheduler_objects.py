"""Several facade schedulers in one process, as seed 004's bot has them: four ``AsyncIOScheduler`` objects,
each in a class of its own, adding bound methods.  Every instance defaults to the same database, so each must
run its own objects' jobs and leave the others' alone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cronkeeper import FakeClock, RunEvent, RunStatus
from cronkeeper.compat.apscheduler import AsyncIOScheduler, BackgroundScheduler, BaseScheduler
from cronkeeper.compat.apscheduler.triggers import CronTrigger
from cronkeeper.settings import SchedulerSettings
from tests.compat.conftest import Factory
from tests.e2e.test_cli import wait_for

REPO = Path(__file__).resolve().parent.parent.parent

MIDNIGHT = datetime(2026, 3, 3, tzinfo=UTC)
# How long one minute of the bot's day may take to settle, in real time.
SETTLE_SECONDS = 60.0


class BotPart:
    """What the bot's four scheduler classes share: an own AsyncIOScheduler, a count of their own runs."""

    def __init__(self, make: Factory) -> None:
        self.scheduler: AsyncIOScheduler = make(AsyncIOScheduler)
        self.runs = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    async def work(self) -> None:
        assert asyncio.get_running_loop() is self.loop
        self.runs += 1

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown()


class TokenCleanupScheduler(BotPart):
    def __init__(self, make: Factory) -> None:
        super().__init__(make)
        self.scheduler.add_job(self.cleanup_expired_tokens, CronTrigger(hour="0,12", minute=0))

    async def cleanup_expired_tokens(self) -> None:
        await self.work()


class MessageDeleterScheduler(BotPart):
    def __init__(self, make: Factory, bot: object) -> None:
        super().__init__(make)
        self.bot = bot
        self.scheduler.add_job(self.delete_due_messages, "interval", minutes=1, id="message_deleter")

    async def delete_due_messages(self) -> None:
        await self.work()


class BroadcastDeleterScheduler(BotPart):
    def __init__(self, make: Factory, bot: object) -> None:
        super().__init__(make)
        self.bot = bot
        self.scheduler.add_job(self.delete_expired_broadcasts, "interval", hours=1)

    async def delete_expired_broadcasts(self) -> None:
        await self.work()


class TokenCountResetScheduler(BotPart):
    def __init__(self, make: Factory) -> None:
        super().__init__(make)
        self.scheduler.add_job(self.reset_counts, "cron", hour=0, minute=0, id="token_count_reset")

    async def reset_counts(self) -> None:
        await self.work()


class Pace:
    """Moves the fake clock minute by minute (a jump past a fire by more than its grace would miss it),
    waiting after each until every object has claimed what is due and every run has ended and been heard."""

    def __init__(self, parts: list[BotPart], clock: FakeClock) -> None:
        self.parts = parts
        self.clock = clock
        self.ended = Counter[str]()
        for part in parts:
            part.scheduler.core.add_listener(self._heard, ["succeeded"])

    def _heard(self, event: RunEvent) -> None:
        self.ended.update([event.job_id])

    def settled(self) -> bool:
        now = self.clock.now()
        cores = [part.scheduler.core for part in self.parts]
        if any((due := core.next_due_at()) is not None and due <= now for core in cores):
            return False
        if any(run.status.is_active for run in cores[0].runs(limit=10)):
            return False
        return self.ended.total() == sum(part.runs for part in self.parts)

    async def minutes(self, count: int) -> None:
        for _ in range(count):
            self.clock.advance(timedelta(minutes=1))
            # A deadline in real time, not a count of checks: on a loaded machine (CI beside other work) a
            # check that reads four databases takes longer, and ten thousand of them once fell short.
            deadline = time.monotonic() + SETTLE_SECONDS
            while not self.settled():
                if time.monotonic() > deadline:
                    raise AssertionError(f"not settled at {self.clock.now()}")
                await asyncio.sleep(0.001)


def test_the_bots_four_schedulers_each_run_their_own_jobs_for_half_a_day(
    make: Factory, clock: FakeClock
) -> None:
    """Half a day, from just before midnight: every trigger of the bot fires in it (the cleanup's two hours
    included), and each minute is paced through, so a day would only repeat it at twice the time."""
    clock.set(MIDNIGHT - timedelta(seconds=30))
    quiet = SchedulerSettings(workers=4, heartbeat_interval=timedelta(hours=1), lease=timedelta(hours=3))

    def made(cls: type[Any], /, **options: Any) -> Any:
        return make(cls, settings=quiet, **options)

    bot = object()
    parts: list[BotPart] = [
        TokenCleanupScheduler(made),
        MessageDeleterScheduler(made, bot),
        BroadcastDeleterScheduler(made, bot),
        TokenCountResetScheduler(made),
    ]
    pace = Pace(parts, clock)

    async def half_a_day() -> None:
        for part in parts:
            part.start()
        await pace.minutes(12 * 60 + 1)  # to just past noon, the cleanup's second hour
        for part in parts:
            part.stop()

    asyncio.run(half_a_day())
    assert [part.runs for part in parts] == [2, 721, 12, 1]
    assert sorted(pace.ended.values()) == [1, 2, 12, 721]  # as many runs recorded, each succeeded
    others = [status for status in RunStatus if status is not RunStatus.SUCCEEDED]
    assert parts[0].scheduler.core.runs(status=others) == []


class Cleaner:
    """One class, several objects, each with a scheduler of its own and no job id given."""

    def __init__(self, make: Factory) -> None:
        self.scheduler: BackgroundScheduler = make(BackgroundScheduler)
        self.ticks = 0
        self.scheduler.add_job(self.tick, "interval", minutes=1)

    def tick(self) -> None:
        self.ticks += 1


def test_objects_of_one_class_each_run_their_own_job(make: Factory, clock: FakeClock) -> None:
    cleaners = [Cleaner(make) for _ in range(4)]
    ids = [job.id for cleaner in cleaners for job in cleaner.scheduler.get_jobs()]
    assert len(set(ids)) == 4, ids
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        for cleaner in cleaners:
            cleaner.scheduler.core.run_pending()
    assert [cleaner.ticks for cleaner in cleaners] == [3, 3, 3, 3]
    runs = cleaners[0].scheduler.core.runs(limit=100)
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED}


# ---- the jobs of one start of the program ------------------------------------------------------------------


def enabled(scheduler: BaseScheduler) -> dict[str, bool]:
    return {job.id: job.enabled for job in scheduler.core.jobs()}


def test_a_job_the_program_no_longer_adds_is_disabled_at_its_next_start(make: Factory) -> None:
    first = make(BackgroundScheduler)
    first.add_job("tests.jobs:metrics", "interval", minutes=1, id="kept")
    first.add_job("tests.jobs:metrics", "interval", minutes=5, id="switched-off")
    gone = first.add_job(lambda: None, "interval", minutes=5)
    first.start()
    first.shutdown()
    second = make(BackgroundScheduler)  # the next start of the program, with a switch turned off
    second.add_job("tests.jobs:metrics", "interval", minutes=1, id="kept")
    assert enabled(second) == {"kept": True, "switched-off": True, gone.id: True}
    second.start()
    assert enabled(second) == {"kept": True, "switched-off": False, gone.id: False}
    assert second.core.get_job("switched-off").next_due_at is None
    second.add_job("tests.jobs:metrics", "interval", minutes=5, id="switched-off")  # on again
    assert enabled(second)["switched-off"] is True


def test_jobs_of_another_open_scheduler_object_are_not_retired(make: Factory) -> None:
    first = make(BackgroundScheduler)
    first.add_job("tests.jobs:metrics", "interval", minutes=1, id="first-only")
    first.add_job("tests.jobs:metrics", "interval", minutes=1, id="both")
    first.start()
    second = make(BackgroundScheduler)
    second.add_job("tests.jobs:metrics", "interval", minutes=1, id="both")
    second.start()
    assert enabled(second) == {"both": True, "first-only": True}


def test_with_a_persistent_job_store_configured_jobs_not_added_again_are_kept(
    make: Factory, db_url: str
) -> None:
    first = make(BackgroundScheduler)
    first.add_job("tests.jobs:metrics", "interval", minutes=1, id="kept")
    first.add_job("tests.jobs:metrics", "interval", minutes=1, id="stored")
    first.start()
    first.shutdown()
    with pytest.warns(UserWarning, match="jobstores are ignored"):
        second = make(BackgroundScheduler, jobstores={"default": {"type": "sqlalchemy", "url": db_url}})
    second.add_job("tests.jobs:metrics", "interval", minutes=1, id="kept")
    second.start()
    assert enabled(second) == {"kept": True, "stored": True}


def test_a_second_replica_does_not_disable_the_jobs_of_a_live_one(
    make: Factory,
    db_url: str,
    tmp_path: Path,
) -> None:
    """Two processes of one program on one database (two workers).  The first adds a job after start().
    When the second starts, it re-declares 'shared', sees the first's origin as "an earlier run" (it only
    knows objects of its own process) and disables the live process's job."""
    ready = tmp_path / "ready"
    script = textwrap.dedent(
        f"""
        import pathlib, time
        from cronkeeper.compat.apscheduler import BackgroundScheduler
        s = BackgroundScheduler(db={db_url!r})
        s.add_job("tests.jobs:metrics", "interval", hours=1, id="shared")
        s.start()
        s.add_job("tests.jobs:metrics", "interval", hours=1, id="report-42")  # added at run time
        pathlib.Path({str(ready)!r}).write_text("ok")
        time.sleep(60)
        """
    )
    first = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        wait_for(ready.exists, "the first process to declare its jobs", 30)
        second = make(BackgroundScheduler)
        second.add_job("tests.jobs:metrics", "interval", hours=1, id="shared")
        second.start()
        assert first.poll() is None  # the first process is alive, running its jobs
        assert enabled(second) == {"shared": True, "report-42": True}
    finally:
        first.kill()
        first.wait()
