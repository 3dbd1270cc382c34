"""One run of one side of a scenario, in a process of its own: ``python -m bench.one MODULE FUNCTION SIZES``.

Why a process per run: figures such as resident memory, CPU per fire and the garbage collector's pauses depend
on what the process did before.  Run in the bench's own process, the bulk-add's idle RSS included the heap
left by every earlier scenario and by APScheduler, so it depended on the order the scenarios ran in.  Here
every run starts from the same empty interpreter.

Prints the figures as one JSON line on stdout; a ``BenchFailure`` exits with ``FAILED`` and its reason on
stderr.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bench.failures import BenchFailure

#: The exit status of a run whose figures cannot count.
FAILED = 3


def main(argv: Sequence[str] | None = None) -> int:
    module, function, sizes = argv if argv is not None else sys.argv[1:]
    side = getattr(importlib.import_module(f"bench.{module}"), function)
    try:
        figures: dict[str, Any] = asdict(side(**json.loads(sizes)))
    except BenchFailure as exc:
        print(exc, file=sys.stderr)
        return FAILED
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
