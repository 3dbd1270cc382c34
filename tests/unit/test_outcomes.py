"""Writing outcomes: an outcome the database refuses is kept as a failure, and the others are not held up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from cronkeeper.engine.outcomes import OutcomeBuffer
from cronkeeper.events import EventKind, Listeners, RunEvent
from cronkeeper.exceptions import StoreError
from cronkeeper.executors import Execution
from cronkeeper.models import RunOutcome, RunStatus, TriggerSource
from cronkeeper.specs import build_spec
from cronkeeper.store.base import Completion, JobStore, StartOrder

NOW = datetime.fromisoformat("2026-03-02T08:00:00+00:00")
SPEC = build_spec({"id": "job", "every": "1m", "call": "tests.jobs:metrics"}, now=NOW)


class RefusingStore:
    """Accepts every outcome but those whose output contains a NUL, as a database that cannot hold one."""

    def __init__(self) -> None:
        self.written: list[Completion] = []

    def record_started(self, started: Sequence[tuple[int, datetime]], *, owner: str) -> None:
        pass

    def record_finished(self, completions: Sequence[Completion], *, owner: str, now: datetime) -> list[int]:
        if any("\x00" in (completion.outcome.output or "") for completion in completions):
            try:
                raise ValueError("NUL in text")
            except ValueError as exc:
                raise StoreError("database write failed") from exc
        self.written.extend(completions)
        return [completion.run_id for completion in completions]


def order(run_id: int) -> StartOrder:
    return StartOrder(run_id, SPEC, NOW, NOW, 0, TriggerSource.SCHEDULE)


def test_an_outcome_the_database_refuses_is_stored_as_a_failure_and_the_others_as_they_are() -> None:
    started, finished, retry_at = NOW, NOW + timedelta(seconds=2), NOW + timedelta(minutes=1)
    good = Completion(
        1,
        RunStatus.SUCCEEDED,
        started,
        finished,
        RunOutcome(exit_code=0, output="fine", result={"n": 1}, peak_memory_bytes=2048, cpu_time=0.25),
    )
    bad = Completion(
        2,
        RunStatus.TIMED_OUT,
        started,
        finished,
        RunOutcome(
            exit_code=-9,
            output="bad\x00",
            error="timed out after 1s",
            traceback="Traceback…",
            result={"n": 2},
            peak_memory_bytes=4096,
            cpu_time=0.5,
        ),
        retry_at,
    )
    buffer = OutcomeBuffer(lambda: None)
    for completion in (good, bad):
        buffer.note_finished(completion, order(completion.run_id), Execution(completion.status))
    events: list[RunEvent] = []
    listeners = Listeners()
    listeners.add(events.append)
    store = RefusingStore()

    buffer.flush(cast(JobStore, store), owner="node", now=finished, listeners=listeners)

    assert store.written == [
        good,
        Completion(
            2,
            RunStatus.FAILED,
            started,
            finished,
            RunOutcome(
                exit_code=-9,
                error="the run ended (timed_out) but its outcome could not be stored: ValueError",
                peak_memory_bytes=4096,
                cpu_time=0.5,
            ),
            retry_at,
        ),
    ]
    assert [(event.kind, event.error, event.traceback, event.result, event.duration) for event in events] == [
        (EventKind.SUCCEEDED, None, None, {"n": 1}, 2.0),
        (EventKind.TIMED_OUT, "timed out after 1s", "Traceback…", {"n": 2}, 2.0),
    ]
