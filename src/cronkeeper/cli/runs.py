"""``cronkeeper runs``: the history."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import click

from cronkeeper.cli.context import CLI_VIA, AppContext, instant_option, os_user, pass_app
from cronkeeper.cli.output import console, print_json, seconds, table, when
from cronkeeper.executors.output import split_marker
from cronkeeper.models import Run, RunStatus, exit_code_text
from cronkeeper.serialize import run_to_json

STATUSES = [status.value for status in RunStatus]


@click.group()
def runs() -> None:
    """Inspect run history."""


@runs.command("list")
@click.option("--job", "job_id", metavar="ID", help="Only runs of this job.")
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only these (repeatable)."
)
@click.option(
    "--since",
    callback=instant_option,
    metavar="WHEN",
    help="Only runs scheduled for this instant or later: ISO-8601 (UTC without an offset), or 24h, 7d…",
)
@click.option(
    "--until", callback=instant_option, metavar="WHEN", help="Only runs scheduled for before this instant."
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--before", "before_id", type=int, metavar="RUN_ID", help="Continue below this run id (paging)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (without output).")
@pass_app
def list_runs(
    app: AppContext,
    job_id: str | None,
    statuses: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    before_id: int | None,
    as_json: bool,
) -> None:
    """Runs, newest first; --since and --until bound the instant each run was scheduled for."""
    found = app.scheduler().runs(
        job_id=job_id,
        status=statuses or None,
        since=since,
        until=until,
        limit=limit,
        before_id=before_id,
    )
    if as_json:
        print_json([run_to_json(run, with_output=False) for run in found])
        return
    out = table("RUN", "JOB", "STATUS", "SOURCE", "SCHEDULED (UTC)", "DURATION", "ERROR")
    for run in found:
        out.add_row(
            str(run.id),
            run.job_id,
            run.status.value,
            _source(run),
            when(run.scheduled_for),
            _duration(run),
            (run.error or "")[:80],
        )
    console.print(out)


def _source(run: Run) -> str:
    return (
        f"{run.trigger_source.value} ({run.triggered_by})" if run.triggered_by else run.trigger_source.value
    )


def _duration(run: Run) -> str:
    duration = run.duration
    return seconds(None if duration is None else duration.total_seconds())


@runs.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object, output included.")
@pass_app
def show_run(app: AppContext, run_id: int, as_json: bool) -> None:
    """One run in full, with its output."""
    data = run_to_json(app.scheduler().get_run(run_id))
    if as_json:
        print_json(data)
        return
    output, trace = data.pop("output"), data.pop("traceback")
    for key, value in data.items():
        click.echo(f"{key:18} {_shown(key, value)}")
    if trace:
        click.echo("--- traceback ---")
        click.echo(trace.rstrip())
    if output:
        click.echo("--- output ---")
        click.echo(output.rstrip())


def _shown(key: str, value: Any) -> str:
    """A field for people: durations to the millisecond, memory in MiB, a result as JSON."""
    if value is None:
        return "-"
    if key.endswith("_seconds"):
        return seconds(value)
    if key == "peak_memory_bytes":
        return f"{value / 2**20:.1f} MiB"
    if key == "result":
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@runs.command("tail")
@click.argument("run_id", type=int)
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.1, 60),
    help="Seconds between looks.",
)
@pass_app
def tail_run(app: AppContext, run_id: int, interval: float) -> int:
    """Follow a run's output as its scheduler writes it (about every second), until the run ends; exit
    status 0 if it succeeded, 1 if it did not."""
    scheduler = app.scheduler()
    shown = ""
    while True:
        run = scheduler.get_run(run_id)
        output = run.output or ""
        click.echo(unseen(shown, output), nl=False)
        shown = output
        if not run.status.is_active:
            break
        time.sleep(interval)
    ending = f"run {run_id} {run.status.value}"
    if run.exit_code is not None:
        ending += f" (exit code {exit_code_text(run.exit_code)})"
    click.echo(f"--- {ending}{': ' + run.error if run.error else ''}", err=True)
    return 0 if run.status is RunStatus.SUCCEEDED else 1


def unseen(shown: str, output: str) -> str:
    """What of ``output`` (the kept tail, now) follows ``shown`` (the tail as it was last printed).  The kept
    tail's marker counts the bytes cut from its start, so the bytes written in between are the difference of
    the totals; if more were written than the tail keeps, a marker says that some went by unseen."""
    if output.startswith(shown):
        return output[len(shown) :]
    cut_before, body_before = _tail(shown)
    cut_now, body_now = _tail(output)
    written = cut_now + len(body_now) - cut_before - len(body_before)
    if written <= 0:
        return ""
    if written > len(body_now):
        return f"\n[... output went by faster than it was followed ...]\n{body_now.decode()}"
    return body_now[-written:].decode(errors="replace")


def _tail(output: str) -> tuple[int, bytes]:
    cut, body = split_marker(output)
    return cut, body.encode()


@runs.command("cancel")
@click.argument("run_id", type=int)
@pass_app
def cancel_run(app: AppContext, run_id: int) -> None:
    """Cancel a queued or running run: a run of a `cronkeeper serve` stops at its next heartbeat (a
    command's process group is killed; a thread cannot be, and its result is then dropped)."""
    run = app.scheduler().run_service.cancel_run(run_id, by=os_user(), via=CLI_VIA)
    click.echo(f"cancelling run {run_id} of {run.job_id} ({run.status.value})")
