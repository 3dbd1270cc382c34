"""The courier: a thread per started scheduler that delivers the outbox.

Each pass claims the alerts that are due, grouped by channel (one message per channel per window, so a storm
of failures is one message, not a flood), sends each group with a deadline, and records the result at once:
delivered, retried later with a doubling backoff, or failed for good after ``give_up_after``.  Claims are
leased: a courier that dies mid-send leaves its alerts to the next one when the lease ends, so a crash can
repeat a message but never lose one.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from cronkeeper.alerts.channels import send
from cronkeeper.alerts.messages import Renderer
from cronkeeper.clock import Clock
from cronkeeper.settings import DeliverySettings
from cronkeeper.store.base import AlertStore
from cronkeeper.store.records import AlertRecord, DeliveryResult, Parcel

log = logging.getLogger(__name__)

# Alerts of one channel sent as one message, at most (the rest go in the next window).
CLAIM_LIMIT = 1000
# Channels sent to in one pass, at most, one claim each: a pass ends, and the courier can stop, soon.
CHANNELS_PER_PASS = 50


class Courier:
    """Delivers alerts for one scheduler; ``owner`` names it in the claims (the scheduler's node id)."""

    def __init__(
        self,
        store: AlertStore,
        clock: Clock,
        *,
        owner: str,
        settings: DeliverySettings,
        wake: threading.Event | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._owner = owner
        self._settings = settings
        self._renderer = Renderer(templates=settings.templates, public_url=settings.public_url)
        self._wake = wake or threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cronkeeper-courier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop without waiting long for a send under way: it is abandoned (a daemon thread), and its alerts
        go out from whichever node claims them after the lease."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.deliver_due()
            except Exception:  # the database or a bug: the courier must outlive both
                log.exception("could not deliver alerts; trying again shortly")
            self._wake.wait(self._settings.poll_interval)

    def deliver_due(self) -> int:
        """One pass: claim one channel's due alerts at a time, send them as one message, record how it went;
        returns the number delivered.  Each claim is leased only for about one send, so a courier that dies
        mid-send leaves its alerts to another node soon after."""
        settings = self._settings
        lease = timedelta(seconds=2 * settings.send_timeout + 30)
        delivered = 0
        for _ in range(CHANNELS_PER_PASS):
            if self._stop.is_set():
                break
            parcels = self._store.claim_alerts(
                owner=self._owner,
                now=self._clock.now(),
                lease=lease,
                window=settings.window,
                limit=CLAIM_LIMIT,
            )
            if not parcels:
                break
            for parcel in parcels:
                results = self._deliver(parcel)
                self._store.record_deliveries(results, owner=self._owner, now=self._clock.now())
                delivered += sum(len(result.alert_ids) for result in results if result.error is None)
        return delivered

    def _deliver(self, parcel: Parcel) -> list[DeliveryResult]:
        ids = tuple(alert.id for alert in parcel.alerts)
        if parcel.url is None:
            return [DeliveryResult(ids, f"there is no channel named {parcel.channel!r}")]
        try:
            message = self._renderer.render([{**a.facts, "alert_id": a.id} for a in parcel.alerts])
        except Exception as exc:  # a template of the deployment's own that cannot render: retrying won't help
            return [DeliveryResult(ids, f"the message could not be rendered: {exc}")]
        error = send(parcel.url, message, timeout=self._settings.send_timeout)
        if error is None:
            return [DeliveryResult(ids)]
        now = self._clock.now()
        results = [DeliveryResult((alert.id,), error, self._retry_at(alert, now)) for alert in parcel.alerts]
        given_up = sum(result.retry_at is None for result in results)
        log.warning(
            "alert delivery to channel %s failed (%d alert(s), %d given up): %s",
            parcel.channel,
            len(results),
            given_up,
            error,
        )
        return results

    def _retry_at(self, alert: AlertRecord, now: datetime) -> datetime | None:
        """Each alert's own backoff and limit: one grouped with older ones keeps its full time to go."""
        settings = self._settings
        if now - alert.created_at >= settings.give_up_after:
            return None
        doubling = min(max(alert.attempts - 1, 0), 20)
        delay: timedelta = min(settings.retry_base * (2**doubling), settings.retry_cap)
        return now + delay
