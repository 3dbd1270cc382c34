"""Job functions the tests schedule by import path (isolated jobs need a real module to import)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
import threading
import time
from pathlib import Path

import cronkeeper
from cronkeeper import RunFailed


def metrics(items: int = 10) -> dict[str, int]:
    return {"items_processed": items, "items_succeeded": items - 1, "items_failed": 1}


def boom() -> None:
    raise RuntimeError("boom")


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def write_pid_and_sleep(path: str, seconds: float) -> None:
    """Leave the pid where the test can check the process was killed."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def shout(text: str) -> str:
    print(text * 3, flush=True)  # noqa: T201 - the test checks captured output
    return text.upper()


async def async_metrics(items: int = 5) -> dict[str, int]:
    await asyncio.sleep(0)
    return {"items_processed": items}


async def async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def not_a_number() -> dict[str, float]:
    return {"ratio": float("nan")}


def touch(path: str) -> None:
    Path(path).write_text("ran")


def whoami() -> dict[str, object]:
    """What a job learns about its own run."""
    from cronkeeper import current_run

    run = current_run()
    assert run is not None
    return {
        "run_id": run.run_id,
        "job_id": run.job_id,
        "at": run.scheduled_for.isoformat(),
        "by": run.triggered_by,
    }


async def async_whoami() -> dict[str, object]:
    await asyncio.sleep(0)
    return whoami()


def chatty(items: int = 3) -> dict[str, int]:
    """Logs as a job of seeds 001-003 does, and returns its counts."""
    log = logging.getLogger("tests.jobs.chatty")
    for item in range(items):
        log.warning("item %d done", item)
    return {"items": items}


def partly_failed() -> None:
    """Ends its run as failed, with the figures of what it did (seed 003's ``{success: false}``)."""
    logging.getLogger("tests.jobs.partly").error("2 of 3 items failed")
    raise RunFailed("2 of 3 items failed", result={"succeeded": 1, "failed": 2})


async def async_chatty() -> None:
    logging.getLogger("tests.jobs.async").warning("from a coroutine")


def printing() -> None:
    """Prints, as scripts turned into jobs do."""
    print("report written")  # noqa: T201 - the test reads it back from the run
    print("to stderr", file=sys.stderr)  # noqa: T201


async def async_printing() -> None:
    print("from a coroutine")  # noqa: T201


def with_helper_thread() -> str | None:
    """Logs and prints from a thread it starts with its run handed on, and asks that thread which run it
    works for."""
    seen: list[str | None] = []

    def helper() -> None:
        logging.getLogger("tests.jobs.helper").warning("helper logged")
        print("helper printed")  # noqa: T201
        run = cronkeeper.current_run()
        seen.append(None if run is None else run.job_id)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(helper,))
    thread.start()
    thread.join()
    return seen[0]
