"""Login throttling per account name, known or not: a refusal tells nothing about which names exist."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from cronkeeper.clock import Clock

_MAX_TRACKED = 10_000  # names remembered at once; the oldest are forgotten first


class LoginThrottle:
    """At most ``attempts`` failed logins per name within ``window``; kept in memory, per process."""

    def __init__(self, clock: Clock, *, attempts: int, window: timedelta) -> None:
        self.clock = clock
        self.attempts = attempts
        self.window = window
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, username: str) -> timedelta | None:
        """How long the name must wait before its next attempt, or None if it may try now."""
        now = self.clock.now()
        with self._lock:
            failures = self._recent(username.casefold(), now)
            if len(failures) < self.attempts:
                return None
            return failures[0] + self.window - now

    def failed(self, username: str) -> None:
        now = self.clock.now()
        key = username.casefold()
        with self._lock:
            self._recent(key, now).append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > _MAX_TRACKED:
                self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username.casefold(), None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
