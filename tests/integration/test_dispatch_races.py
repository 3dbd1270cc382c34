"""The dispatcher driven directly: a batch of every kind of run, and cancels that land while a batch is
being started or while a worker picks a run up.  Each run ends exactly once, and a cancelled run that had not
started never runs."""

from __future__ import annotations

import collections
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cronkeeper.clock import SystemClock
from cronkeeper.engine.dispatch import Dispatcher
from cronkeeper.engine.outcomes import OutcomeBuffer
from cronkeeper.executors import Execution
from cronkeeper.executors.output import TailBuffer
from cronkeeper.models import RunStatus, TriggerSource
from cronkeeper.registry import Registry
from cronkeeper.specs import build_spec
from cronkeeper.store.base import Completion, StartOrder

NOW = datetime.fromisoformat("2026-03-02T08:00:00+00:00")


class Recorder(OutcomeBuffer):
    """An outcome buffer that also counts what each run was noted."""

    def __init__(self) -> None:
        super().__init__(on_first=lambda: None)
        self.finished: dict[int, list[Execution]] = collections.defaultdict(list)
        self.started: collections.Counter[int] = collections.Counter()
        self.noted = threading.Condition()

    def note_started(self, order: StartOrder, at: datetime, output: TailBuffer | None = None) -> None:
        super().note_started(order, at, output)
        with self.noted:
            self.started[order.run_id] += 1

    def note_finished(self, completion: Completion, order: StartOrder, execution: Execution) -> None:
        super().note_finished(completion, order, execution)
        with self.noted:
            self.finished[order.run_id].append(execution)
            self.noted.notify_all()


def order(run_id: int, job: dict[str, Any]) -> StartOrder:
    spec = build_spec({"id": f"job-{run_id}", "every": "1m", **job}, now=NOW)
    return StartOrder(run_id, spec, NOW, NOW, 0, TriggerSource.SCHEDULE)


def start_now(engine: Dispatcher, orders: list[StartOrder]) -> int:
    """Hold the runs and start them as due, as the starter does."""
    engine.hold(orders)
    return engine.start(engine.take_due(NOW))


def dispatcher(registry: Registry, recorder: Recorder, workers: int = 2) -> Dispatcher:
    return Dispatcher(
        registry=registry, clock=SystemClock(), outcomes=recorder, workers=workers, event_loop=None
    )


def test_a_mixed_batch_with_a_start_that_raises_ends_every_run_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry()
    recorder = Recorder()
    ran = tmp_path / "ran"
    orders = [
        order(1, {"checkin": True}),
        order(2, {"call": "tests.no_such_module:nothing"}),
        order(3, {"call": "tests.jobs:async_whoami"}),
        order(4, {"command": ["sh", "-c", "echo command"]}),
        order(5, {"call": "tests.jobs:metrics", "isolate": True}),
        order(6, {"call": "tests.jobs:whoami"}),  # its start raises (below)
        order(7, {"call": "tests.jobs:touch", "kwargs": {"path": str(ran)}}),
        order(8, {"call": "tests.jobs:shout", "kwargs": {"text": "x"}}),
    ]
    real = registry.is_coroutine

    def flaky(ref: str) -> bool:
        if ref == "tests.jobs:whoami":
            raise RuntimeError("a start that raises")
        return real(ref)

    monkeypatch.setattr(registry, "is_coroutine", flaky)
    engine = dispatcher(registry, recorder)
    try:
        assert start_now(engine, orders) == len(orders)
        assert engine.wait_idle(30)
    finally:
        engine.close()
    statuses = {run_id: [e.status for e in executions] for run_id, executions in recorder.finished.items()}
    assert statuses == {
        1: [RunStatus.FAILED],
        2: [RunStatus.FAILED],
        3: [RunStatus.SUCCEEDED],
        4: [RunStatus.SUCCEEDED],
        5: [RunStatus.SUCCEEDED],
        6: [RunStatus.FAILED],
        7: [RunStatus.SUCCEEDED],
        8: [RunStatus.SUCCEEDED],
    }
    assert ran.exists()
    assert recorder.finished[3][0].outcome.result == {
        "run_id": 3,
        "job_id": "job-3",
        "at": NOW.isoformat(),
        "by": None,
    }
    assert recorder.finished[8][0].outcome.output == "xxx\n"


