"""Listeners: library code that wants to know when runs start, end, are missed, skipped or lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cronkeeper.models import Run, RunStatus, TriggerSource

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    """What happened to a run."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    MISSED = "missed"
    SKIPPED = "skipped"
    LOST = "lost"

    @classmethod
    def for_status(cls, status: RunStatus) -> EventKind:
        return cls.STARTED if status.is_active else cls(status.value)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event; ``exception`` is set only in the process where an in-process job raised it, and ``value``
    (what it returned, as it was; ``result`` is its JSON form) only where an in-process job returned it.

    ``error``, ``traceback`` and ``result`` are those of the run's :class:`~cronkeeper.models.RunOutcome`;
    its output and measurements stay in the run's record.  ``duration`` (of an ended run) and ``lateness``
    (start minus due time) are in seconds, when known.
    """

    kind: EventKind
    run_id: int
    job_id: str
    scheduled_for: datetime
    attempt: int
    trigger_source: TriggerSource
    error: str | None = None
    traceback: str | None = None
    result: dict[str, Any] | None = None
    exception: BaseException | None = None
    duration: float | None = None
    lateness: float | None = None
    value: Any = None

    @classmethod
    def from_run(cls, run: Run) -> RunEvent:
        return cls(
            EventKind.for_status(run.status),
            run.id,
            run.job_id,
            run.scheduled_for,
            run.attempt,
            run.trigger_source,
            run.error,
            run.traceback,
            run.result,
            duration=None if run.duration is None else run.duration.total_seconds(),
            lateness=None if run.lateness is None else run.lateness.total_seconds(),
        )


Listener = Callable[[RunEvent], None]


class Listeners:
    """Callbacks by event kind; a failing callback is logged and never disturbs the scheduler."""

    def __init__(self) -> None:
        self._entries: list[tuple[Listener, frozenset[EventKind]]] = []
        self._lock = threading.Lock()

    def add(self, callback: Listener, kinds: Iterable[EventKind | str] | None = None) -> None:
        """Call ``callback`` for events of ``kinds`` (all kinds when None)."""
        wanted = frozenset(EventKind(kind) for kind in kinds) if kinds is not None else frozenset(EventKind)
        with self._lock:
            self._entries.append((callback, wanted))

    def remove(self, callback: Listener) -> None:
        with self._lock:
            self._entries = [entry for entry in self._entries if entry[0] is not callback]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def emit(self, event: RunEvent) -> None:
        for callback, kinds in self._entries:
            if event.kind in kinds:
                try:
                    callback(event)
                except Exception:
                    log.exception(
                        "listener %r failed on %s event of run %s", callback, event.kind, event.run_id
                    )
