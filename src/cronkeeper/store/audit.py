"""The audit log: an append-only table of who changed what."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from cronkeeper.models import AuditEvent
from cronkeeper.store.base import AuditLog
from cronkeeper.store.engines import reading, writing
from cronkeeper.store.records import AuditFilter
from cronkeeper.store.schema import audit_events


class SqlAuditLog(AuditLog):
    """Writes and lists audit events on the scheduler's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, event: AuditEvent) -> None:
        with writing(self.engine) as conn:
            conn.execute(
                insert(audit_events).values(
                    at=event.at,
                    actor=event.actor,
                    action=event.action,
                    object_type=event.object_type,
                    object_id=event.object_id[:200],
                    details=event.details,
                    via=None if event.via is None else event.via[:100],
                )
            )

    def list(self, audit_filter: AuditFilter) -> list[AuditEvent]:
        table = audit_events.c
        query = select(audit_events).order_by(table.id.desc()).limit(audit_filter.limit)
        if audit_filter.object_type is not None:
            query = query.where(table.object_type == audit_filter.object_type)
        if audit_filter.object_id is not None:
            query = query.where(table.object_id == audit_filter.object_id)
        if audit_filter.actor is not None:
            query = query.where(table.actor == audit_filter.actor)
        if audit_filter.before_id is not None:
            query = query.where(table.id < audit_filter.before_id)
        with reading(self.engine) as conn:
            return [
                AuditEvent(
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    object_type=row.object_type,
                    object_id=row.object_id,
                    details=row.details,
                    via=row.via,
                    id=row.id,
                )
                for row in conn.execute(query)
            ]
