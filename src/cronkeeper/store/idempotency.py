"""Idempotency keys of requests that queue runs (``Idempotency-Key`` on the API)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cronkeeper.store.base import IdempotencyStore
from cronkeeper.store.engines import writing
from cronkeeper.store.schema import idempotency_keys


class SqlIdempotencyStore(IdempotencyStore):
    """The idempotency key table on the scheduler's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reserve_key(
        self,
        actor: str,
        key: str,
        job_id: str,
        *,
        now: datetime,
        forget_before: datetime,
        abandoned_before: datetime,
    ) -> tuple[str, int | None] | None:
        """Reserve an idempotency key; returns None if it is new, else the job and run it already named
        (the run None while the first request is still in flight).

        A reservation that never got its run and was made before ``abandoned_before`` belonged to a request
        that died without giving its key back (a second failure while cleaning up, a killed process): it is
        taken over as if absent, so that the key does not answer "in progress" until it expires.  The
        takeover and the insert are one transaction, and concurrent reservations of one key are decided by
        its primary key: exactly one wins, the others see its reservation.
        """
        where = (idempotency_keys.c.actor == actor, idempotency_keys.c.key == key)
        with writing(self.engine) as conn:
            conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < forget_before))
            conn.execute(
                delete(idempotency_keys).where(
                    *where,
                    idempotency_keys.c.run_id.is_(None),
                    idempotency_keys.c.created_at < abandoned_before,
                )
            )
            found = _reserved(conn, actor, key)
            if found is not None:
                return found
            try:
                with conn.begin_nested():  # a savepoint: losing a race must not end the transaction
                    conn.execute(
                        insert(idempotency_keys).values(actor=actor, key=key, job_id=job_id, created_at=now)
                    )
            except IntegrityError:  # another request reserved the key since the select: it won
                return _reserved(conn, actor, key)
        return None

    def settle_key(self, actor: str, key: str, run_id: int | None, *, reserved_at: datetime) -> None:
        """Record the run a reserved key produced, or drop the key (None) when the request failed.

        ``reserved_at`` is the ``now`` the key was reserved with: it tells this request's reservation from a
        later one that took an abandoned reservation over, which a late settle must leave alone.
        """
        where = (
            idempotency_keys.c.actor == actor,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at == reserved_at,
            idempotency_keys.c.run_id.is_(None),
        )
        with writing(self.engine) as conn:
            if run_id is None:
                conn.execute(delete(idempotency_keys).where(*where))
            else:
                conn.execute(update(idempotency_keys).where(*where).values(run_id=run_id))


def _reserved(conn: Connection, actor: str, key: str) -> tuple[str, int | None] | None:
    found = conn.execute(
        select(idempotency_keys.c.job_id, idempotency_keys.c.run_id).where(
            idempotency_keys.c.actor == actor, idempotency_keys.c.key == key
        )
    ).first()
    return None if found is None else (str(found.job_id), found.run_id)
