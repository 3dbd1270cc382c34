"""``cronkeeper runs``: the history."""

from __future__ import annotations

from datetime import datetime

import click

from cronkeeper.cli.context import AppContext, instant_option, pass_app
from cronkeeper.cli.output import console, print_json, seconds, table, when
from cronkeeper.models import Run, RunStatus
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
        click.echo(f"{key:18} {value}")
    if trace:
        click.echo("--- traceback ---")
        click.echo(trace.rstrip())
    if output:
        click.echo("--- output ---")
        click.echo(output.rstrip())
