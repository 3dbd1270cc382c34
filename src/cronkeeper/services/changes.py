"""What every service does after a change: tell the engines, and write who did it to the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cronkeeper.clock import Clock
from cronkeeper.models import AuditEvent
from cronkeeper.store.base import AuditLog, JobStore


class ChangeLog:
    """Announces changes and records them.  ``on_change`` is how a running loop in this process hears about a
    change at once instead of at its next poll; other processes hear of it through the store."""

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        *,
        audit: AuditLog | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._audit = audit
        self._on_change = on_change or (lambda: None)

    def announce(self) -> None:
        """After a write that can make something due sooner: wake this process's loop, and the others."""
        self._on_change()
        self._store.announce_change()

    def record(
        self,
        action: str,
        object_id: str,
        *,
        by: str | None,
        via: str | None = None,
        object_type: str = "job",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Write the audit event of a change that has been made (``library`` when no one is named)."""
        if self._audit is not None:
            event = AuditEvent(
                self._clock.now(), by or "library", action, object_type, object_id, details, via
            )
            self._audit.record(event)
