"""The AlertStore on SQLAlchemy Core: channels, the notification defaults and the outbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update

from cronkeeper.exceptions import NotFoundError
from cronkeeper.models import NotifyOptions
from cronkeeper.specs.stored import notify_fields
from cronkeeper.store.base import AlertStore
from cronkeeper.store.engines import reading, writing
from cronkeeper.store.incidents import NOTIFY_DEFAULTS_KEY, notify_defaults
from cronkeeper.store.records import (
    AlertFilter,
    AlertRecord,
    AlertStatus,
    ChannelRecord,
    DeliveryResult,
    IncidentRecord,
    Parcel,
)
from cronkeeper.store.rows import AnyRow
from cronkeeper.store.schema import alerts, channels, incidents, settings

# Channels with alerts waiting looked at per claim, oldest first: a channel inside its window never holds up
# one that is not.
CHANNELS_LOOKED_AT = 100


class SqlAlertStore(AlertStore):
    """Alerts on the scheduler's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- channels ----------------------------------------------------------------------------------------

    def put_channel(self, name: str, url: str, *, origin: str, now: datetime) -> bool:
        with writing(self.engine) as conn:
            changed = conn.execute(
                update(channels).where(channels.c.name == name).values(url=url, origin=origin, updated_at=now)
            ).rowcount
            if changed:
                return False
            conn.execute(
                insert(channels).values(name=name, url=url, origin=origin, created_at=now, updated_at=now)
            )
            return True

    def remove_channel(self, name: str) -> None:
        with writing(self.engine) as conn:
            if not conn.execute(delete(channels).where(channels.c.name == name)).rowcount:
                raise NotFoundError("channel", name)

    def find_channel(self, name: str) -> ChannelRecord | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(channels).where(channels.c.name == name)).first()
        return None if row is None else _channel(row)

    def list_channels(self) -> list[ChannelRecord]:
        with reading(self.engine) as conn:
            return [_channel(row) for row in conn.execute(select(channels).order_by(channels.c.name))]

    def retire_channels(self, origin: str, keep: Sequence[str]) -> list[str]:
        gone = channels.c.origin == origin
        if keep:
            gone = gone & channels.c.name.not_in(list(keep))
        with writing(self.engine) as conn:
            names = list(conn.execute(select(channels.c.name).where(gone)).scalars())
            if names:
                conn.execute(delete(channels).where(channels.c.name.in_(names)))
        return sorted(names)

    # ---- defaults ----------------------------------------------------------------------------------------

    def notify_defaults(self) -> NotifyOptions:
        with reading(self.engine) as conn:
            return notify_defaults(conn)

    def set_notify_defaults(self, options: NotifyOptions, *, origin: str) -> None:
        value = json.dumps({**notify_fields(options), "origin": origin})
        with writing(self.engine) as conn:
            found = conn.execute(
                update(settings).where(settings.c.key == NOTIFY_DEFAULTS_KEY).values(value=value)
            ).rowcount
            if not found:
                conn.execute(insert(settings).values(key=NOTIFY_DEFAULTS_KEY, value=value))

    def clear_notify_defaults(self, *, origin: str | None = None) -> bool:
        with writing(self.engine) as conn:
            found = conn.execute(
                select(settings.c.value).where(settings.c.key == NOTIFY_DEFAULTS_KEY)
            ).scalar()
            if found is None or (origin is not None and json.loads(found).get("origin") != origin):
                return False
            conn.execute(delete(settings).where(settings.c.key == NOTIFY_DEFAULTS_KEY))
            return True

    # ---- the outbox --------------------------------------------------------------------------------------

    def claim_alerts(
        self,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        window: timedelta,
        limit: int = 1000,
        channels_at_once: int = 1,
    ) -> list[Parcel]:
        with writing(self.engine) as conn:
            waiting = list(
                conn.execute(
                    select(alerts.c.channel)
                    .where(_claimable(now))
                    .group_by(alerts.c.channel)
                    .order_by(func.min(alerts.c.id))
                    .limit(CHANNELS_LOOKED_AT)
                ).scalars()
            )
            if not waiting:
                return []
            gone = set(waiting) - _existing(conn, waiting)
            chosen: list[tuple[str, str | None]] = []
            for name in waiting:
                if len(chosen) == channels_at_once:
                    break
                if name in gone:
                    chosen.append((name, None))
                elif (url := _take_ready_channel(conn, name, now - window)) is not None:
                    chosen.append((name, url))
            return [_claim_channel(conn, name, url, owner, now, lease, limit) for name, url in chosen]

    def record_deliveries(self, results: Sequence[DeliveryResult], *, owner: str, now: datetime) -> None:
        with writing(self.engine) as conn:
            for result in results:
                _record(conn, result, owner, now)

    def enqueue_alert(self, kind: str, channel: str, facts: dict[str, Any], *, now: datetime) -> int:
        with writing(self.engine) as conn:
            result = conn.execute(
                insert(alerts).values(
                    kind=kind,
                    channel=channel,
                    facts=facts,
                    status=AlertStatus.PENDING.value,
                    created_at=now,
                    due_at=now,
                )
            )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def get_alert(self, alert_id: int) -> AlertRecord:
        with reading(self.engine) as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFoundError("alert", str(alert_id))
        return _alert(row)

    def list_alerts(self, alert_filter: AlertFilter) -> list[AlertRecord]:
        query = select(alerts).order_by(alerts.c.id.desc()).limit(alert_filter.limit)
        if alert_filter.status is not None:
            query = query.where(alerts.c.status == alert_filter.status.value)
        if alert_filter.job_id is not None:
            query = query.where(alerts.c.job_id == alert_filter.job_id)
        if alert_filter.channel is not None:
            query = query.where(alerts.c.channel == alert_filter.channel)
        if alert_filter.before_id is not None:
            query = query.where(alerts.c.id < alert_filter.before_id)
        with reading(self.engine) as conn:
            return [_alert(row) for row in conn.execute(query)]

    def count_alerts(self) -> dict[str, int]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(alerts.c.status, func.count()).group_by(alerts.c.status))
            return {str(row[0]): int(row[1]) for row in rows}

    def open_incident(self, job_id: str) -> IncidentRecord | None:
        with reading(self.engine) as conn:
            row = conn.execute(
                select(incidents).where(incidents.c.job_id == job_id, incidents.c.closed_at.is_(None))
            ).first()
        if row is None:
            return None
        return IncidentRecord(
            row.id, row.job_id, row.opened_at, row.failures, row.alerted, row.first_run_id, row.last_run_id
        )


