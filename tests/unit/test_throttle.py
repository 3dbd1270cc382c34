"""The login throttle counts an attempt when it starts, and a flood of names cannot unlock an account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cronkeeper.clock import FakeClock
from cronkeeper.web.throttle import MAX_TRACKED, LoginThrottle

WINDOW = timedelta(minutes=15)


def _throttle() -> tuple[LoginThrottle, FakeClock]:
    clock = FakeClock(datetime(2026, 3, 2, tzinfo=UTC))
    return LoginThrottle(clock, attempts=5, window=WINDOW), clock


def test_attempts_in_flight_count_before_their_password_is_checked() -> None:
    throttle, _ = _throttle()
    assert [throttle.attempt("Admin") for _ in range(5)] == [None] * 5  # five guesses still being verified
    assert throttle.attempt("admin") == WINDOW  # the sixth waits; names are compared without case


def test_success_clears_and_the_window_slides() -> None:
    throttle, clock = _throttle()
    for _ in range(5):
        throttle.attempt("alice")
    clock.advance(WINDOW)
    assert throttle.attempt("alice") is None
    throttle.succeeded("alice")
    assert all(throttle.attempt("alice") is None for _ in range(5))


def test_a_flood_of_made_up_names_does_not_unlock_an_account() -> None:
    throttle, clock = _throttle()
    for _ in range(5):
        throttle.attempt("admin")
    clock.advance(timedelta(minutes=1))
    for number in range(MAX_TRACKED):
        throttle.attempt(f"made-up-{number}")
    assert throttle.attempt("admin") is not None
    assert throttle.attempt("newcomer") is not None  # no room: new names wait rather than evict
    clock.advance(WINDOW)
    assert throttle.attempt("newcomer") is None  # quiet names are forgotten once their window has passed
