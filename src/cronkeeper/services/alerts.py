"""Channels, the notification defaults and the outbox, for every face: add, remove, test and list channels;
read what became of each alert.

Channel URLs hold credentials.  This service is where they stop: what it returns, audits and raises shows
them masked, and the URL whole never leaves it except to the store and the channel itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronkeeper.alerts.channels import Message, check_url, mask, send
from cronkeeper.alerts.messages import Renderer
from cronkeeper.clock import Clock
from cronkeeper.exceptions import NotFoundError, ValidationError
from cronkeeper.incidents import EVERY_RUN_KINDS
from cronkeeper.models import AlertKind, NotifyOptions
from cronkeeper.serialize import iso
from cronkeeper.services.changes import ChangeLog
from cronkeeper.settings import DeliverySettings
from cronkeeper.specs.validate import channel_name
from cronkeeper.store.base import AlertStore
from cronkeeper.store.records import AlertFilter, AlertRecord, AlertStatus, ChannelRecord, IncidentRecord

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel as anyone may see it: its URL masked."""

    name: str
    url: str
    origin: str
    created_at: datetime
    updated_at: datetime
    last_sent_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "origin": self.origin,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "last_sent_at": iso(self.last_sent_at),
        }


def alert_to_dict(alert: AlertRecord) -> dict[str, Any]:
    """An alert as the API and ``--json`` show it: what it says and what became of it."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "channel": alert.channel,
        "job_id": alert.job_id,
        "run_id": alert.run_id,
        "status": alert.status.value,
        "created_at": iso(alert.created_at),
        "due_at": iso(alert.due_at),
        "attempts": alert.attempts,
        "delivered_at": iso(alert.delivered_at),
        "last_error": alert.last_error,
        "attempt_log": list(alert.attempt_log),
        "facts": alert.facts,
    }


@dataclass(frozen=True, slots=True)
class SyncedChannels:
    """What a declaration of channels changed."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class AlertService:
    """Channels and alerts; ``delivery`` supplies what a test message needs (templates, links, deadline)."""

    def __init__(
        self, store: AlertStore, clock: Clock, changes: ChangeLog, *, delivery: DeliverySettings
    ) -> None:
        self._store = store
        self.clock = clock
        self._changes = changes
        self._delivery = delivery

    # ---- channels ----------------------------------------------------------------------------------------

    def add_channel(
        self, name: str, url: str, *, origin: str = "api", by: str | None = None, via: str | None = None
    ) -> Channel:
        """Add a channel, or replace the URL of the one of that name."""
        name = channel_name(name)
        url = check_url(url)
        new = self._store.put_channel(name, url, origin=origin, now=self.clock.now())
        self._changes.record(
            "add" if new else "edit", name, by=by, via=via, object_type="channel", details={"url": mask(url)}
        )
        return self.get_channel(name)

    def remove_channel(self, name: str, *, by: str | None = None, via: str | None = None) -> None:
        self._store.remove_channel(name)
        self._changes.record("remove", name, by=by, via=via, object_type="channel")

    def get_channel(self, name: str) -> Channel:
        found = self._store.find_channel(name)
        if found is None:
            raise NotFoundError("channel", name)
        return _shown(found)

    def list_channels(self) -> list[Channel]:
        return [_shown(record) for record in self._store.list_channels()]

    def sync_channels(
        self, declared: Mapping[str, str], *, origin: str, by: str | None = None, via: str | None = None
    ) -> SyncedChannels:
        """Make the channels of ``origin`` exactly ``declared`` (name → URL); every URL is checked before any
        is written.  A channel of the same name from another origin is taken over: the declaration wins."""
        checked = {
            channel_name(name, f"channels.{name}"): check_url(url, f"channels.{name}")
            for name, url in declared.items()
        }
        existing = {record.name: record for record in self._store.list_channels()}
        added: list[str] = []
        updated: list[str] = []
        for name, url in checked.items():
            before = existing.get(name)
            if before is not None and before.url == url and before.origin == origin:
                continue
            self._store.put_channel(name, url, origin=origin, now=self.clock.now())
            (updated if before is not None else added).append(name)
            self._changes.record(
                "edit" if before else "add",
                name,
                by=by,
                via=via,
                object_type="channel",
                details={"url": mask(url)},
            )
        removed = self._store.retire_channels(origin, list(checked))
        for name in removed:
            self._changes.record("remove", name, by=by, via=via, object_type="channel")
        return SyncedChannels(tuple(added), tuple(updated), tuple(removed))

    def test_channel(self, name: str, *, by: str | None = None, via: str | None = None) -> str | None:
        """Send a test message now, outside the outbox (the answer is wanted at once); None when the channel
        took it, else the error in the service's own words (with its secrets masked)."""
        found = self._store.find_channel(name)
        if found is None:
            raise NotFoundError("channel", name)
        facts: dict[str, Any] = {
            "kind": AlertKind.TEST.value,
            "job_id": None,
            "job_name": "cronkeeper",
            "error": None,
        }
        message = Renderer(templates=self._delivery.templates, public_url=self._delivery.public_url).render(
            [facts]
        )
        message = Message(f"[cronkeeper] test message to channel {name}", message.text, message.html)
        error = send(found.url, message, timeout=self._delivery.send_timeout)
        self._changes.record(
            "test",
            name,
            by=by,
            via=via,
            object_type="channel",
            details={"delivered": error is None, **({"error": error} if error else {})},
        )
        return error

    # ---- defaults ----------------------------------------------------------------------------------------

    def defaults(self) -> NotifyOptions:
        return self._store.notify_defaults()

    def set_defaults(
        self, options: NotifyOptions, *, origin: str = "api", by: str | None = None, via: str | None = None
    ) -> None:
        """The options every job takes where it sets none itself.  ``succeeded`` is chosen per job only: the
        engine asks a job's own options whether to report its successes, so that a success costs nothing."""
        if options.on is not None and not options.on.isdisjoint(EVERY_RUN_KINDS):
            chosen = ", ".join(sorted(options.on & EVERY_RUN_KINDS))
            raise ValidationError("on", f"{chosen} is chosen per job (notify_on), not for every job")
        if options == self._store.notify_defaults():
            return
        self._store.set_notify_defaults(options, origin=origin)
        self._changes.record("edit", "defaults", by=by, via=via, object_type="notify")

    def clear_defaults(
        self, *, origin: str | None = None, by: str | None = None, via: str | None = None
    ) -> None:
        """Forget the defaults: jobs then tell only the channels they name.  With ``origin``, only if that
        declaration set them (a file that no longer has ``[notify]`` defaults takes its own back)."""
        if self._store.clear_notify_defaults(origin=origin):
            self._changes.record("remove", "defaults", by=by, via=via, object_type="notify")

    def missing_channels(self, options: NotifyOptions) -> list[str]:
        """The channels ``options`` name (or, naming none, the defaults do) that do not exist: their alerts
        would fail.  For warnings where a job or the defaults are saved."""
        return self.channel_gaps({"": options}).get("", [])

    def channel_gaps(self, named: dict[str, NotifyOptions]) -> dict[str, list[str]]:
        """:meth:`missing_channels` of many jobs (by id) at once, with one read of the channels."""
        existing = {record.name for record in self._store.list_channels()}
        default = self._store.notify_defaults().channels or ()
        gaps = {}
        for key, options in named.items():
            names = options.channels if options.channels is not None else default
            missing = [name for name in names if name not in existing]
            if missing:
                gaps[key] = missing
        return gaps

    # ---- the outbox ----------------------------------------------------------------------------------------

    def enqueue(self, kind: str, channel: str, facts: dict[str, Any]) -> int:
        """Queue a message that no outcome wrote (the report) for delivery like any alert; returns its id."""
        return self._store.enqueue_alert(kind, channel_name(channel, "channel"), facts, now=self.clock.now())

    def list_alerts(
        self,
        *,
        status: AlertStatus | str | None = None,
        job_id: str | None = None,
        channel: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[AlertRecord]:
        """Alerts, newest first, with what became of each (attempts, the last error, when delivered)."""
        if limit < 1 or limit > MAX_PAGE:
            raise ValidationError("limit", f"must be between 1 and {MAX_PAGE}")
        try:
            chosen = None if status is None else AlertStatus(status)
        except ValueError:
            allowed = ", ".join(member.value for member in AlertStatus)
            raise ValidationError("status", f"must be one of {allowed}") from None
        return self._store.list_alerts(AlertFilter(chosen, job_id, channel, limit, before_id))

    def get_alert(self, alert_id: int) -> AlertRecord:
        return self._store.get_alert(alert_id)

    def open_incident(self, job_id: str) -> IncidentRecord | None:
        """The job's open incident (a streak of bad outcomes until its next success), if any."""
        return self._store.open_incident(job_id)

    def count_alerts(self) -> dict[str, int]:
        return self._store.count_alerts()


def _shown(record: ChannelRecord) -> Channel:
    return Channel(
        record.name,
        mask(record.url),
        record.origin,
        record.created_at,
        record.updated_at,
        record.last_sent_at,
    )
