"""The program an isolated callable runs in: ``python -m cronkeeper.executors.child`` reads a JSON job
description on standard input, calls the function, and writes its JSON result (or error) to the file the
parent named.  Running in a child process is what lets a timeout really kill a Python job.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import traceback
from typing import Any

from cronkeeper.exceptions import RunFailed
from cronkeeper.executors.results import to_result
from cronkeeper.registry import import_ref
from cronkeeper.runcontext import RunContext, running


def main() -> int:
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
