"""AsyncScheduler: coroutine jobs run on the event loop that started the scheduler."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from cronkeeper import AsyncScheduler, FakeClock, RunStatus, Scheduler


async def wait_for_runs(scheduler: AsyncScheduler, job_id: str, count: int) -> None:
    for _ in range(500):
        finished = [run for run in scheduler.runs(job_id=job_id) if not run.status.is_active]
        if len(finished) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{job_id}: fewer than {count} finished runs")


def test_coroutine_jobs_run_on_the_callers_loop(db_url: str, clock: FakeClock) -> None:
    seen: list[tuple[asyncio.AbstractEventLoop, threading.Thread]] = []

    async def main() -> None:
        async with AsyncScheduler(db_url, clock=clock) as scheduler:

            @scheduler.job(id="tick", every="1m")
            async def tick() -> dict[str, int]:
                seen.append((asyncio.get_running_loop(), threading.current_thread()))
                return {"items_processed": 1}

            for minutes in range(1, 4):
                clock.advance(timedelta(minutes=1))
                await wait_for_runs(scheduler, "tick", minutes)
            runs = scheduler.runs(job_id="tick")
            assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 3
            assert runs[0].result == {"items_processed": 1}
            assert {loop for loop, _ in seen} == {asyncio.get_running_loop()}
            assert {thread for _, thread in seen} == {threading.current_thread()}

    asyncio.run(main())


def test_coroutine_timeout_cancels_it(db_url: str, clock: FakeClock) -> None:
    async def main() -> None:
        async with AsyncScheduler(db_url, clock=clock) as scheduler:
            scheduler.add_job(
                "tests.jobs:async_sleep", id="slow", every="1m", timeout="0.1s", kwargs={"seconds": 30}
            )
            clock.advance(timedelta(minutes=1))
            await wait_for_runs(scheduler, "slow", 1)
            run = scheduler.runs(job_id="slow")[0]
            assert run.status is RunStatus.TIMED_OUT

    asyncio.run(main())


def test_sync_scheduler_runs_coroutines_on_its_own_loop(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:async_metrics", id="async", every="1h")
    clock.advance(timedelta(hours=1))
    scheduler.run_pending()
    run = scheduler.runs(job_id="async")[0]
    assert run.status is RunStatus.SUCCEEDED
    assert run.result == {"items_processed": 5}


def test_background_thread_fires_as_the_clock_moves(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:metrics", id="tick", every="1m")
    scheduler.start()
    try:
        for minutes in range(1, 6):
            clock.advance(timedelta(minutes=1))
            for _ in range(500):
                if len([r for r in scheduler.runs(job_id="tick") if not r.status.is_active]) >= minutes:
                    break
                threading.Event().wait(0.01)
    finally:
        scheduler.stop()
    assert [run.status for run in scheduler.runs(job_id="tick")] == [RunStatus.SUCCEEDED] * 5
