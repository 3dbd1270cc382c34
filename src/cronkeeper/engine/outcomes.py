"""Outcomes waiting to be written: workers note that runs started and ended, the engine's loop writes them in
batches.  Nothing noted is lost when the database is away: a failed write puts the batch back.

The output of runs (a child's, or what an in-process job logs and prints) is also written while they run,
so that a run page can follow it; that is progress, not an outcome: best effort, since the final outcome
carries the whole tail anyway.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cronkeeper.events import EventKind, Listeners, RunEvent
from cronkeeper.exceptions import StoreError
from cronkeeper.executors.output import TailBuffer
from cronkeeper.executors.runners import Execution
from cronkeeper.models import NO_OUTCOME, Catchup, RunStatus
from cronkeeper.store.base import Completion, JobStore, StartOrder

log = logging.getLogger(__name__)

Finished = tuple[Completion, StartOrder, Execution]


@dataclass(slots=True)
class _LiveOutput:
    """The output of a running run, and what of it the database has."""

    buffer: TailBuffer
    # Until its start is written the row is queued: a progress write would match nothing, yet count as done.
    start_written: bool = False
    version_written: int = 0


class OutcomeBuffer:
    """Starts and completions noted by workers, written by :meth:`flush`.

    ``on_first`` is called when the buffer goes from empty to not empty, so the loop wakes once per batch
    rather than once per run.
    """

    def __init__(self, on_first: Callable[[], None]) -> None:
        self._on_first = on_first
        self._lock = threading.Lock()
        self._started: list[tuple[StartOrder, datetime]] = []
        self._finished: list[Finished] = []
        self._since = 0.0
        self._outputs: dict[int, _LiveOutput] = {}

    def note_started(self, order: StartOrder, at: datetime, output: TailBuffer | None = None) -> None:
        """Note a start; a run with ``output`` has it written while it runs (see :meth:`write_progress`)."""
        with self._lock:
            first = self._first_noted()
            self._started.append((order, at))
            if output is not None:
                self._outputs[order.run_id] = _LiveOutput(output)
        if first:
            self._on_first()

    def note_finished(self, completion: Completion, order: StartOrder, execution: Execution) -> None:
        with self._lock:
            first = self._first_noted()
            self._finished.append((completion, order, execution))
            self._outputs.pop(completion.run_id, None)
        if first:
            self._on_first()

    def _first_noted(self) -> bool:
        """Under the lock, before a note: whether it is the first since the last write (then noted when)."""
        if self._started or self._finished:
            return False
        self._since = time.monotonic()
        return True

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._started or self._finished)

    def has_live_output(self) -> bool:
        """Whether runs whose output is shown while they run are running (the loop must wake to write it)."""
        return bool(self._outputs)

    def _put_back(self, started: list[tuple[StartOrder, datetime]], finished: list[Finished]) -> None:
        with self._lock:
            self._started[:0] = started
            self._finished[:0] = finished

    def _write_one_by_one(
        self, store: JobStore, finished: list[Finished], *, owner: str, now: datetime
    ) -> set[int]:
        """After a batch failed: write outcomes one at a time, so that one the database refuses (a value it
        cannot hold) is stored as a failure instead of blocking every other.  If even that fails the
        database itself is away: keep the rest for the next try."""
        accepted: set[int] = set()
        for index, (completion, _, _) in enumerate(finished):
            try:
                accepted.update(store.record_finished([completion], owner=owner, now=now))
            except StoreError as exc:
                log.warning(
                    "run %s: outcome refused by the database (%s); storing it as a failure",
                    completion.run_id,
                    exc.__cause__ or exc,
                )
                try:
                    accepted.update(
                        store.record_finished([_stored_as_failure(completion, exc)], owner=owner, now=now)
                    )
                except StoreError:
                    self._put_back([], finished[index:])
                    raise
        return accepted

    def waiting_for(self) -> float:
        """Seconds since the oldest outcome not yet written (0 when there is none)."""
        with self._lock:
            return time.monotonic() - self._since if (self._started or self._finished) else 0.0

    def flush(self, store: JobStore, *, owner: str, now: datetime, listeners: Listeners) -> datetime | None:
        """Write everything noted so far; on a database error keep it for the next try and re-raise.

        Returns when the loop must look at the database again (None: no need): when the earliest retry just
        written is due, since nothing else announces a retry; or now, when a run of a job that catches up
        every missed fire ended, so that the next one, waiting its turn, starts."""
        with self._lock:
            started, self._started = self._started, []
            finished, self._finished = self._finished, []
        if not started and not finished:
            return None
        done = {completion.run_id for completion, _, _ in finished}
        try:
            store.record_started(
                [(order.run_id, at) for order, at in started if order.run_id not in done], owner=owner
            )
        except StoreError:
            self._put_back(started, finished)
            raise
        if self._outputs:  # no work per start unless a run with output is under way
            self._note_starts_written(started)
        try:
            accepted = set(store.record_finished([item[0] for item in finished], owner=owner, now=now))
        except StoreError:
            accepted = self._write_one_by_one(store, finished, owner=owner, now=now)
        _log_outcomes(finished, accepted)
        retries = [c.retry_at for c, _, _ in finished if c.retry_at is not None and c.run_id in accepted]
        if listeners:
            for order, at in started:
                listeners.emit(_event(EventKind.STARTED, order, None, None, started_at=at))
            for completion, order, execution in finished:
                if completion.run_id in accepted:
                    kind = EventKind(completion.status.value)
                    listeners.emit(
                        _event(kind, order, completion, execution, started_at=completion.started_at)
                    )
        if any(order.spec.catchup is Catchup.ALL for c, order, _ in finished if c.run_id in accepted):
            retries.append(now)
        return min(retries, default=None)

    def _note_starts_written(self, started: list[tuple[StartOrder, datetime]]) -> None:
        with self._lock:
            for order, _ in started:
                live = self._outputs.get(order.run_id)
                if live is not None:
                    live.start_written = True

    def write_progress(self, store: JobStore, *, owner: str) -> None:
        """Write the output of running runs that changed since it was last written, in one batch.

        A failure is logged and dropped: the same output is tried again next time, and the final outcome
        carries the whole tail whatever happens here.
        """
        with self._lock:
            live = [(run_id, item) for run_id, item in self._outputs.items() if item.start_written]
        changed: list[tuple[int, _LiveOutput, int, str]] = []
        for run_id, item in live:
            read = item.buffer.text_if_changed(item.version_written)
            if read is not None:
                changed.append((run_id, item, *read))
        if not changed:
            return
        try:
            store.record_progress([(run_id, text) for run_id, _, _, text in changed], owner=owner)
        except StoreError as exc:
            log.warning("could not write the output of %d running runs: %s", len(changed), exc)
            return
        for _, item, version, _ in changed:
            item.version_written = version


def _stored_as_failure(completion: Completion, exc: StoreError) -> Completion:
    """What is kept of an outcome the database refused: the fact that the run ended, and why not more."""
    kept = dataclasses.replace(
        completion.outcome,
        output=None,
        traceback=None,
        result=None,
        error=f"the run ended ({completion.status.value}) but its outcome could not be stored: "
        f"{type(exc.__cause__ or exc).__name__}",
    )
    return dataclasses.replace(completion, status=RunStatus.FAILED, outcome=kept)


def _log_outcomes(finished: list[Finished], accepted: set[int]) -> None:
    for completion, order, _ in finished:
        if completion.run_id not in accepted:
            log.warning(
                "job %s: result of run %s refused: the run was already ended by another node "
                "(lost or cancelled)",
                order.spec.id,
                completion.run_id,
            )
        elif completion.status is RunStatus.SUCCEEDED:
            if log.isEnabledFor(logging.INFO):
                took = (
                    completion.finished_at - (completion.started_at or completion.finished_at)
                ).total_seconds()
                log.info("job %s: run %s succeeded in %.3fs", order.spec.id, completion.run_id, took)
        else:
            log.warning(
                "job %s: run %s %s: %s",
                order.spec.id,
                completion.run_id,
                completion.status.value,
                completion.outcome.error,
            )


def _event(
    kind: EventKind,
    order: StartOrder,
    completion: Completion | None,
    execution: Execution | None,
    *,
    started_at: datetime | None,
) -> RunEvent:
    outcome = NO_OUTCOME if completion is None else completion.outcome
    duration = None
    if completion is not None and started_at is not None:
        duration = (completion.finished_at - started_at).total_seconds()
    return RunEvent(
        kind,
        order.run_id,
        order.spec.id,
        order.scheduled_for,
        order.attempt,
        order.trigger_source,
        error=outcome.error,
        traceback=outcome.traceback,
        result=outcome.result,
        exception=None if execution is None else execution.exception,
        duration=duration,
        lateness=None if started_at is None else (started_at - order.due_at).total_seconds(),
        value=None if execution is None else execution.value,
    )
