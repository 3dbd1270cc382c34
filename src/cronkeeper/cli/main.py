"""``cronkeeper``: global options, error reporting, and the subcommand groups."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cronkeeper.cli.apscheduler import import_apscheduler
from cronkeeper.cli.audit import audit
from cronkeeper.cli.channels import channels, notifications
from cronkeeper.cli.context import AppContext
from cronkeeper.cli.crontab import import_crontab
from cronkeeper.cli.db import db
from cronkeeper.cli.exec import exec_command
from cronkeeper.cli.jobs import jobs
from cronkeeper.cli.next import next_command
from cronkeeper.cli.runs import runs
from cronkeeper.cli.serve import serve
from cronkeeper.cli.tokens import tokens
from cronkeeper.cli.users import users
from cronkeeper.exceptions import (
    CronkeeperError,
    JobExistsError,
    JobNotFoundError,
    NotFoundError,
    RunNotFoundError,
    ValidationError,
)

EXIT_NOT_FOUND = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--db",
    "db_url",
    envvar="CRONKEEPER_DB",
    metavar="URL",
    help="Database URL [env CRONKEEPER_DB; default sqlite:///cronkeeper.db].",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Configuration file [default: cronkeeper.toml when present].",
)
@click.version_option(package_name="cronkeeper")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, config_path: Path | None) -> None:
    """cronkeeper: scheduled jobs with a memory."""
    ctx.obj = AppContext(db_url, config_path)


cli.add_command(serve)
cli.add_command(next_command)
cli.add_command(jobs)
cli.add_command(runs)
cli.add_command(users)
cli.add_command(tokens)
cli.add_command(audit)
cli.add_command(import_crontab)
cli.add_command(import_apscheduler)
cli.add_command(db)
cli.add_command(channels)
cli.add_command(notifications)
cli.add_command(exec_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: domain errors become one line on standard error and an exit status."""
    status = run(cli.main, argv)
    if status == EXIT_INTERRUPTED:
        # Die of the signal rather than exit with its number: a shell running a loop of commands stops
        # the loop only when the command itself was killed by Ctrl-C.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.exit(status)


def run(command: Callable[..., Any], argv: list[str] | None) -> int:
    try:
        # Without standalone mode, click returns the status of a `raise click.exceptions.Exit(n)`.
        status = command(args=argv, prog_name="cronkeeper", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # Ctrl-C, while a command runs (click raises Abort from it) or at a prompt (Abort from None).
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except ValidationError as exc:
        click.echo(f"error: {exc.field}: {exc.reason}", err=True)
        return EXIT_INVALID
    except JobExistsError as exc:
        click.echo(f"error: id: {exc}", err=True)
        return EXIT_INVALID
    except (JobNotFoundError, RunNotFoundError, NotFoundError) as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_NOT_FOUND
    except CronkeeperError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    return status if isinstance(status, int) else 0
