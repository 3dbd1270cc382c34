"""What a Python job run in this process logs and prints, kept as its run's output.

A context variable says which run the calling code executes for (each worker thread and each task has its
own), so two runs at once never mix and code outside any run is left alone.  Three hooks feed it, each
installed once per process and transparent outside a run:

- log records are taken as they are made (a wrapper around the log record factory), not by a handler: adding
  a handler to the root logger would change the application's logging (``basicConfig`` does nothing once the
  root has a handler, and Python's last-resort output to stderr stops).  Records count as the application's
  logging lets them through its loggers' levels; ``serve`` logs at INFO.
- ``sys.stdout`` and ``sys.stderr`` are wrapped: text a run writes there (``print``) is kept too, and still
  goes where it went before.  A write made by a logging handler is not kept twice (its record already was).
  Bytes written to ``sys.stdout.buffer`` or to the file descriptors are not seen.
- a thread started during a run runs in a copy of its starter's context (as Python 3.14 can do for every
  thread), so its records and prints, and ``current_run()``, belong to the run.  A thread pool's worker is
  left out: it outlives the run and serves whoever submits next.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import thread as pool_threads
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from cronkeeper.executors.output import TailBuffer

# A context variable, not a global: each thread and each task writes to the run it is executing.
_RUN_OUTPUT: ContextVar[TailBuffer | None] = ContextVar("cronkeeper_run_output", default=None)
_FORMATTER = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
_MARK = "cronkeeper_keeps_run_output"


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

    setattr(make_record, _MARK, True)
    return make_record


class RunAwareStream:
    """A text stream that also keeps, in the run being executed, what that run writes to it.

    Everything but ``write`` and ``writelines`` goes to the stream it wraps, so ``encoding``, ``fileno()`` or
    ``isatty()`` answer as before.
    """

    cronkeeper_keeps_run_output = True

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        output = _RUN_OUTPUT.get()
        if output is not None and text and not _from_logging():
            output.append(text.encode("utf-8", errors="replace"))
        return self.wrapped.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def _from_logging() -> bool:
    """Whether the write comes from a logging handler (whose record the run already has)."""
    caller = sys._getframe(2)  # write's caller: print(), a handler's emit, or the job's own code
    return str(caller.f_globals.get("__name__", "")).startswith("logging")


def _starting_in_run(start: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
    def start_thread(thread: threading.Thread) -> None:
        if _RUN_OUTPUT.get() is not None and getattr(thread, "_target", None) is not pool_threads._worker:
            context, run = contextvars.copy_context(), thread.run
            thread.run = lambda: context.run(run)  # type: ignore[method-assign]
        start(thread)

    setattr(start_thread, _MARK, True)
    return start_thread


def install() -> None:
    """Install the hooks once per process (a second scheduler finds them installed)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, _MARK, False):
        logging.setLogRecordFactory(_keeping(factory))
    _wrap_streams()
    if not getattr(threading.Thread.start, _MARK, False):
        threading.Thread.start = _starting_in_run(threading.Thread.start)  # type: ignore[method-assign,assignment]


_WRAPPING = threading.Lock()
_STREAMS = ("stdout", "stderr")


def _wrap_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` unless they are: again at each run, since an application (or a
    test runner) may have replaced them since the scheduler started."""
    if not any(_unwrapped(getattr(sys, name)) for name in _STREAMS):
        return
    # Two runs starting at once must not wrap a stream twice: their prints would be kept twice.
    with _WRAPPING:
        for name in _STREAMS:
            stream = getattr(sys, name)
            if _unwrapped(stream):
                setattr(sys, name, RunAwareStream(stream))


def _unwrapped(stream: TextIO | None) -> bool:
    return stream is not None and not getattr(stream, _MARK, False)


@contextmanager
def capturing(output: TailBuffer) -> Iterator[None]:
    """Records made and text printed by the calling thread or task go to ``output`` until the block ends."""
    _wrap_streams()
    token = _RUN_OUTPUT.set(output)
    try:
        yield
    finally:
        _RUN_OUTPUT.reset(token)
