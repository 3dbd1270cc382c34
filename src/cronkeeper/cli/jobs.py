"""``cronkeeper jobs``: list, show, add, edit, pause, resume, remove and trigger jobs."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from cronkeeper.cli.context import CLI_VIA, AppContext, instant_option, os_user, pass_app
from cronkeeper.cli.output import console, print_json, seconds, table, when
from cronkeeper.exceptions import ValidationError
from cronkeeper.models import Job
from cronkeeper.serialize import job_to_json, schedule_text
from cronkeeper.store.records import JobStats, RecentRun, RunMark, stats_report_to_json

F = TypeVar("F", bound=Callable[..., Any])

# (option flags, key in the job definition, click keyword arguments); shared by `add` and `edit`.
JOB_OPTIONS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("--cron",), "cron", {"metavar": "EXPR", "help": "Cron schedule (5 fields or an @alias)."}),
    (("--every",), "every", {"metavar": "DURATION", "help": "Interval schedule, e.g. 30s, 5m, 1h30m."}),
    (("--at",), "at", {"metavar": "ISO", "help": "Run once at this instant."}),
    (("--seconds/--no-seconds",), "seconds", {"default": None, "help": "Cron has a leading seconds field."}),
    (("--tz", "--timezone"), "timezone", {"metavar": "ZONE", "help": "IANA time zone of the schedule."}),
    (("--start",), "start", {"metavar": "ISO", "help": "Do not fire before this instant."}),
    (("--end",), "end", {"metavar": "ISO", "help": "Do not fire after this instant."}),
    (("--jitter",), "jitter", {"metavar": "DURATION", "help": "Random delay added to each fire."}),
    (
        ("--command",),
        "command",
        {"metavar": "CMD", "help": "Program and arguments (split like a shell, but run without one)."},
    ),
    (("--shell/--no-shell",), "shell", {"default": None, "help": "Run --command through /bin/sh -c."}),
    (("--call",), "call", {"metavar": "MODULE:FUNC", "help": "Python function to call."}),
    (
        ("--checkin/--no-checkin",),
        "checkin",
        {"default": None, "help": "A job that runs elsewhere and reports its runs (cronkeeper exec)."},
    ),
    (("--args",), "args", {"metavar": "JSON", "help": "JSON list of positional arguments for --call."}),
    (("--kwargs",), "kwargs", {"metavar": "JSON", "help": "JSON object of keyword arguments for --call."}),
    (("--isolate/--no-isolate",), "isolate", {"default": None, "help": "Run --call in a child process."}),
    (("--env",), "env", {"metavar": "KEY=VALUE", "multiple": True, "help": "Environment for --command."}),
    (("--cwd",), "cwd", {"metavar": "DIR", "help": "Working directory for --command."}),
    (("--name",), "name", {"help": "Display name."}),
    (("--description",), "description", {"help": "What the job is for."}),
    (("--tag",), "tags", {"multiple": True, "help": "A tag (repeatable)."}),
    (("--timeout",), "timeout", {"metavar": "DURATION", "help": "Kill or abandon a run after this long."}),
    (("--max-retries",), "max_retries", {"type": int, "help": "Retries after a failure or timeout."}),
    (("--retry-base",), "retry_base", {"metavar": "DURATION", "help": "First retry delay [1s]."}),
    (("--retry-factor",), "retry_factor", {"type": float, "help": "Backoff factor [2]."}),
    (("--retry-cap",), "retry_cap", {"metavar": "DURATION", "help": "Longest retry delay [30s]."}),
    (("--retry-jitter",), "retry_jitter", {"type": float, "help": "Random spread of retry delays [0.1]."}),
    (
        ("--overlap",),
        "overlap",
        {
            "type": click.Choice(["allow", "forbid", "replace"]),
            "help": "When a run is due while another is active.",
        },
    ),
    (("--max-instances",), "max_instances", {"type": int, "help": "Concurrent runs with --overlap allow."}),
    (
        ("--misfire-grace",),
        "misfire_grace",
        {"metavar": "DURATION", "help": "How late a fire may start [60s]."},
    ),
    (
        ("--catchup",),
        "catchup",
        {
            "type": click.Choice(["once", "skip", "all"]),
            "help": "What to do with fires missed beyond the grace.",
        },
    ),
    (("--output-limit",), "output_limit", {"type": int, "help": "Bytes of output kept (the tail)."}),
    (
        ("--notify",),
        "notify",
        {"metavar": "CHANNELS", "help": "Channels told of incidents, comma-separated ('' for none)."},
    ),
    (
        ("--notify-on",),
        "notify_on",
        {"metavar": "KINDS", "help": "Alert kinds, comma-separated (failed,timed_out,lost,…,succeeded)."},
    ),
    (
        ("--long-running",),
        "long_running",
        {"metavar": "DURATION|Nx", "help": "Alert a run going longer than this, or N times the median."},
    ),
    (("--notify-after",), "notify_after", {"type": int, "help": "Bad runs in a row before alerting [1]."}),
    (
        ("--notify-every-failure/--notify-once",),
        "notify_every_failure",
        {"default": None, "help": "Alert every bad run, or once per incident [once]."},
    ),
]
_PARAM_NAMES = {key: key for _, key, _ in JOB_OPTIONS}


def job_options(func: F) -> F:
    for flags, key, kwargs in reversed(JOB_OPTIONS):
        func = click.option(*flags, key, **kwargs)(func)
    return func


def definition(options: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave, as a job definition (the same shape as a TOML [[jobs]] table)."""
    data: dict[str, Any] = {}
    for key in _PARAM_NAMES:
        value = options.get(key)
        if value is None or value == ():
            continue
        if key in ("args", "kwargs"):
            value = _json_option(key, value)
        elif key == "env":
            value = _env_option(value)
        elif key == "tags":
            value = list(value)
        data[key] = value
    return data


