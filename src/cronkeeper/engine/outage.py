"""A failure that repeats, told in a few lines: when it begins, about once a minute while it lasts, and when
it ends.  The loop retries a database that went away every second, and the starter meets the same failure at
every due run: a line per try buried the beginning and the end of the outage under thousands of the same."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

# While a failure lasts, it is logged again after this long (seconds).
LOG_EVERY = 60.0


@dataclass(slots=True)
class Outage:
    """Tell one kind of failure to ``log``.  Times are real (``time.monotonic()``), whatever the clock of the
    engine says: an outage lasts as long as the database is away."""

    log: logging.Logger
    monotonic: Callable[[], float] = time.monotonic
    since: float | None = None
    last_failed_at: float = 0.0
    _logged_at: float = 0.0

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, level: int, message: str, failure: object, *args: object) -> None:
        """Note a failure, and log it if it begins an outage or the last line is :data:`LOG_EVERY` old:
        ``message`` % (seconds the outage has lasted, ``failure`` on one line, ``*args``)."""
        now = self.monotonic()
        self.last_failed_at = now
        if self.since is None:
            self.since = now
        elif now - self._logged_at < LOG_EVERY:
            return
        self._logged_at = now
        self.log.log(level, message, now - self.since, " ".join(str(failure).split()), *args)

    def ended(self, message: str) -> None:
        """Note a success; if it ends an outage, log ``message`` % its length in seconds."""
        if self.since is not None:
            self.log.warning(message, self.monotonic() - self.since)
            self.since = None
