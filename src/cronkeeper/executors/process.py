"""Running a child process the way a scheduler must: in its own process group, with output captured up to a
limit, a timeout that kills the whole group (SIGTERM, then SIGKILL after a grace), cancellation, and the
child's peak memory and CPU time read from ``wait4``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

import psutil

from cronkeeper.executors.output import TailBuffer

KILL_GRACE = 5.0
# After the main process exits, children that kept the output pipe open get this long before we stop reading.
DRAIN_AFTER_EXIT = 1.0


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How a child process ended."""

    exit_code: int
    output: str
    timed_out: bool
    cancelled: bool
    peak_memory_bytes: int | None
    cpu_time: float | None


def run_process(
    argv: list[str],
    *,
    env: dict[str, str] | None,
    cwd: str | None,
    timeout: timedelta | None,
    output: TailBuffer,
    cancel: threading.Event,
    stdin: bytes | None = None,
    kill_grace: float = KILL_GRACE,
) -> ProcessOutcome:
    """Run ``argv`` to the end, its timeout, or ``cancel``; raises OSError if it cannot be started.

    The caller passes the ``output`` buffer so that it can read the output while the process runs."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    if stdin is not None:
        assert proc.stdin is not None
        _write_stdin(proc.stdin, stdin)
    deadline = None if timeout is None else time.monotonic() + timeout.total_seconds()
    assert proc.stdout is not None
    memory = ProcessTree(proc.pid)
    verdict = _pump(proc, output, deadline, cancel, kill_grace, memory)
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcessOutcome(
        exit_code=proc.returncode,
        output=output.text(),
        timed_out=verdict == "timeout",
        cancelled=verdict == "cancel",
        peak_memory_bytes=memory.peak or None,
        cpu_time=usage.ru_utime + usage.ru_stime,
    )


class ProcessTree:
    """A job's process and every descendant seen, sampled while it runs: for their peak resident memory, and
    to signal the descendants that left the job's process group (``setsid``) when the job must end.

    ``wait4``'s ``ru_maxrss`` would be exact but counts the pages the child inherited at fork, so a tiny
    ``echo`` would report the scheduler's own size; sampling with psutil measures the job itself.  A process
    that ends before its first sample has no figure (None) rather than a wrong one.
    """

    INTERVAL = 0.1

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._next = 0.0
        # Every descendant seen, by pid; psutil checks a process's start time before signalling it, so a
        # pid used again by someone else is left alone.
        self._descendants: dict[int, psutil.Process] = {}

    def sample(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + self.INTERVAL
        try:
            root = psutil.Process(self.pid)
            children = self._look(root)
            total = root.memory_info().rss + sum(child.memory_info().rss for child in children)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return
        self.peak = max(self.peak, total)

    def _look(self, root: psutil.Process) -> list[psutil.Process]:
        children: list[psutil.Process] = root.children(recursive=True)
        self._descendants.update((child.pid, child) for child in children)
        return children

    def signal_descendants(self, sig: signal.Signals) -> None:
        """Signal every descendant seen (looking once more first), in whatever group it is now."""
        with contextlib.suppress(psutil.Error):
            self._look(psutil.Process(self.pid))
        for process in self._descendants.values():
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)


def _write_stdin(pipe: IO[bytes], data: bytes) -> None:
    # Small payloads only (a JSON job description), which fit in the pipe's buffer.
    try:
        pipe.write(data)
        pipe.close()
    except BrokenPipeError:
        pass


def _pump(
    proc: subprocess.Popen[bytes],
    buffer: TailBuffer,
    deadline: float | None,
    cancel: threading.Event,
    kill_grace: float,
    memory: ProcessTree,
) -> str:
    """Read output until the process has ended; return "done", "timeout" or "cancel".

    The end of the output is not the end of the process: one that closes its stdout keeps running, and is
    still held to its timeout and cancellation until it exits.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    ending = _Ending(memory, deadline, cancel, kill_grace)
    open_output = True
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if open_output and selector.select(0.05):
                chunk = os.read(fd, 65536)
                if chunk:
                    buffer.append(chunk)
                else:
                    open_output = False
                    selector.unregister(fd)
            elif not open_output:
                time.sleep(0.05)
            now = time.monotonic()
            memory.sample(now)
            if ending.step(now) or (not open_output and _has_exited(proc.pid)):
                return ending.verdict


class _Ending:
    """When and how a child is made to end: timeout or cancel (SIGTERM, SIGKILL after a grace), or a main
    process that exited while something it started still holds the output pipe."""

    def __init__(
        self, tree: ProcessTree, deadline: float | None, cancel: threading.Event, kill_grace: float
    ) -> None:
        self.tree = tree
        self.pid = tree.pid
        self.deadline = deadline
        self.cancel = cancel
        self.kill_grace = kill_grace
        self.verdict = "done"
        self.terminated_at: float | None = None
        self.killed = False
        self.exited_at: float | None = None

    def step(self, now: float) -> bool:
        """Act on the time; True when reading should stop."""
        if self.terminated_at is None:
            self._check_stop_request(now)
        elif not self.killed and now - self.terminated_at >= self.kill_grace:
            self._signal(signal.SIGKILL)
            self.killed = True
        if self.exited_at is None and _has_exited(self.pid):
            self.exited_at = now
        if self.exited_at is not None and now - self.exited_at >= DRAIN_AFTER_EXIT:
            # Done, but its group still holds the output: end the group (a detached daemon is let be).
            _signal_group(self.pid, signal.SIGKILL)
            return True
        return False

    def _signal(self, sig: signal.Signals) -> None:
        """A job that must end (timeout, cancel): its process group, then its descendants that left it
        (``setsid``).  The group first, at once: a shell whose child was signalled before it would run its
        next line (``sleep 30; echo never reached``) before its own signal came."""
        _signal_group(self.pid, sig)
        self.tree.signal_descendants(sig)

    def _check_stop_request(self, now: float) -> None:
        if self.cancel.is_set():
            self.verdict = "cancel"
        elif self.deadline is not None and now >= self.deadline:
            self.verdict = "timeout"
        else:
            return
        self._signal(signal.SIGTERM)
        self.terminated_at = now


def _has_exited(pid: int) -> bool:
    """Whether the child exited, without reaping it: wait4 must still find it to read its usage."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


# The node a child process belongs to, in its environment (and its descendants', which inherit it).
NODE_VARIABLE = "CRONKEEPER_NODE"


def kill_leftovers(lost: set[tuple[str, str]]) -> list[int]:
    """Kill the processes of this host that belong to ``lost`` runs, named by (run id, node): a dead
    scheduler's commands and their descendants, which outlived it (re-parented to init).  A process is known
    by the ``CRONKEEPER_RUN_ID`` and ``CRONKEEPER_NODE`` its scheduler put in its environment, which its
    children inherit; processes of other users, whose environment cannot be read, are not looked at.
    Returns the pids killed."""
    killed = []
    for process in psutil.process_iter():
        try:
            env = process.environ()
            if (env.get("CRONKEEPER_RUN_ID", ""), env.get(NODE_VARIABLE, "")) in lost:
                process.kill()
                killed.append(process.pid)
        except psutil.Error:
            continue
    return killed
