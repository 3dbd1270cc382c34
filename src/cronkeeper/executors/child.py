"""The program an isolated callable runs in: ``python -m cronkeeper.executors.child`` reads a JSON job
description on standard input, calls the function, and writes its JSON result (or error) to the file the
parent named.  Running in a child process is what lets a timeout really kill a Python job.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import json
import os
import signal
import sys
import traceback
from typing import Any

from cronkeeper.exceptions import RunFailed
from cronkeeper.executors.results import to_result
from cronkeeper.executors.runners import PARENT_VARIABLE
from cronkeeper.registry import import_ref
from cronkeeper.runcontext import RunContext, running

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_the_scheduler(parent: int) -> None:
    """On Linux, ask the kernel to kill this process when the scheduler thread that started it goes (a
    ``kill -9`` of the scheduler included), so that a job never outlives its scheduler and runs beside the
    run a restarted node starts for it.  If the scheduler went already, end now."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: the scheduler's own kill on timeout still applies
        return
    if os.getppid() != parent:
        os._exit(1)


def main() -> int:
    _die_with_the_scheduler(int(os.environ.get(PARENT_VARIABLE, os.getppid())))
    payload = json.loads(sys.stdin.read())
    outcome: dict[str, Any]
    try:
        func = import_ref(payload["ref"])
        with running(RunContext.from_environment()):
            value = func(*payload["args"], **payload["kwargs"])
            if inspect.isawaitable(value):
                value = asyncio.run(_await(value))
        outcome = {"ok": True, "result": to_result(value)}
    except RunFailed as exc:  # the job ended its run as failed, with what it did manage
        outcome = {"ok": False, "error": f"RunFailed: {exc}", "result": to_result(exc.result)}
    except BaseException as exc:  # the parent records every failure, SystemExit included
        outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    with open(payload["result_path"], "w", encoding="utf-8") as handle:
        json.dump(outcome, handle)
    sys.stdout.flush()
    return 0 if outcome["ok"] else 1


async def _await(value: Any) -> Any:
    return await value


if __name__ == "__main__":
    sys.exit(main())
