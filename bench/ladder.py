"""The rate a set-up sustains: climb a ladder of fire rates until fewer than 99.9 % of fires start on time.

Each step is one firing run of ``seconds`` at one rate, on a fresh database.  The rate doubles from
``start_rate`` while the steps hold; after the first step that fails, one more step halfway between the last
rate that held and the one that failed narrows the answer.  The sustained rate is the highest that held.

The PostgreSQL server is a private cluster in a temporary folder (the one the tests and ``scripts/chaos.py``
start), on a Unix socket only, with fsync off as in the tests: the figure is of the schedulers, not of a
disk.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.postgres import PrivateCluster, binaries, create_database

from bench.failures import BenchFailure

if TYPE_CHECKING:
    from bench.figures import FireResult

#: A rate holds when at least this share of its fires started on time (within 1 s of due).
HOLDS_PERCENT = 99.9
#: Port of the bench's own cluster, away from the tests' (54329 and up), so the two can run side by side.
_PORT = 54390


@dataclass(frozen=True, slots=True)
class Ladder:
    """The highest rate that held, with the figures of its step, and every step tried."""

    nodes: int
    seconds: float
    sustained_fires_per_second: int
    percent_on_time_at_sustained: float
    lateness_p99_ms_at_sustained: float
    #: CPU of the scheduling processes (not of the database server) per executed fire, at the sustained rate.
    cpu_us_per_fire_at_sustained: float
    #: The lowest rate that did not hold; 0 if every rate up to the top held.
    first_failing_rate: int
    #: Every rate tried held, up to the top: the sustained rate is a floor, not the limit.
    capped: bool
    #: Processes that executed runs in the step of the sustained rate.
    nodes_executing_at_sustained: int
    #: Every step as ``rate:percent on time``.
    steps: str


class PostgresServer:
    """A private PostgreSQL cluster handing out a new empty database per step."""

    def __init__(self, cluster: PrivateCluster) -> None:
        self._cluster = cluster
        self._numbers = itertools.count(1)

    def new_database(self) -> str:
        return create_database(self._cluster.admin_url, f"ckbench_{next(self._numbers)}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bindir = binaries()
    if bindir is None:
        raise BenchFailure("PostgreSQL is not installed (apt-get install postgresql)")
    cluster = PrivateCluster(bindir, port=_PORT)
    try:
        cluster.start()
        yield PostgresServer(cluster)
    finally:
        cluster.delete()


def climb(
    step: Callable[[int], FireResult], *, nodes: int, seconds: float, start_rate: int, top_rate: int
) -> Ladder:
    """Climb from ``start_rate`` (see the module docstring); ``step(rate)`` is one firing run."""
    tried: dict[int, FireResult] = {}
    held = failed = 0
    rate = start_rate
    while rate <= top_rate:
        tried[rate] = step(rate)
        if not _holds(tried[rate]):
            failed = rate
            break
        held, rate = rate, rate * 2
    middle = (held + failed) // 20 * 10
    if held and failed and held < middle < failed:
        tried[middle] = step(middle)
        if _holds(tried[middle]):
            held = middle
        else:
            failed = middle
    best = tried.get(held)
    return Ladder(
        nodes=nodes,
        seconds=seconds,
        sustained_fires_per_second=held,
        percent_on_time_at_sustained=best.percent_on_time if best else 0.0,
        lateness_p99_ms_at_sustained=best.lateness_p99_ms if best else float("nan"),
        cpu_us_per_fire_at_sustained=best.cpu_us_per_fire if best else float("nan"),
        first_failing_rate=failed,
        capped=not failed,
        nodes_executing_at_sustained=best.processes_executing if best else 0,
        steps=" ".join(f"{rate}:{result.percent_on_time:.2f}" for rate, result in sorted(tried.items())),
    )


def _holds(result: FireResult) -> bool:
    return result.percent_on_time >= HOLDS_PERCENT
