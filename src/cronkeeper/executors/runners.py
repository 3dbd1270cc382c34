"""The four ways to run a target.  None of them raises for a failing job: failure is an outcome."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from cronkeeper.exceptions import RunFailed
from cronkeeper.executors.output import TailBuffer
from cronkeeper.executors.process import ProcessOutcome, run_process
from cronkeeper.executors.results import to_result
from cronkeeper.models import NO_OUTCOME, CallableTarget, CommandTarget, RunOutcome, RunStatus


# Not frozen: one is made per run, and a frozen dataclass's __init__ costs three times as much.
@dataclass(slots=True)
class Execution:
    """How a run ended, before it is written down: its status and ``outcome``, which go to the store as they
    are, and what only this process's listeners get.

    ``exception`` is what an in-process job raised (or what ended the run around it).
    """

    status: RunStatus
    outcome: RunOutcome = NO_OUTCOME
    exception: BaseException | None = None
    # What an in-process job returned, as it was (``result`` is its JSON form), for this process's listeners.
    value: Any = None


def failure(exc: BaseException, status: RunStatus = RunStatus.FAILED) -> Execution:
    """An Execution for an exception raised by or around a job."""
    return Execution(
        status,
        RunOutcome(error=f"{type(exc).__name__}: {exc}", traceback="".join(traceback.format_exception(exc))),
        exception=exc,
    )


# util-linux's setpriv, which ties a command's life to the scheduler's (see dying_with_us); None elsewhere.
SETPRIV = shutil.which("setpriv") if sys.platform == "linux" else None
# The scheduler's pid, given to an isolated job's child so that it can tell whether the scheduler went before
# the child tied its life to it (executors/child.py).
PARENT_VARIABLE = "CRONKEEPER_PARENT_PID"
# The scheduler's own settings (the database URL holds its password) are not the jobs' business.
PRIVATE_VARIABLES = frozenset({"CRONKEEPER_DB", "CRONKEEPER_TEST_PG_URL"})


def child_environment() -> dict[str, str]:
    """The environment a job's process starts from: the scheduler's, less cronkeeper's own settings."""
    return {name: value for name, value in os.environ.items() if name not in PRIVATE_VARIABLES}


def chosen_failure(exc: RunFailed) -> Execution:
    """A run the job itself ended as failed (``RunFailed``), keeping the result it gave."""
    outcome = RunOutcome(error=f"RunFailed: {exc}", result=to_result(exc.result))
    return Execution(RunStatus.FAILED, outcome, exception=exc, value=exc.result)


def run_callable(func: Callable[..., Any], target: CallableTarget) -> Execution:
    """Call a sync function in the current (worker) thread."""
    try:
        value = func(*target.args, **target.kwargs)
    except RunFailed as exc:
        return chosen_failure(exc)
    except Exception as exc:
        return failure(exc)
    return Execution(RunStatus.SUCCEEDED, RunOutcome(result=to_result(value)), value=value)


async def run_coroutine(
    func: Callable[..., Coroutine[Any, Any, Any]], target: CallableTarget, timeout: timedelta | None
) -> Execution:
    """Await a coroutine function on the running loop; a timeout cancels it."""
    seconds = None if timeout is None else timeout.total_seconds()
    try:
        value = await asyncio.wait_for(func(*target.args, **target.kwargs), seconds)
    except TimeoutError as exc:
        return Execution(
            RunStatus.TIMED_OUT, RunOutcome(error=f"timed out after {seconds:g}s"), exception=exc
        )
    except asyncio.CancelledError as exc:
        return Execution(RunStatus.CANCELLED, RunOutcome(error="cancelled"), exception=exc)
    except RunFailed as exc:
        return chosen_failure(exc)
    except Exception as exc:
        return failure(exc)
    return Execution(RunStatus.SUCCEEDED, RunOutcome(result=to_result(value)), value=value)


def run_child(
    target: CallableTarget | CommandTarget,
    *,
    timeout: timedelta | None,
    output: TailBuffer,
    cancel: threading.Event,
    extra_env: dict[str, str],
) -> Execution:
    """Run a target that lives in a child process: a command, or an isolated callable.  Its output goes to
    ``output`` as it comes, for whoever follows the run while it runs."""
    if isinstance(target, CommandTarget):
        return run_command(target, timeout=timeout, output=output, cancel=cancel, extra_env=extra_env)
    return run_isolated(target, timeout=timeout, output=output, cancel=cancel, extra_env=extra_env)


