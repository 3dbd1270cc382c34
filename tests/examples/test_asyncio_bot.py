"""examples/asyncio_bot: a day of the bot's jobs on a fake clock, run as coroutines on the bot's own loop."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from examples.asyncio_bot.app import Bot

from cronkeeper import AsyncScheduler, EventKind, FakeClock, Run, RunEvent, RunStatus, SchedulerSettings

START = datetime(2026, 3, 2, tzinfo=UTC)  # midnight
# A day of fake time passes in a few real seconds: a heartbeat every 5 fake seconds would add database writes
# to every simulated minute and nearly double the time this test takes.
FAST_DAY = SchedulerSettings(heartbeat_interval=timedelta(hours=1), lease=timedelta(hours=3))


async def until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Let the loop run (the jobs need it) until ``condition()`` holds."""
    for _ in range(int(seconds / 0.001)):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"still waiting for {what} after {seconds}s")


def history(scheduler: AsyncScheduler) -> list[Run]:
    """Every run, newest first, page by page."""
    runs = scheduler.runs(limit=1000)
    while page := scheduler.runs(limit=1000, before_id=runs[-1].id):
        runs += page
    return runs


async def a_day_of_the_bot(tmp_path: Path) -> None:
    clock = FakeClock(START)
    bot = Bot(AsyncScheduler(f"sqlite:///{tmp_path / 'bot.db'}", clock=clock, settings=FAST_DAY))
    bot.self_destructing[7] = START + timedelta(hours=10)
    bot.broadcasts[8] = START + timedelta(hours=5, minutes=30)
    bot.tokens.update({"old": START + timedelta(hours=3), "fresh": START + timedelta(days=2)})
    bot.quota_used[1] = 4
    # Runs recorded so far, per job (listeners hear of a run once it is written down).
    recorded: Counter[str] = Counter()

    def note(event: RunEvent) -> None:
        if event.kind is not EventKind.STARTED:
            recorded[event.job_id] += 1

    async def recorded_runs(job_id: str, count: int) -> None:
        await until(lambda: recorded[job_id] >= count, f"run {count} of {job_id}")

    bot.scheduler.add_listener(note)
    running = asyncio.create_task(bot.run())
    await until(lambda: bot.scheduler.running, "the bot to start")
    assert bot.loop is asyncio.get_running_loop()

    # Minute by minute: a jump past a fire by more than its misfire grace (60 s) would be a missed fire.
    # The every-minute job sets the pace: once its run is recorded, the minute is over.
    for minute in range(1, 24 * 60 + 1):
        clock.advance(timedelta(minutes=1))
        await recorded_runs("delete-messages", minute)
    expected = {"delete-messages": 1440, "expire-broadcasts": 24, "clean-tokens": 2, "reset-quotas": 1}
    await until(lambda: recorded == expected, "the jobs of the last minute")

    runs = history(bot.scheduler)
    assert Counter(run.job_id for run in runs) == expected
    # Each job checks that it runs on the bot's loop, and fails if not: every run succeeded.
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED}
    clean_tokens = sorted(bot.scheduler.runs(job_id="clean-tokens"), key=lambda run: run.scheduled_for)
    assert [run.scheduled_for.hour for run in clean_tokens] == [12, 0]
    assert [run.result for run in clean_tokens] == [{"removed": 1}, {"removed": 0}]
    assert set(bot.tokens) == {"fresh"}
    assert bot.client.deleted == [8, 7]  # the broadcast at 06:00, the message at 10:00
    deleted_at = [run.scheduled_for for run in runs if run.result == {"deleted": 1}]
    assert deleted_at == [START + timedelta(hours=10)]
    assert bot.scheduler.runs(job_id="reset-quotas")[0].result == {"users": 1}

    bot.stop()
    await running
    assert not bot.scheduler.running


def test_a_day_of_jobs_runs_on_the_bots_loop(tmp_path: Path) -> None:
    asyncio.run(a_day_of_the_bot(tmp_path))


async def a_job_away_from_the_bots_loop(tmp_path: Path) -> None:
    clock = FakeClock(START)
    bot = Bot(AsyncScheduler(f"sqlite:///{tmp_path / 'bot.db'}", clock=clock))
    bot.loop = asyncio.get_running_loop()
    bot.schedule_jobs()
    clock.advance(timedelta(minutes=1))
    # Stepped without start(), the scheduler runs coroutines on an event loop of its own, in another thread.
    await asyncio.to_thread(bot.scheduler.run_pending)
    run = bot.scheduler.runs(job_id="delete-messages")[0]
    assert run.status is RunStatus.FAILED
    assert run.error == "RuntimeError: a job ran outside the bot's event loop"
    await bot.scheduler.close()


def test_the_bots_jobs_refuse_to_run_away_from_its_loop(tmp_path: Path) -> None:
    """The check that makes the day above mean something: a job on another loop fails."""
    asyncio.run(a_job_away_from_the_bots_loop(tmp_path))
