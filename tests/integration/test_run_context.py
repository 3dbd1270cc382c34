"""A job function learns which run it executes for, however it runs; a command reads the same from its
environment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cronkeeper import FakeClock, RunStatus, Scheduler, current_run
from cronkeeper.testing import advance


@pytest.mark.parametrize(
    "options",
    [
        {"call": "tests.jobs:whoami"},
        {"call": "tests.jobs:async_whoami"},
        {"call": "tests.jobs:whoami", "isolate": True},
    ],
    ids=["thread", "coroutine", "isolated"],
)
def test_a_function_knows_its_run(scheduler: Scheduler, clock: FakeClock, options: dict[str, Any]) -> None:
    scheduler.add_job(id="me", cron="0 3 * * *", **options)
    advance(scheduler, clock, timedelta(days=1))
    (run,) = scheduler.runs(job_id="me")
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.result == {"run_id": run.id, "job_id": "me", "at": run.scheduled_for.isoformat(), "by": None}
    assert current_run() is None  # outside a job


def test_a_manual_run_knows_who_asked(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.add_job("tests.jobs:whoami", id="me", cron="0 3 * * *")
    run_id = scheduler.trigger("me", triggered_by="alice")
    advance(scheduler, clock, timedelta(seconds=1))
    assert scheduler.get_run(run_id).result == {
        "run_id": run_id,
        "job_id": "me",
        "at": scheduler.get_run(run_id).scheduled_for.isoformat(),
        "by": "alice",
    }


def test_a_command_reads_its_run_from_the_environment(scheduler: Scheduler, clock: FakeClock) -> None:
    script = 'echo "$CRONKEEPER_RUN_ID $CRONKEEPER_JOB_ID $CRONKEEPER_SCHEDULED_FOR $CRONKEEPER_ATTEMPT"'
    scheduler.add_job(id="cmd", cron="0 3 * * *", command=["sh", "-c", script])
    advance(scheduler, clock, timedelta(days=1))
    (run,) = scheduler.runs(job_id="cmd")
    assert run.output == f"{run.id} cmd {run.scheduled_for.isoformat()} 0\n"
