"""A failure that repeats is told when it begins, about once a minute, and when it ends (engine/outage.py)."""

from __future__ import annotations

import logging

import pytest

from cronkeeper.engine.outage import LOG_EVERY, Outage


def test_an_outage_is_three_kinds_of_line_not_one_per_try(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage(logging.getLogger("test.outage"), monotonic=lambda: now[0])
    caplog.set_level(logging.INFO, logger="test.outage")
    outage.ended("back after %.1fs")  # no outage: nothing to say
    for _ in range(int(2.5 * LOG_EVERY)):  # a try a second for two and a half minutes
        outage.failed(logging.ERROR, "away for %.0fs: %s", "refused")
        now[0] += 1.0
    assert outage.ongoing and outage.last_failed_at == now[0] - 1.0
    outage.ended("back after %.1fs")
    assert not outage.ongoing
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "away for 0s: refused"),
        (logging.ERROR, "away for 60s: refused"),
        (logging.ERROR, "away for 120s: refused"),
        (logging.WARNING, "back after 150.0s"),
    ]
