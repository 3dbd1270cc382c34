"""Run a benchmark scenario on cronkeeper and on APScheduler 3 (and 4) in one invocation, with ratios.

    python -m bench.compare fires-per-second       # 10,000 jobs every second for 30 s; also 2 serve
    python -m bench.compare fire-every-second      # 1,000 jobs every second, all due on the same instant
    python -m bench.compare spread-every-second    # 1,000 jobs every second, each at its own offset
    python -m bench.compare burst                  # 10,000 jobs due on the same instant, once
    python -m bench.compare bulk-add               # 100,000 jobs due tomorrow: add, idle, restart
    python -m bench.compare postgres-nodes         # highest rate 3 nodes on PostgreSQL hold, and 1 node
    python -m bench.compare soak --cronkeeper-only # 1,000 jobs every second (own offsets) for an hour
    python -m bench.compare all [--small]          # all but the two long ones above (--small: small sizes)
    python -m bench.compare SCENARIO --repeat 5    # runs of each side (3 by default): median and range
    python -m bench.compare SCENARIO --aps4-python /path/to/venv/bin/python   # APScheduler 4.0a6 too

APScheduler 4 shares APScheduler 3's package name, so its column runs in another virtualenv, whose
interpreter is given by ``--aps4-python`` or the environment variable BENCH_APS4_PYTHON.  That venv needs
``pip install --pre 'apscheduler[sqlalchemy]==4.0.0a6' aiosqlite sniffio psutil`` (4.0.0a6 imports
sniffio without declaring it); bench/apscheduler4.py says how its set-up mirrors APScheduler 3's.
Without either, the column is left out.  postgres-nodes has no APScheduler 4 side: its column shows n/a.

A run in which a process the bench started died or executed nothing stops the bench with an error: its
figures are never printed as if they counted.

Run from the repository root with the bench extra installed (``pip install -e '.[bench]'``).  Figures are
printed, not asserted: speed is measured here, never in the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench import sqlite_limit
from bench.failures import BenchFailure

# (scenario, full sizes, small sizes)
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "fires-per-second": ({"rate": 10_000, "seconds": 30}, {"rate": 2000, "seconds": 3}),
    "fire-every-second": ({"jobs": 1000, "seconds": 30}, {"jobs": 200, "seconds": 5}),
    "spread-every-second": ({"jobs": 1000, "seconds": 30}, {"jobs": 200, "seconds": 5}),
    "burst": ({"jobs": 10_000}, {"jobs": 2000}),
    "bulk-add": ({"jobs": 100_000, "idle_window": 30.0}, {"jobs": 5000}),
    "postgres-nodes": (
        {"nodes": 3, "seconds": 15},
        {"nodes": 3, "seconds": 5, "start_rate": 500, "top_rate": 1000},
    ),
    "soak": ({"rate": 1000, "seconds": 3600, "window": 60}, {"rate": 200, "seconds": 20, "window": 4}),
}
# Scenarios too long for ``all``: asked for by name.
LONG = {"soak", "postgres-nodes"}

# Other ways to serve a scenario, shown beside the one-process figures: (label, module, function).
EXTRA: dict[str, tuple[str, str, str]] = {
    "fires-per-second": ("cronkeeper, 2 processes", "cronkeeper_side", "fires_per_second_processes"),
    "postgres-nodes": ("cronkeeper, 1 node", "cronkeeper_side", "postgres_one_node"),
}

#: The optional column of APScheduler 4, whose side runs in an interpreter of its own (bench/apscheduler4.py).
APS4_LABEL = "APScheduler 4.0a6"
#: The environment variable naming that interpreter when ``--aps4-python`` is not given.
APS4_PYTHON_VARIABLE = "BENCH_APS4_PYTHON"
#: Scenarios with no APScheduler 4 side (bench/apscheduler4.py says why): the column shows n/a.
NO_APS4 = {"postgres-nodes"}
#: Where ``bench`` is imported from by an interpreter that has not installed this repository.
REPO_ROOT = Path(__file__).resolve().parent.parent

# The other schedulers' sides, whose runs may fail under a load without failing the bench.
BASELINES = {"apscheduler3", "apscheduler4"}
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
    "idle_rss_mb",
    "errored_fires",
    "skipped_fires",
    "add_seconds_measured",
    "rss_after_warm_up_mb",
    "rss_at_end_mb",
    "lateness_p99_ms_at_sustained",
    "cpu_us_per_fire_at_sustained",
    "cpu_us_per_fire_first_windows",
    "cpu_us_per_fire_last_windows",
}
# Figures that may be zero or negative, where a ratio means nothing: shown side by side only.
NO_RATIO = {
    "rss_growth_mb",
    "cpu_per_fire_growth_percent",
    "first_failing_rate",
    # What the scenario was, not how a side did.
    "jobs",
    "nodes",
    "seconds",
    "interval_seconds",
    "window_seconds",
    "expected_fires",
    "processes_executing",
    "nodes_executing_at_sustained",
}


def code_version() -> str:
    """The commit measured (and whether the tree had changes), and the versions the figures depend on."""
    git = ["git", "-C", str(REPO_ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout.strip()
    return (
        f"cronkeeper {commit.strip() or 'unknown commit'}{' with uncommitted changes' if dirty else ''}, "
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {metadata.version('sqlalchemy')}, "
        f"APScheduler {metadata.version('apscheduler')}"
    )


def machine() -> str:
    freq = psutil.cpu_freq()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        f"{f' @ {freq.max:.0f} MHz' if freq and freq.max else ''}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


@dataclass(frozen=True, slots=True)
class Side:
    """One column of the table: the function that runs the scenario, and the interpreter it runs in."""

    label: str
    module: str
    function: str
    #: None: the bench's own interpreter.  Another one runs with only the repository root on its path.
    python: str | None = None
    #: Header of the cronkeeper-against-this-side ratio column that follows this column; None: no ratio.
    ratio: str | None = None


def sides(name: str, aps4_python: str | None, cronkeeper_only: bool = False) -> list[Side]:
    """The columns of ``name``: cronkeeper first, then APScheduler 3, APScheduler 4 if asked, the extra;
    cronkeeper alone when ``cronkeeper_only`` (an hour-long soak of each side would take hours)."""
    function = name.replace("-", "_")
    if cronkeeper_only:
        return [Side("cronkeeper", "cronkeeper_side", function)]
    chosen = [
        Side("cronkeeper", "cronkeeper_side", function),
        Side("APScheduler 3", "apscheduler3", function, ratio="ratio"),
    ]
    if aps4_python and name not in NO_APS4:
        chosen.append(Side(APS4_LABEL, "apscheduler4", function, python=aps4_python, ratio="ratio 4"))
    if name in EXTRA:
        label, module, extra = EXTRA[name]
        chosen.append(Side(label, module, extra))
    return chosen


def run(
    name: str, small: bool, repeat: int, aps4_python: str | None = None, cronkeeper_only: bool = False
) -> None:
    """``repeat`` runs of each side, taken in turn so that any drift of the machine falls on every side
    alike; each run's figures, then the median of each figure with its range."""
    full, quick = SIZES[name]
    sizes = quick if small else full
    columns = sides(name, aps4_python, cronkeeper_only)
    print(f"\n== {name} {sizes}, {repeat} run(s) of each, each in a process of its own")
    results, failed = _take_runs(columns, sizes, repeat)
    absent = aps4_python is not None and name in NO_APS4
    if absent:
        print(f"  {APS4_LABEL}: n/a, no side for this scenario (bench/apscheduler4.py says why)")
    _table(columns, results, aps4_absent=absent)
    for label, reasons in failed.items():
        if reasons:
            print(
                f"{label}: {len(reasons)} of {repeat} runs failed and do not count "
                f"(its column is the median of the others, if any): {reasons[0]}"
            )
    ours = results["cronkeeper"]
    extra = results.get(EXTRA[name][0], []) if name in EXTRA else []
    if "rate" in sizes:
        _against_sqlite(sizes, ours, extra)
    if name == "postgres-nodes" and extra:
        several, one = (_median(runs, "sustained_fires_per_second") for runs in (ours, extra))
        if any(run["capped"] for run in ours + extra):
            print("a side held every rate up to the top: no ratio (raise top_rate)")
        elif one:
            print(f"{sizes['nodes']} nodes sustain {several / one:.2f} times the rate of 1 node")