def test_a_run_cancelled_while_its_batch_is_being_started_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run 2 is claimed and due, and cancelled from another thread while the loop thread is still starting
    run 1 of the same batch (a first import, say): it ends as cancelled and never runs."""
    registry = Registry()
    recorder = Recorder()
    ran: list[int] = []
    registry.register(lambda: ran.append(1), "races:first")
    registry.register(lambda: ran.append(2), "races:second")
    engine = dispatcher(registry, recorder, workers=2)
    answers: list[bool] = []
    real = registry.resolve

    def resolve(ref: str) -> Any:
        if ref == "races:first" and not answers:
            canceller = threading.Thread(target=lambda: answers.append(engine.cancel(2, "cancelled")))
            canceller.start()
            canceller.join()
        return real(ref)

    monkeypatch.setattr(registry, "resolve", resolve)
    try:
        start_now(engine, [order(1, {"call": "races:first"}), order(2, {"call": "races:second"})])
        assert engine.wait_idle(30)
    finally:
        engine.close()
    assert answers == [True]
    assert 2 not in ran
    assert [e.status for e in recorder.finished[2]] == [RunStatus.CANCELLED]


def test_a_cancel_between_pickup_and_start_leaves_no_live_output_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cancel as the worker picks the run up: the start is never noted after the outcome, which would
    leave the run's live output registered for good (the loop waking to write the output of a run that
    ended)."""
    registry = Registry()
    recorder = Recorder()
    ended = threading.Event()
    registry.register(ended.set, "races:job")
    engine = dispatcher(registry, recorder, workers=1)
    real = engine._arm_timeout

    def arm(flight: Any) -> None:  # runs in the worker as it picks the run up
        engine.cancel(flight.order.run_id, "cancelled")
        real(flight)

    monkeypatch.setattr(engine, "_arm_timeout", arm)
    try:
        start_now(engine, [order(1, {"call": "races:job"})])
        assert engine.wait_idle(30)
        assert ended.wait(30)  # the job's thread, abandoned by the cancel, is done noting anything
    finally:
        engine.close()
    assert [e.status for e in recorder.finished[1]] == [RunStatus.CANCELLED]
    assert not recorder.has_live_output()


def test_a_run_cancelled_while_it_is_vetted_never_runs() -> None:
    """Taken from the held runs to start, then cancelled while vetting reads its job (an overlap=replace
    claim, a cancel the heartbeat heard of): the cancel finds it, and it is not started."""
    registry = Registry()
    recorder = Recorder()
    ran: list[int] = []
    registry.register(lambda: ran.append(1), "races:vetted")
    engine = dispatcher(registry, recorder)
    try:
        engine.hold([order(1, {"call": "races:vetted"})])
        taken = engine.take_due(NOW)
        assert engine.cancel(1, "cancelled: replaced by a newer run (overlap=replace)")
        assert engine.release_taken([1]) == []  # a verdict now would overwrite the cancel: there is none
        assert engine.start(taken) == 0
        assert engine.wait_idle(30)
    finally:
        engine.close()
    assert ran == []
    assert [e.status for e in recorder.finished[1]] == [RunStatus.CANCELLED]


def test_a_taken_run_vetting_refused_is_no_longer_in_flight() -> None:
    registry = Registry()
    engine = dispatcher(registry, Recorder())
    try:
        engine.hold([order(1, {"call": "races:vetted"})])
        engine.take_due(NOW)
        assert not engine.wait_idle(0)  # in flight while it is vetted
        engine.release_taken([1])
        assert engine.wait_idle(0)
        assert not engine.cancel(1, "cancelled")
    finally:
        engine.close()


def test_runs_taken_when_starting_stops_are_held_again_for_the_hand_back() -> None:
    """A stop begins while the starter vets runs it took: they do not start, and are handed back."""
    registry = Registry()
    ran: list[int] = []
    registry.register(lambda: ran.append(1), "races:late")
    recorder = Recorder()
    engine = dispatcher(registry, recorder)
    try:
        engine.hold([order(1, {"call": "races:late"})])
        taken = engine.take_due(NOW)
        engine.stop_starting()
        assert engine.start(taken) == 0
        assert engine.wait_idle(0)
        assert engine.release_held() == [1]
    finally:
        engine.close()
    assert ran == [] and not recorder.finished
