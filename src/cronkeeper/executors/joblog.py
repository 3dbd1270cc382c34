"""The log records a Python job run in this process emits, kept as its run's output.

One handler on the root logger hands each record to the run the emitting code executes for, found through a
context variable (each worker thread and each task has its own), so two runs at once never mix and code
outside any run is left alone.  Records reach it as the application's logging lets them through (its logger
levels and ``propagate``); ``serve`` logs at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from cronkeeper.executors.output import TailBuffer

# A context variable, not a global: each thread and each task writes to the run it is executing.
_RUN_OUTPUT: ContextVar[TailBuffer | None] = ContextVar("cronkeeper_run_output", default=None)
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RunLogHandler(logging.Handler):
    """Writes a record to the output of the run that emitted it, if any."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        output = _RUN_OUTPUT.get()
        if output is None:
            return
        try:
            output.append(f"{self.format(record)}\n".encode())
        except Exception:  # a record that cannot be formatted must not fail the job
            self.handleError(record)


def install() -> None:
    """Put the handler on the root logger once per process (a second scheduler finds it there)."""
    root = logging.getLogger()
    if not any(isinstance(handler, RunLogHandler) for handler in root.handlers):
        root.addHandler(RunLogHandler())


@contextmanager
def capturing(output: TailBuffer) -> Iterator[None]:
    """Records emitted by the calling thread or task go to ``output`` until the block ends."""
    token = _RUN_OUTPUT.set(output)
    try:
        yield
    finally:
        _RUN_OUTPUT.reset(token)
