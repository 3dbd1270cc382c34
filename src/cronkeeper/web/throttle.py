"""Login throttling per account name, known or not: a refusal tells nothing about which names exist."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from cronkeeper.clock import Clock

MAX_TRACKED = 10_000  # names with recent attempts remembered at once


class LoginThrottle:
    """At most ``attempts`` unsuccessful logins per name within ``window``; kept in memory, per process.

    An attempt is counted when it starts, before the password is checked, so that parallel guesses cannot
    all slip through while the first ones are still being verified; a successful login clears the count.
    """

    def __init__(self, clock: Clock, *, attempts: int, window: timedelta) -> None:
        self.clock = clock
        self.attempts = attempts
        self.window = window
        self._attempts: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def attempt(self, username: str) -> timedelta | None:
        """Count an attempt for the name; returns how long to wait instead if the name is over its limit.

        When every slot is taken by names with recent attempts (a flood of made-up names), new names wait
        rather than push out the count of an account under attack.
        """
        now = self.clock.now()
        key = username.casefold()
        with self._lock:
            recent = self._attempts.get(key)
            if recent is None:
                if len(self._attempts) >= MAX_TRACKED:
                    self._forget_quiet_names(now)
                if len(self._attempts) >= MAX_TRACKED:
                    return self.window
                recent = self._attempts[key] = deque()
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            if len(recent) >= self.attempts:
                return recent[0] + self.window - now
            recent.append(now)
            return None

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._attempts.pop(username.casefold(), None)

    def _forget_quiet_names(self, now: datetime) -> None:
        cutoff = now - self.window
        for key in [key for key, recent in self._attempts.items() if not recent or recent[-1] <= cutoff]:
            del self._attempts[key]