def run_command(
    target: CommandTarget,
    *,
    timeout: timedelta | None,
    output: TailBuffer,
    cancel: threading.Event,
    extra_env: dict[str, str],
) -> Execution:
    """Run a command: its argv directly, or through ``/bin/sh -c`` when the job asked for a shell."""
    argv = ["/bin/sh", "-c", target.argv[0]] if target.shell else list(target.argv)
    env = {**child_environment(), **target.env, **extra_env}
    try:
        outcome = run_process(
            dying_with_us(argv, env.get("PATH")),
            env=env,
            cwd=target.cwd,
            timeout=timeout,
            output=output,
            cancel=cancel,
        )
    except OSError as exc:
        return failure(exc)
    return _from_process(outcome, timeout)


def dying_with_us(argv: list[str], path: str | None) -> list[str]:
    """``argv``, run through ``setpriv --pdeathsig KILL`` where util-linux has it (Linux): the command is
    killed if the scheduler dies, even by ``kill -9``, instead of running on re-parented to init beside the
    run a restarted node starts.  ``setpriv`` execs the command, which keeps its pid.  A program that cannot
    be found fails as it would without the wrapper: with FileNotFoundError, before anything runs."""
    if SETPRIV is None:
        return argv
    if "/" not in argv[0] and shutil.which(argv[0], path=path) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    return [SETPRIV, "--pdeathsig", "KILL", "--", *argv]


def run_isolated(
    target: CallableTarget,
    *,
    timeout: timedelta | None,
    output: TailBuffer,
    cancel: threading.Event,
    extra_env: dict[str, str],
) -> Execution:
    """Run a callable in a child Python process, so that a timeout can kill it."""
    with tempfile.TemporaryDirectory(prefix="cronkeeper-") as scratch:
        result_path = os.path.join(scratch, "result.json")
        payload = {
            "ref": target.ref,
            "args": list(target.args),
            "kwargs": target.kwargs,
            "result_path": result_path,
        }
        # Unbuffered, so that what the function prints reaches the output (shown live) as it prints it.
        env = {
            **child_environment(),
            **extra_env,
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "PYTHONUNBUFFERED": "1",
            PARENT_VARIABLE: str(os.getpid()),  # the child dies with this process (see child.py)
        }
        try:
            outcome = run_process(
                [sys.executable, "-m", "cronkeeper.executors.child"],
                env=env,
                cwd=None,
                timeout=timeout,
                output=output,
                cancel=cancel,
                stdin=json.dumps(payload).encode(),
            )
        except OSError as exc:
            return failure(exc)
        execution = _from_process(outcome, timeout)
        if execution.status is not RunStatus.SUCCEEDED and execution.status is not RunStatus.FAILED:
            return execution
        return _with_child_result(execution, result_path)


def _with_child_result(execution: Execution, result_path: str) -> Execution:
    """The child's report (what its function returned or raised) added to what was measured of its process.

    The measured outcome has no traceback or result of its own, so only the fields named here change.
    """
    measured = execution.outcome
    try:
        with open(result_path, encoding="utf-8") as handle:
            reported = json.load(handle)
    except (OSError, ValueError):
        error = measured.error or "the child process ended without reporting a result"
        return Execution(RunStatus.FAILED, replace(measured, error=error))
    if reported["ok"]:
        return Execution(
            RunStatus.SUCCEEDED, replace(measured, exit_code=0, error=None, result=reported["result"])
        )
    failed = replace(
        measured, error=reported["error"], traceback=reported.get("traceback"), result=reported.get("result")
    )
    return Execution(RunStatus.FAILED, failed)


def _from_process(outcome: ProcessOutcome, timeout: timedelta | None) -> Execution:
    if outcome.timed_out:
        assert timeout is not None
        status, error = (
            RunStatus.TIMED_OUT,
            f"timed out after {timeout.total_seconds():g}s; process group killed",
        )
    elif outcome.cancelled:
        status, error = RunStatus.CANCELLED, "cancelled; process group killed"
    elif outcome.exit_code == 0:
        status, error = RunStatus.SUCCEEDED, None
    elif outcome.exit_code < 0:
        status, error = RunStatus.FAILED, f"killed by signal {-outcome.exit_code}"
    else:
        status, error = RunStatus.FAILED, f"exited with status {outcome.exit_code}"
    return Execution(
        status,
        RunOutcome(
            exit_code=outcome.exit_code,
            output=outcome.output,
            error=error,
            peak_memory_bytes=outcome.peak_memory_bytes,
            cpu_time=outcome.cpu_time,
        ),
    )
