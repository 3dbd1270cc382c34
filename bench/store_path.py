"""The loop's own writes, driven directly: CPU per fire of claiming due fires and writing their outcomes.

    python -m bench.store_path                  # 5,000 jobs every second, 12 seconds of a fake clock
    python -m bench.store_path --jobs 10000 --seconds 8

At thousands of fires a second the loop's thread is what a node keeps up with or not (BENCHMARKS.md, sixth
round), and most of its time goes to these two calls.  Here they run on a fake clock, with no thread, no
job and no sleep: claims of 500 fires half a second ahead, as the loop makes them, then every claimed run
finished in outcome writes of up to 2,000, as the loop's buffer writes them.  What is left of the machine's
noise is far less than in the scenarios that run real threads for 30 s, so two commits can be told apart by
a few per cent.  The figure is the median over the measured seconds of the calling thread's CPU per fire;
the first second (specs parsed and cached) is left out.  There is no APScheduler column: APScheduler 3 has no
such calls to compare with; the scenarios of ``bench.compare`` carry the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.compare import machine
from cronkeeper import FakeClock, Scheduler
from cronkeeper.models import RunOutcome, RunStatus
from cronkeeper.store.base import Completion

START = datetime(2027, 1, 1, tzinfo=UTC)
OWNER = "bench-store-path"
CLAIM_BATCH = 500
LEAD = timedelta(milliseconds=500)
OUTCOME_BATCH = 2000


def per_fire(jobs: int, seconds: int) -> tuple[float, float, int]:
    """Median CPU (µs) per fire of the claims and of the outcome writes, and the fires measured."""
    with tempfile.TemporaryDirectory(prefix="ck-store-path-") as tmp:
        clock = FakeClock(START - timedelta(seconds=5))
        scheduler = Scheduler(f"sqlite:///{Path(tmp) / 'ck.db'}", clock=clock)
        scheduler.add_jobs(
            {"id": f"fire-{i}", "call": "bench.cronkeeper_side:probe", "every": 1, "start": START.isoformat()}
            for i in range(jobs)
        )
        store = scheduler.store
        store.heartbeat(owner=OWNER, now=clock.now(), hostname="bench", pid=0)
        claims, outcomes, measured = [], [], 0
        for second in range(seconds + 1):
            now = START + timedelta(seconds=second) - LEAD + timedelta(milliseconds=100)
            began, orders = time.thread_time(), []
            while True:
                claimed = store.claim_due(
                    now=now, owner=OWNER, limit=CLAIM_BATCH, horizon=now + LEAD
                ).to_start
                orders.extend(claimed)
                if len(claimed) < CLAIM_BATCH:
                    break
            claimed_in = time.thread_time() - began
            ended = now + LEAD
            completions = [
                Completion(order.run_id, RunStatus.SUCCEEDED, ended, ended, RunOutcome()) for order in orders
            ]
            began = time.thread_time()
            for first in range(0, len(completions), OUTCOME_BATCH):
                store.record_finished(completions[first : first + OUTCOME_BATCH], owner=OWNER, now=ended)
            written_in = time.thread_time() - began
            if len(orders) != jobs:
                raise SystemExit(f"second {second}: {len(orders)} fires claimed of {jobs}")
            if second:
                claims.append(1e6 * claimed_in / jobs)
                outcomes.append(1e6 * written_in / jobs)
                measured += jobs
        scheduler.close()
    return statistics.median(claims), statistics.median(outcomes), measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=12)
    args = parser.parse_args()
    claims, outcomes, fires = per_fire(args.jobs, args.seconds)
    print(f"== the loop's writes, {args.jobs:,} jobs every second, {fires:,} fires; {machine()}")
    together = claims + outcomes
    print(f"claims {claims:.1f} µs per fire, outcome writes {outcomes:.1f} µs, together {together:.1f} µs")


if __name__ == "__main__":
    main()