def _take_runs(
    columns: list[Side], sizes: dict[str, Any], repeat: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """Every side ``repeat`` times, in turn: the figures of the runs that worked, and why the others
    failed.  A baseline that breaks under the load is a result, not a broken bench: its failed runs do not
    count and its column is the median of the others; cronkeeper's own runs must all work."""
    results: dict[str, list[dict[str, Any]]] = {side.label: [] for side in columns}
    failed: dict[str, list[str]] = {side.label: [] for side in columns}
    for number in range(1, repeat + 1):
        for side in columns:
            try:
                figures = _run_alone(side.module, side.function, sizes, side.python)
            except BenchFailure as exc:
                if side.module not in BASELINES:
                    raise
                failed[side.label].append(str(exc).splitlines()[-1][:300])
                print(f"  run {number}, {side.label}: FAILED, does not count: {failed[side.label][-1]}")
                continue
            results[side.label].append(figures)
            print(f"  run {number}, {side.label}: {_brief(figures)}", flush=True)
    return results, failed


def _table(columns: list[Side], results: dict[str, list[dict[str, Any]]], *, aps4_absent: bool) -> None:
    """Median (min..max) of each figure for every side, each ratio column after the side it compares.

    ``aps4_absent``: APScheduler 4 was asked for but has no side in this scenario, so its column is
    printed with n/a in every row, after APScheduler 3's ratio, where it stands in the other scenarios.
    """
    ours = results["cronkeeper"]
    cells: list[tuple[str, int]] = [("cronkeeper", 24)]
    for side in columns[1:]:
        cells.append((side.label, 24))
        if side.ratio:
            cells.append((side.ratio, max(8, len(side.ratio))))
        if aps4_absent and side.label == "APScheduler 3":
            cells.append((APS4_LABEL, 24))
    print(f"{'figure':24} " + " ".join(f"{header:>{width}}" for header, width in cells))
    for key in ours[0]:
        mine = _median(ours, key)
        row = [_spread(ours, key)]
        for side in columns[1:]:
            theirs = results[side.label]
            known = bool(theirs) and all(key in figures for figures in theirs)
            row.append(_spread(theirs, key) if known else "")
            if side.ratio:
                row.append(_ratio(key, mine, _median(theirs, key)) if known else "")
            if aps4_absent and side.label == "APScheduler 3":
                row.append("n/a")
        print(
            f"{key:24} " + " ".join(f"{cell:>{width}}" for cell, (_, width) in zip(row, cells, strict=True))
        )


def _run_alone(
    module: str, function: str, sizes: dict[str, Any], python: str | None = None
) -> dict[str, Any]:
    """One run of one side in a new interpreter (bench.one says why); its figures, or BenchFailure.

    ``python`` is another interpreter (APScheduler 4's virtualenv): it runs from the repository root with
    only that root on its path, so it imports ``bench`` from this tree and nothing of this environment.
    """
    command = [python or sys.executable, "-m", "bench.one", module, function, json.dumps(sizes)]
    cwd, env = (REPO_ROOT, {**os.environ, "PYTHONPATH": str(REPO_ROOT)}) if python else (None, None)
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    if done.returncode:
        said = done.stderr.strip()[-2000:]
        raise BenchFailure(f"{module}.{function} exited with {done.returncode}: {said}")
    try:
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise BenchFailure(f"{module}.{function} printed no figures ({exc}): {done.stdout[-2000:]}") from exc
    if "Traceback" in done.stderr:
        # The schedulers catch what fails in their threads and go on; a run that logged a traceback (a
        # history row not written, a pass of the loop lost) must not count.
        raise BenchFailure(f"{module}.{function} logged an error: {done.stderr.strip()[-2000:]}")
    return figures


def aps4_version(python: str) -> str:
    """The APScheduler version ``python`` imports, or BenchFailure: a wrong interpreter must not get a
    column labelled APScheduler 4."""
    probe = "import importlib.metadata as m; print(m.version('apscheduler'))"
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BenchFailure(f"cannot run the APScheduler 4 interpreter {python}: {exc}") from exc
    version = done.stdout.strip()
    if done.returncode or not version.startswith("4."):
        raise BenchFailure(f"{python} has no APScheduler 4 (found {version or done.stderr.strip()[-300:]!r})")
    return version


def _against_sqlite(sizes: dict[str, Any], ours: list[dict[str, Any]], extra: list[dict[str, Any]]) -> None:
    """The physical limit of the scenario, measured in the same run: SQLite's own rate for the same rows."""
    limit = sqlite_limit.runs_per_second()
    fires = sqlite_limit.fire_writes_per_second()
    print(
        f"SQLite alone inserts and finishes {limit:,.0f} runs/s in batches of 500 (bench.sqlite_limit); "
        f"with each job advanced too, {fires:,.0f} fires/s: {1e6 / fires:.1f} µs of SQLite per fire;"
    )
    for label, runs in (("one process", ours), ("two processes", extra)):
        if runs:
            rate = statistics.median(run["executed_fires"] for run in runs) / sizes["seconds"]
            print(f"  cronkeeper, {label}: {rate:,.0f} executed fires/s, {100 * rate / limit:.1f} % of it")


def _brief(figures: dict[str, Any]) -> str:
    shown = (
        "percent_executed",
        "percent_on_time",
        "lateness_p99_ms",
        "cpu_us_per_fire",
        "add_seconds",
        "rss_growth_mb",
        "cpu_per_fire_growth_percent",
        "sustained_fires_per_second",
        "steps",
    )
    return ", ".join(f"{key} {_fmt(figures[key])}" for key in shown if key in figures)


def _median(runs: list[dict[str, Any]], key: str) -> Any:
    """The median of a numeric figure (NaN if any run gave NaN: a median over it would depend on the order
    of the runs); the value of another when every run gave the same, else None (no single value)."""
    values = [run[key] for run in runs]
    if not all(_numeric(value) for value in values):
        return values[0] if all(value == values[0] for value in values) else None
    if any(math.isnan(value) for value in values):
        return math.nan
    return statistics.median(values)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _spread(runs: list[dict[str, Any]], key: str) -> str:
    """``median (min..max)``; a single value when every run gave the same; every run's value, in order,
    for a figure that is not a number and differs between runs, or when a run gave NaN."""
    middle = _median(runs, key)
    values = [run[key] for run in runs]
    if middle is None or (_numeric(middle) and math.isnan(middle)):
        return " | ".join(_fmt(value) for value in values)
    if not _numeric(middle) or min(values) == max(values):
        return _fmt(middle)
    return f"{_fmt(middle)} ({_fmt(min(values))}..{_fmt(max(values))})"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _ratio(key: str, ours: Any, theirs: Any) -> str:
    if not _numeric(ours) or not _numeric(theirs) or math.isnan(ours) or math.isnan(theirs):
        return ""
    if key in NO_RATIO:
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
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (median and range shown)")
    parser.add_argument(
        "--aps4-python",
        default=os.environ.get(APS4_PYTHON_VARIABLE) or None,
        metavar="PATH",
        help=f"python of a venv with APScheduler 4.0a6, for its column (default: ${APS4_PYTHON_VARIABLE})",
    )
    parser.add_argument(
        "--cronkeeper-only", action="store_true", help="no APScheduler column (for the hour-long soak)"
    )
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"code: {code_version()}")
    if args.repeat < 3:
        print(
            f"{args.repeat} run(s) of each side: a check, not figures to record (those are medians of three)"
        )
    try:
        if args.aps4_python:
            print(f"{APS4_LABEL}: APScheduler {aps4_version(args.aps4_python)} run by {args.aps4_python}")
        else:
            print(
                f"{APS4_LABEL}: no column; to add it, pass --aps4-python PATH or set {APS4_PYTHON_VARIABLE} "
                "to the python of a virtualenv with apscheduler==4.0.0a6 (see bench/apscheduler4.py)"
            )
        chosen = [name for name in SIZES if name not in LONG] if args.scenario == "all" else [args.scenario]
        for name in chosen:
            run(name, args.small, args.repeat, args.aps4_python, args.cronkeeper_only)
    except BenchFailure as exc:
        print(f"\nBENCH FAILED, no figure of this run counts: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
