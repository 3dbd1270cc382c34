"""The demo jobs that ``cronkeeper serve --demo`` installs: a few of each kind and outcome, so a new user sees
successes, failures with retries, timeouts, metrics and output right away."""

from __future__ import annotations

import random
import time
from typing import Any

DEMO_JOBS: list[dict[str, Any]] = [
    {
        "id": "demo-heartbeat",
        "every": "15s",
        "command": ["echo", "cronkeeper demo: still alive"],
        "description": "A command every 15 seconds.",
    },
    {
        "id": "demo-report",
        "cron": "* * * * *",
        "call": "cronkeeper.demo:count_items",
        "kwargs": {"items": 25},
        "description": "A Python function every minute that returns metrics.",
    },
    {
        "id": "demo-flaky",
        "every": "1m",
        "call": "cronkeeper.demo:flaky",
        "max_retries": 2,
        "retry_base": "2s",
        "description": "Fails half of the time; retried twice with backoff.",
    },
    {
        "id": "demo-slow",
        "every": "2m",
        "command": ["sleep", "30"],
        "timeout": "5s",
        "description": "Always runs past its 5 second timeout and is killed.",
    },
    {
        "id": "demo-nightly",
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "call": "cronkeeper.demo:count_items",
        "kwargs": {"items": 1000},
        "isolate": True,
        "timeout": "10m",
        "overlap": "forbid",
        "description": "A nightly batch in its own process, in Paris time.",
    },
]


# The channel the demo's failing jobs alert: the dashboard's own demo inbox (``/demo/inbox``), so that an
# alert is seen arriving without any outside service.
DEMO_INBOX = "demo-inbox"
ALERTING = frozenset({"demo-flaky", "demo-slow"})


def demo_jobs(*, inbox: bool) -> list[dict[str, Any]]:
    """The demo jobs; with ``inbox`` (a dashboard to receive them) the failing ones alert the demo inbox."""
    if not inbox:
        return DEMO_JOBS
    return [{**job, "notify": [DEMO_INBOX]} if job["id"] in ALERTING else job for job in DEMO_JOBS]


def count_items(items: int = 10) -> dict[str, int]:
    """Pretend to process ``items`` items, a few of which fail."""
    failed = sum(1 for _ in range(items) if random.random() < 0.05)
    return {"items_processed": items, "items_succeeded": items - failed, "items_failed": failed}


def flaky() -> str:
    """Succeed or fail at random."""
    time.sleep(0.2)
    if random.random() < 0.5:
        raise RuntimeError("the upstream service did not answer (demo failure)")
    return "ok"