def _json_option(key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(key, f"is not valid JSON: {exc}") from None


def _env_option(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValidationError("env", f"{pair!r} is not KEY=VALUE")
        env[name] = value
    return env


@click.group()
def jobs() -> None:
    """Define and control jobs."""


@jobs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_app
def list_jobs(app: AppContext, as_json: bool) -> None:
    """Every job with its schedule, its last run and its next run."""
    scheduler = app.scheduler()
    found = scheduler.jobs()
    recent = scheduler.dashboard.recent_runs([job.id for job in found], per_job=1)
    last = {job_id: runs[0] for job_id, runs in recent.items() if runs}
    if as_json:
        print_json([{**job_to_json(job), "last_run": _last_json(last.get(job.id))} for job in found])
        return
    out = table("ID", "SCHEDULE", "STATE", "LAST RUN (UTC)", "NEXT RUN (UTC)", "TARGET")
    for job in found:
        out.add_row(
            job.id,
            schedule_text(job.spec.trigger),
            _state(job),
            _last_text(last.get(job.id)),
            when(job.next_due_at),
            _target(job),
        )
    console.print(out)


def _last_text(run: RecentRun | None) -> str:
    return "-" if run is None else f"{run.status.value} {when(run.at)}"


def _last_json(run: RecentRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "status": run.status.value,
        "at": run.at.isoformat(),
        "duration_seconds": run.seconds,
    }


def _state(job: Job) -> str:
    if not job.enabled:
        return "disabled"
    return "paused" if job.paused else "active"


def _target(job: Job) -> str:
    spec = job_to_json(job)["spec"]
    if "command" in spec:
        command = spec["command"]
        return command if isinstance(command, str) else " ".join(command)
    if spec.get("checkin"):
        return "(runs elsewhere: check-ins)"
    return str(spec["call"])


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_app
def show_job(app: AppContext, job_id: str, as_json: bool) -> None:
    """One job in full."""
    data = job_to_json(app.scheduler().get_job(job_id))
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key != "spec":
            click.echo(f"{key:22} {value}")
    for key, value in data["spec"].items():
        if key not in ("id", "name"):
            click.echo(f"{key:22} {value}")


@jobs.command("add")
@click.argument("job_id")
@job_options
@click.option("--paused", is_flag=True, help="Create the job paused.")
@click.option("--json", "as_json", is_flag=True, help="Print the new job as JSON.")
@pass_app
def add_job(app: AppContext, /, job_id: str, paused: bool, as_json: bool, **options: Any) -> None:
    """Create a job: one of --cron/--every/--at, and --command, --call or --checkin."""
    data = {"id": job_id, **definition(options)}
    service = app.scheduler().service
    job = service.add_job(data, by=os_user(), origin="cli", paused=paused, via=CLI_VIA)
    _report(job, "added", as_json)
    _warn(app, job)


@jobs.command("edit")
@click.argument("job_id")
@job_options
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@pass_app
def edit_job(app: AppContext, /, job_id: str, as_json: bool, **options: Any) -> None:
    """Change options of a job; a new schedule takes effect from now."""
    changes = definition(options)
    if not changes:
        raise ValidationError("options", "nothing to change; give at least one option")
    service = app.scheduler().service
    job = service.edit_job(job_id, changes, by=os_user(), via=CLI_VIA)
    _report(job, "updated", as_json)
    _warn(app, job)


def _warn(app: AppContext, job: Job) -> None:
    """What the job was saved despite: a function this process cannot import, channels that do not exist."""
    scheduler = app.scheduler()
    # What the module prints when imported goes to stderr: stdout may be JSON for a program to read.
    with contextlib.redirect_stdout(sys.stderr):
        problem = scheduler.service.target_problem(job.spec)
    if problem is not None:
        click.echo(f"warning: call: {problem}", err=True)
    for name in scheduler.alerts.missing_channels(job.spec.notify):
        click.echo(f"warning: notify: there is no channel named {name!r}: alerts to it will fail", err=True)


def _report(job: Job, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(job_to_json(job))
    else:
        click.echo(f"{verb} {job.id}: {job.spec.trigger.describe()}; next run {when(job.next_due_at)}")


@jobs.command("pause")
@click.argument("job_id")
@pass_app
def pause_job(app: AppContext, job_id: str) -> None:
    """Stop firing a job until it is resumed."""
    app.scheduler().service.pause(job_id, by=os_user(), via=CLI_VIA)
    click.echo(f"paused {job_id}")


@jobs.command("resume")
@click.argument("job_id")
@pass_app
def resume_job(app: AppContext, job_id: str) -> None:
    """Fire a paused job again, from its next fire after now."""
    job = app.scheduler().service.resume(job_id, by=os_user(), via=CLI_VIA)
    click.echo(f"resumed {job_id}; next run {when(job.next_due_at)}")


@jobs.command("remove")
@click.argument("job_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def remove_job(app: AppContext, job_id: str, yes: bool) -> None:
    """Delete a job and its history."""
    scheduler = app.scheduler()
    scheduler.get_job(job_id)
    if not yes:
        click.confirm(f"Delete job {job_id} and all its runs?", abort=True)
    scheduler.service.remove(job_id, by=os_user(), via=CLI_VIA)
    click.echo(f"removed {job_id}")


@jobs.command("trigger")
@click.argument("job_id")
@click.option("--as", "triggered_by", metavar="USER", help="Who asked [default: the current user].")
@click.option("--json", "as_json", is_flag=True, help='Print {"run_id": N}.')
@pass_app
def trigger_job(app: AppContext, job_id: str, triggered_by: str | None, as_json: bool) -> None:
    """Queue a run now; a running `cronkeeper serve` on the same database picks it up."""
    scheduler = app.scheduler()
    run_id = scheduler.run_service.trigger(job_id, triggered_by=triggered_by or os_user(), via=CLI_VIA)
    if as_json:
        print_json({"run_id": run_id})
        return
    click.echo(f"queued run {run_id} of {job_id}")
    live = scheduler.status.count_live_nodes(now=scheduler.clock.now(), lease=scheduler.settings.lease)
    if not live:
        click.echo(
            "note: no scheduler is running on this database; the run starts when one does (cronkeeper serve)",
            err=True,
        )


@jobs.command("stats")
@click.argument("job_ids", nargs=-1, metavar="[JOB_ID]...")
@click.option(
    "--since",
    callback=instant_option,
    metavar="WHEN",
    help="Runs scheduled for this instant or later: ISO-8601 (UTC without an offset), or 24h, 7d… "
    "[default: the first run].",
)
@click.option(
    "--until", callback=instant_option, metavar="WHEN", help="Runs scheduled for before this instant."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the API's /api/stats shape).")
@pass_app
def job_stats(
    app: AppContext,
    job_ids: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Runs, success rate, durations, last success and last failure of each job (every job unless named),
    over the runs scheduled for the window."""
    found = app.scheduler().stats(list(job_ids) or None, since=since, until=until)
    if as_json:
        print_json(stats_report_to_json(found.values(), since, until))
        return
    out = table(
        "JOB", "RUNS", "OK", "FAILED", "SUCCESS", "MEDIAN", "P95", "MAX", "LAST SUCCESS", "LAST FAILURE"
    )
    for stats in found.values():
        out.add_row(
            stats.job_id,
            str(stats.total),
            str(stats.succeeded),
            str(stats.failures),
            _percent(stats),
            seconds(stats.median_seconds),
            seconds(stats.p95_seconds),
            seconds(stats.max_seconds),
            _mark(stats.last_success),
            _mark(stats.last_failure),
        )
    console.print(out)


def _percent(stats: JobStats) -> str:
    rate = stats.success_rate
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _mark(mark: RunMark | None) -> str:
    if mark is None:
        return "-"
    text = f"{when(mark.at)} (run {mark.run_id})"
    return f"{text}: {mark.error[:60]}" if mark.error else text
