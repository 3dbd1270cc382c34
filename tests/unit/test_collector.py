"""The garbage collector held off while a burst starts: only as long as allowed, ended only by its own
burst, and never against the host's own choice made before it."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import pytest

from cronkeeper.engine.collector import MAX_HOLD, CollectorHold


class Timers:
    """Timers started by a hold, fired by hand."""

    def __init__(self) -> None:
        self.started: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, seconds: float, function: Callable[[], None]) -> None:
        self.started.append((seconds, function))

    def fire_all(self) -> None:
        for _, function in self.started:
            function()


def begun(hold: CollectorHold) -> int:
    """A hold begun, and its number."""
    number = hold.begin()
    assert number is not None
    return number


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_a_burst_holds_the_collector_off_until_it_has_started() -> None:
    hold = CollectorHold(start_timer=Timers())
    number = hold.begin()
    assert number is not None and not gc.isenabled() and hold.holding
    hold.end(number)
    assert gc.isenabled() and not hold.holding


def test_a_hold_ends_in_time_by_its_timer_whatever_else_happens() -> None:
    timers = Timers()
    hold = CollectorHold(start_timer=timers)
    number = begun(hold)
    hold.limit(number)
    assert [seconds for seconds, _ in timers.started] == [MAX_HOLD]
    timers.fire_all()
    assert gc.isenabled() and not hold.holding


def test_only_its_own_end_ends_a_hold() -> None:
    timers = Timers()
    hold = CollectorHold(start_timer=timers)
    first = begun(hold)
    hold.limit(first)
    hold.end(first)  # the first burst started
    second = begun(hold)
    assert second != first
    timers.fire_all()  # the first hold's timer, late
    hold.end(first)  # the first burst's last task, late
    assert not gc.isenabled() and hold.holding
    hold.end(second)
    assert gc.isenabled()


def test_a_hold_under_way_is_not_begun_again() -> None:
    hold = CollectorHold(start_timer=Timers())
    number = begun(hold)
    assert hold.begin() is None
    hold.end(number)
    assert gc.isenabled()


def test_a_host_that_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    hold = CollectorHold(start_timer=Timers())
    assert hold.begin() is None
    assert not gc.isenabled() and not hold.holding


def test_holding_can_be_turned_off() -> None:
    hold = CollectorHold(enabled=False, start_timer=Timers())
    assert hold.begin() is None
    assert gc.isenabled()


def test_a_wake_asked_for_during_a_hold_comes_when_it_ends_and_once() -> None:
    hold = CollectorHold(start_timer=Timers())
    woken: list[str] = []
    assert not hold.after(lambda: woken.append("idle"))  # no hold: the caller wakes itself
    number = begun(hold)
    assert hold.after(lambda: woken.append("burst"))
    assert woken == []
    hold.end(number)
    hold.end(number)
    assert woken == ["burst"]
