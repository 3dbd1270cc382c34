"""``cronkeeper exec JOB -- COMMAND…``: run a command where it is (a crontab line, a container, a CI step)
and record it as a run of a check-in job: start, end, exit status, output tail, duration, host.

The command comes first: it starts at once, its standard output and error go where they would have gone
(this process's), and its exit status is passed through, whatever happens to the recording, which goes on
beside it in a thread of its own.  A database that is slow, locked or gone costs the job nothing: at the end
the recording gets a few seconds to finish, then is given up, said on stderr.  While the command runs this
process heartbeats as a node, so that a ``kill -9`` of it leaves a run the scheduler's nodes mark ``lost``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from types import FrameType
from typing import IO

import click

from cronkeeper.cli.context import AppContext, pass_app
from cronkeeper.exceptions import CronkeeperError
from cronkeeper.executors.output import TailBuffer
from cronkeeper.services.runs import RunService

# What a shell answers for a command it cannot find or cannot run.
NOT_FOUND, NOT_RUNNABLE = 127, 126
OUTPUT_LIMIT = 64 * 1024
# How long the end of a run may take to record once the command is done, before it is given up (the default
# of --record-timeout).
RECORD_GRACE = 10.0


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--record-timeout",
    type=click.FloatRange(0, 3600),
    default=RECORD_GRACE,
    show_default=True,
    help="Seconds to wait, once COMMAND is done, for the database to take its end before giving up.",
)
@click.argument("job_id")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@pass_app
def exec_command(app: AppContext, record_timeout: float, job_id: str, command: tuple[str, ...]) -> None:
    """Run COMMAND and record it as a run of the check-in job JOB_ID; exits with COMMAND's status.

    \b
    In a crontab:  0 3 * * *  cronkeeper exec backup -- /usr/local/bin/backup --all
    """
    argv = list(command[1:] if command[0] == "--" else command)
    if not argv:
        raise click.UsageError("give the command to run after --")
    recorder = Recorder(app, job_id)
    recorder.start()
    status, output, duration = run_command(argv, beat=recorder.keep_alive, every=lambda: recorder.heartbeat)
    recorder.finish(status, output.text(), duration, wait=record_timeout)
    raise click.exceptions.Exit(status)


class Recorder:
    """The recording side, in a thread beside the command: the run's start, the node's heartbeats, its end."""

    def __init__(self, app: AppContext, job_id: str) -> None:
        self._app = app
        self._job_id = job_id
        self._node = f"exec:{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._runs: RunService | None = None
        self._close: Callable[[], None] = lambda: None
        self._run_id: int | None = None
        self._opened = threading.Thread(target=self._open, name="cronkeeper-exec-record", daemon=True)
        self.heartbeat = 5.0

    def start(self) -> None:
        self._opened.start()

    def _open(self) -> None:
        try:
            config = self._app.config
            self.heartbeat = config.settings.heartbeat_interval.total_seconds()
            scheduler = self._app.unmanaged_scheduler()
            self._close = scheduler.close
            runs = scheduler.run_service
            runs.keep_alive(self._node, hostname=socket.gethostname(), pid=os.getpid())
            run = runs.check_in(self._job_id, "start", by=f"exec@{socket.gethostname()}", owner=self._node)
        except CronkeeperError as exc:
            click.echo(f"cronkeeper exec: not recording this run: {exc}", err=True)
            return
        self._runs, self._run_id = runs, run.id

    def keep_alive(self) -> None:
        if self._runs is not None:
            with contextlib.suppress(CronkeeperError):
                self._runs.keep_alive(self._node, hostname=socket.gethostname(), pid=os.getpid())

    def finish(self, status: int, output: str, duration: timedelta, *, wait: float) -> None:
        """Record the end, giving the database ``wait`` seconds at most."""
        done = threading.Thread(
            target=self._finish, args=(status, output, duration), name="cronkeeper-exec-end", daemon=True
        )
        done.start()
        done.join(wait)
        if done.is_alive():
            click.echo("cronkeeper exec: the database did not answer; this run is not recorded", err=True)

    def _finish(self, status: int, output: str, duration: timedelta) -> None:
        self._opened.join()
        runs = self._runs
        if runs is None:
            return
        event = "success" if status == 0 else "fail"
        try:
            runs.check_in(self._job_id, event, run_id=self._run_id, exit_code=status, output=output)
            runs.sign_off(self._node)
        except CronkeeperError as exc:
            click.echo(f"cronkeeper exec: could not record the end of run {self._run_id}: {exc}", err=True)
        finally:
            self._close()


def run_command(
    argv: Sequence[str], *, beat: Callable[[], None], every: Callable[[], float]
) -> tuple[int, TailBuffer, timedelta]:
    """Run ``argv`` with its standard output and error copied to ours (each to its own) and their tail kept
    together; returns its exit status (128 + N for a signal N, as a shell says), the tail and how long it
    ran.  ``beat`` is called every ``every()`` seconds while it runs."""
    output = TailBuffer(OUTPUT_LIMIT)
    started = time.monotonic()
    try:
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        output.append(f"cronkeeper exec: {argv[0]}: command not found\n".encode())
        return NOT_FOUND, output, timedelta(0)
    except PermissionError:
        output.append(f"cronkeeper exec: {argv[0]}: permission denied\n".encode())
        return NOT_RUNNABLE, output, timedelta(0)
    assert child.stdout is not None and child.stderr is not None
    copies = [
        threading.Thread(target=_copy, args=(child.stdout, sys.stdout.buffer, output), daemon=True),
        threading.Thread(target=_copy, args=(child.stderr, sys.stderr.buffer, output), daemon=True),
    ]
    for copy in copies:
        copy.start()
    with _forwarding_signals(child):
        while True:
            try:
                code = child.wait(timeout=every())
                break
            except subprocess.TimeoutExpired:
                beat()
        for copy in copies:
            copy.join()
    return (128 - code if code < 0 else code), output, timedelta(seconds=time.monotonic() - started)


def _copy(source: IO[bytes], sink: IO[bytes], tail: TailBuffer) -> None:
    """Copy one of the command's outputs to ours and into the tail.  A reader that went away (``| head``)
    stops the copying, never the reading: the command is not blocked, and its tail is still kept."""
    pipe, copying = source.fileno(), True
    for chunk in iter(lambda: os.read(pipe, 65536), b""):
        tail.append(chunk)
        if copying:
            try:
                sink.write(chunk)
                sink.flush()
            except OSError:  # a broken pipe: this output goes nowhere from now on, quietly
                copying = False
                with contextlib.suppress(OSError):
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sink.fileno())


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