def _claimable(now: datetime) -> Any:
    """Pending and due, or taken by a sender whose lease ended (it died, or hung past it)."""
    return or_(
        (alerts.c.status == AlertStatus.PENDING.value) & (alerts.c.due_at <= now),
        (alerts.c.status == AlertStatus.SENDING.value) & (alerts.c.lease_until < now),
    )


def _claim_channel(
    conn: Connection, name: str, url: str | None, owner: str, now: datetime, lease: timedelta, limit: int
) -> Parcel:
    """Every alert waiting for one channel, as one parcel: a flood is one message, not a backlog."""
    ids = list(
        conn.execute(
            select(alerts.c.id)
            .where(alerts.c.channel == name, _claimable(now))
            .order_by(alerts.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    claimed = set(
        conn.execute(
            update(alerts)
            .where(alerts.c.id.in_(ids), _claimable(now))
            .values(
                status=AlertStatus.SENDING.value,
                owner=owner,
                lease_until=now + lease,
                attempts=alerts.c.attempts + 1,
            )
            .returning(alerts.c.id)
        ).scalars()
    )
    if url is not None and claimed:
        conn.execute(update(channels).where(channels.c.name == name).values(last_sent_at=now))
    rows = conn.execute(select(alerts).where(alerts.c.id.in_(claimed)).order_by(alerts.c.id))
    return Parcel(name, url, tuple(_alert(row) for row in rows))


def _take_ready_channel(conn: Connection, name: str, sent_before: datetime) -> str | None:
    """The channel's URL if it was not sent to within the window, locked so that no other node sends to it
    meanwhile; None when it is inside its window, or another node holds it (that one sends its alerts)."""
    return conn.execute(
        select(channels.c.url)
        .where(
            channels.c.name == name,
            or_(channels.c.last_sent_at.is_(None), channels.c.last_sent_at <= sent_before),
        )
        .with_for_update(skip_locked=True)
    ).scalar()


def _existing(conn: Connection, names: list[str]) -> set[str]:
    return set(conn.execute(select(channels.c.name).where(channels.c.name.in_(names))).scalars())


def _record(conn: Connection, result: DeliveryResult, owner: str, now: datetime) -> None:
    mine = alerts.c.id.in_(result.alert_ids) & (alerts.c.owner == owner)
    mine = mine & (alerts.c.status == AlertStatus.SENDING.value)
    if result.error is None:
        values: dict[str, Any] = {"status": AlertStatus.DELIVERED.value, "delivered_at": now, "owner": None}
        conn.execute(update(alerts).where(mine).values(values))
        return
    entry = {"at": now.isoformat(), "error": result.error}
    for row in conn.execute(select(alerts.c.id, alerts.c.attempt_log).where(mine)):
        log = [*(row.attempt_log or []), entry]
        status = AlertStatus.PENDING if result.retry_at is not None else AlertStatus.FAILED
        conn.execute(
            update(alerts)
            .where(alerts.c.id == row.id)
            .values(
                status=status.value,
                due_at=result.retry_at or now,
                last_error=result.error,
                attempt_log=log,
                owner=None,
                lease_until=None,
            )
        )


def _channel(row: AnyRow) -> ChannelRecord:
    return ChannelRecord(row.name, row.url, row.origin, row.created_at, row.updated_at, row.last_sent_at)


def _alert(row: AnyRow) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        kind=row.kind,
        channel=row.channel,
        job_id=row.job_id,
        run_id=row.run_id,
        status=AlertStatus(row.status),
        created_at=row.created_at,
        due_at=row.due_at,
        attempts=row.attempts,
        facts=row.facts,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        attempt_log=tuple(row.attempt_log or ()),
    )
