"""The log records a Python job run in this process emits, kept as its run's output.

Records are taken as they are made (a wrapper around the log record factory), not by a handler: adding a
handler to the root logger would change the application's logging (``basicConfig`` does nothing once the
root has a handler, and Python's last-resort output to stderr stops).  A context variable says which run
the calling code executes for (each worker thread and each task has its own), so two runs at once never
mix and code outside any run is left alone.  Records count as the application's logging lets them through
its loggers' levels; ``serve`` logs at INFO.  Threads a job starts itself do not inherit the context, so
their records are not kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from cronkeeper.executors.output import TailBuffer

# A context variable, not a global: each thread and each task writes to the run it is executing.
_RUN_OUTPUT: ContextVar[TailBuffer | None] = ContextVar("cronkeeper_run_output", default=None)
_FORMATTER = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _keeping(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        output = _RUN_OUTPUT.get()
        if output is not None:
            try:
                line = _FORMATTER.format(record)
            except Exception:  # a record that cannot be formatted must not fail the job
                line = f"(a log record that could not be formatted: {record.msg!r})"
            output.append(f"{line}\n".encode("utf-8", errors="replace"))
        return record

    make_record.cronkeeper_keeps_run_output = True  # type: ignore[attr-defined]
    return make_record


def install() -> None:
    """Wrap the log record factory once per process (a second scheduler finds it wrapped)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "cronkeeper_keeps_run_output", False):
        logging.setLogRecordFactory(_keeping(factory))


@contextmanager
def capturing(output: TailBuffer) -> Iterator[None]:
    """Records made by the calling thread or task go to ``output`` until the block ends."""
    token = _RUN_OUTPUT.set(output)
    try:
        yield
    finally:
        _RUN_OUTPUT.reset(token)
