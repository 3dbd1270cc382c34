"""Run a benchmark scenario on cronkeeper and on APScheduler 3 in one invocation and print both, with ratios.

    python -m bench.compare fire-every-second      # 1,000 jobs every second for 30 s
    python -m bench.compare fires-per-second       # 10,000 fires per second for 10 s
    python -m bench.compare bulk-add               # 100,000 jobs due tomorrow
    python -m bench.compare all [--small]          # all three (--small: a quick check with small sizes)

Run from the repository root with the bench extra installed (``pip install -e '.[bench]'``).  Figures are
printed, not asserted: speed is measured here, never in the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import psutil

from bench import apscheduler3, cronkeeper_side

# (scenario, full sizes, small sizes)
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "fire-every-second": ({"jobs": 1000, "seconds": 30}, {"jobs": 200, "seconds": 5}),
    "fires-per-second": ({"rate": 10_000, "seconds": 10}, {"rate": 2000, "seconds": 3}),
    "bulk-add": ({"jobs": 100_000, "idle_window": 30.0}, {"jobs": 5000}),
}

# Other ways to serve a scenario, shown beside the one-process figures.
EXTRA: dict[str, tuple[str, Callable[..., Any]]] = {
    "fires-per-second": ("cronkeeper, 2 processes", cronkeeper_side.fires_per_second_processes),
}

# Figures where lower is better; the ratio printed is APScheduler / cronkeeper for these (how many times
# cronkeeper is better), and cronkeeper / APScheduler for the others.
LOWER_IS_BETTER = {
    "lateness_p50_ms",
    "lateness_p99_ms",
    "lateness_max_ms",
    "cpu_us_per_fire",
    "add_seconds",
    "idle_cpu_percent",
    "restart_ready_seconds",
    "missed_fires",
}


def machine() -> str:
    freq = psutil.cpu_freq()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        f"{f' @ {freq.max:.0f} MHz' if freq and freq.max else ''}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def run(name: str, small: bool) -> None:
    full, quick = SIZES[name]
    sizes = quick if small else full
    ours: Callable[..., Any] = getattr(cronkeeper_side, name.replace("-", "_"))
    theirs: Callable[..., Any] = getattr(apscheduler3, name.replace("-", "_"))
    print(f"\n== {name} {sizes}")
    ck = asdict(ours(**sizes))
    aps = asdict(theirs(**sizes))
    extra_name, extra = EXTRA.get(name, ("", None))
    more = asdict(extra(**sizes)) if extra is not None else {}
    print(f"{'figure':24} {'cronkeeper':>14} {'APScheduler 3':>14} {'ratio':>8} {extra_name:>24}")
    for key, value in ck.items():
        other = aps.get(key)
        print(
            f"{key:24} {_fmt(value):>14} {_fmt(other):>14} {_ratio(key, value, other):>8} "
            f"{_fmt(more.get(key, '')):>24}"
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _ratio(key: str, ours: Any, theirs: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or isinstance(ours, bool):
        return ""
    if key in LOWER_IS_BETTER:
        return f"{theirs / ours:.1f}x" if ours else ""
    return f"{ours / theirs:.2f}" if theirs else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=[*SIZES, "all"])
    parser.add_argument("--small", action="store_true", help="small sizes, for a quick check")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    for name in SIZES if args.scenario == "all" else [args.scenario]:
        run(name, args.small)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
