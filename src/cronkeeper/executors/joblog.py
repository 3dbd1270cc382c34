"""What a Python job run in this process logs and prints, kept as its run's output.

A context variable says which run the calling code executes for (each worker thread and each task has its
own), so two runs at once never mix and code outside any run is left alone.  Two hooks feed it, installed
once per process and transparent outside a run:

- log records are taken as they are made (a wrapper around the log record factory), not by a handler: adding
  a handler to the root logger would change the application's logging (``basicConfig`` does nothing once the
  root has a handler, and Python's last-resort output to stderr stops).  Records count as the application's
  logging lets them through its loggers' levels; ``serve`` logs at INFO.
- ``sys.stdout`` and ``sys.stderr`` are wrapped: text a run writes there (``print``) is kept too, and still
  goes where it went before.  What a logging handler writes is not kept again (its record already was).
  Bytes written to ``sys.stdout.buffer`` or to the file descriptors are not seen.

A thread a job starts does not inherit the run: Python gives a new thread an empty context, and guessing
otherwise would credit a library's long-lived worker thread, started lazily by one run, with the work of every
run after it.  A job hands its run on explicitly: ``Thread(target=contextvars.copy_context().run,
args=(work,))``, as ``asyncio.to_thread`` does.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from types import FrameType
from typing import Any, TextIO

from cronkeeper.executors.output import TailBuffer
from cronkeeper.scoped import Scoped

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
        if output is None or _WRITING.get() or not isinstance(text, str) or not text or _from_logging():
            return self.wrapped.write(text)  # bytes fail (or not) as the wrapped stream decides
        # An application's own tee around this stream may write through another one: keep the text once.
        token = _WRITING.set(True)
        try:
            output.append(text.encode("utf-8", errors="replace"))
            return self.wrapped.write(text)
        finally:
            _WRITING.reset(token)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        if name == "wrapped":  # not set yet (a copy made without __init__)
            raise AttributeError(name)
        return getattr(self.wrapped, name)


_WRITING: ContextVar[bool] = ContextVar("cronkeeper_run_output_writing", default=False)
# Every record reaches its handlers through these two: a write below either is a handler's.
_HANDLING = (logging.Logger.callHandlers.__code__, logging.Handler.handle.__code__)
_DEEPEST = 64


def _from_logging() -> bool:
    """Whether the write is made by a logging handler (whose record the run already has)."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(_DEEPEST):
        if frame is None:
            return False
        if frame.f_code in _HANDLING:
            return True
        frame = frame.f_back
    return False


def install() -> None:
    """Install the hooks once per process (a second scheduler finds them installed)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, _MARK, False):
        logging.setLogRecordFactory(_keeping(factory))
    _wrap_streams()


_WRAPPING = threading.Lock()


def _wrap_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` unless they are: again at each run, since an application (or a
    test runner) may have replaced them since the scheduler started."""
    if not (_unwrapped(sys.stdout) or _unwrapped(sys.stderr)):
        return
    # Two runs starting at once must not wrap a stream twice: their prints would be kept twice.
    with _WRAPPING:
        # Each stream is set only if nobody (a job's redirect_stdout ending, say) replaced it meanwhile: the
        # check and the store are plain bytecodes, with no thread switch between them.
        stdout = sys.stdout
        if _unwrapped(stdout):
            wrapper = RunAwareStream(stdout)
            if sys.stdout is stdout:
                sys.stdout = wrapper
        stderr = sys.stderr
        if _unwrapped(stderr):
            wrapper = RunAwareStream(stderr)
            if sys.stderr is stderr:
                sys.stderr = wrapper


def _unwrapped(stream: TextIO | None) -> bool:
    return stream is not None and not getattr(stream, _MARK, False)


def capturing(output: TailBuffer) -> Scoped[TailBuffer | None]:
    """Records made and text printed by the calling thread or task go to ``output`` within the block."""
    _wrap_streams()
    return Scoped(_RUN_OUTPUT, output)
