"""The garbage collector held off while a burst starts: only for bursts, only as long as allowed, and never
against the host's own choice."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cronkeeper.engine.collector import MAX_HOLD, CollectorHold


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_a_burst_holds_the_collector_off_until_it_has_started() -> None:
    hold = CollectorHold(monotonic=Monotonic())
    hold.begin()
    assert not gc.isenabled() and hold.remaining == pytest.approx(MAX_HOLD)
    hold.end()
    assert gc.isenabled() and hold.remaining is None


def test_a_hold_ends_when_it_runs_out_of_time() -> None:
    clock = Monotonic()
    hold = CollectorHold(monotonic=clock)
    hold.begin()
    clock.now += MAX_HOLD / 2
    hold.expire()
    assert not gc.isenabled() and hold.remaining == pytest.approx(MAX_HOLD / 2)
    clock.now += MAX_HOLD / 2
    hold.expire()
    assert gc.isenabled() and hold.remaining is None


def test_a_hold_under_way_is_not_begun_again() -> None:
    clock = Monotonic()
    hold = CollectorHold(monotonic=clock)
    assert hold.begin()
    clock.now += MAX_HOLD / 2
    assert not hold.begin()
    assert hold.remaining == pytest.approx(MAX_HOLD / 2)
    hold.end()
    hold.end()  # a second end (of another burst's last task) changes nothing
    assert gc.isenabled()


def test_a_host_that_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    hold = CollectorHold(monotonic=Monotonic())
    assert not hold.begin()
    hold.end()
    assert not gc.isenabled() and hold.remaining is None


def test_holding_can_be_turned_off() -> None:
    hold = CollectorHold(enabled=False, monotonic=Monotonic())
    hold.begin()
    assert gc.isenabled() and hold.remaining is None


def test_a_wake_asked_for_during_a_hold_comes_when_it_ends_and_once() -> None:
    clock = Monotonic()
    hold = CollectorHold(monotonic=clock)
    woken: list[str] = []
    assert not hold.after(lambda: woken.append("idle"))  # no hold: the caller wakes itself
    hold.begin()
    assert hold.after(lambda: woken.append("burst"))
    assert woken == []
    clock.now += MAX_HOLD
    hold.expire()
    hold.end()
    assert woken == ["burst"]
