"""``cronkeeper exec JOB -- COMMAND…``: run a command where it is (a crontab line, a container, a CI step)
and record it as a run of a check-in job: start, end, exit status, output tail, duration, host.

The command always runs and its exit status is passed through, whatever happens to the recording: a job
must not fail because its monitoring is down.  Its output goes where it would have gone (this process's
standard output) and its tail into the run.  While it runs this process heartbeats as a node, so that a
``kill -9`` of it leaves a run the scheduler's nodes mark ``lost``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.exceptions import CronkeeperError
from cronkeeper.executors.output import TailBuffer
from cronkeeper.services.runs import RunService

# What a shell answers for a command it cannot find or cannot run.
NOT_FOUND, NOT_RUNNABLE = 127, 126
OUTPUT_LIMIT = 64 * 1024


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("job_id")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@pass_app
def exec_command(app: AppContext, job_id: str, command: tuple[str, ...]) -> None:
    """Run COMMAND and record it as a run of the check-in job JOB_ID; exits with COMMAND's status.

    \b
    In a crontab:  0 3 * * *  cronkeeper exec backup -- /usr/local/bin/backup --all
    """
    argv = list(command[1:] if command[0] == "--" else command)
    if not argv:
        raise click.UsageError("give the command to run after --")
    reporter = Reporter.open(app, job_id)
    status, output = run_command(argv, keep_alive=reporter.keep_alive if reporter else None)
    if reporter is not None:
        reporter.finish(status, output.text())
    raise click.exceptions.Exit(status)


class Reporter:
    """The recording side: the run, and the node that keeps it alive."""

    def __init__(self, runs: RunService, job_id: str, run_id: int, node: str) -> None:
        self.runs, self.job_id, self.run_id, self.node = runs, job_id, run_id, node

    @classmethod
    def open(cls, app: AppContext, job_id: str) -> Reporter | None:
        """Start the run; None (said on stderr) when it cannot be recorded: the command runs all the same."""
        node = f"exec:{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        try:
            runs = app.scheduler().run_service
            runs.keep_alive(node, hostname=socket.gethostname(), pid=os.getpid())
            run = runs.check_in(job_id, "start", by=f"exec@{socket.gethostname()}", owner=node)
        except CronkeeperError as exc:
            click.echo(f"cronkeeper exec: not recording this run: {exc}", err=True)
            return None
        return cls(runs, job_id, run.id, node)

    def keep_alive(self) -> None:
        with contextlib.suppress(CronkeeperError):
            self.runs.keep_alive(self.node, hostname=socket.gethostname(), pid=os.getpid())

    def finish(self, status: int, output: str) -> None:
        event = "success" if status == 0 else "fail"
        try:
            self.runs.check_in(self.job_id, event, run_id=self.run_id, exit_code=status, output=output)
            self.runs.sign_off(self.node)
        except CronkeeperError as exc:
            click.echo(f"cronkeeper exec: could not record the end of run {self.run_id}: {exc}", err=True)


def run_command(
    argv: Sequence[str], *, keep_alive: Callable[[], None] | None, interval: float = 5.0
) -> tuple[int, TailBuffer]:
    """Run ``argv`` with its output copied to ours and its tail kept; returns its exit status (128 + N for
    a signal N, as a shell says) and the tail."""
    output = TailBuffer(OUTPUT_LIMIT)
    try:
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        output.append(f"cronkeeper exec: {argv[0]}: command not found\n".encode())
        return NOT_FOUND, output
    except PermissionError:
        output.append(f"cronkeeper exec: {argv[0]}: permission denied\n".encode())
        return NOT_RUNNABLE, output
    done = threading.Event()
    beats = threading.Thread(target=_beat, args=(keep_alive, done, interval), daemon=True)
    beats.start()
    with _forwarding_signals(child):
        assert child.stdout is not None
        pipe = child.stdout.fileno()
        for chunk in iter(lambda: os.read(pipe, 65536), b""):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            output.append(chunk)
        code = child.wait()
    done.set()
    return (128 - code if code < 0 else code), output


def _beat(keep_alive: Callable[[], None] | None, done: threading.Event, interval: float) -> None:
    while keep_alive is not None and not done.wait(interval):
        keep_alive()


@contextlib.contextmanager
def _forwarding_signals(child: subprocess.Popen[bytes]) -> Iterator[None]:
    """SIGTERM and SIGINT to this process go to the command, which decides how to end."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    before = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
