"""Users, API tokens, sessions, settings and idempotency keys: the rows behind access control.

Only hashes of secrets are stored: argon2id for passwords (slow on purpose), SHA-256 for tokens and session
ids (random 256-bit values, which a fast hash protects as well as a slow one).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cronkeeper.exceptions import AccountNotFoundError, ValidationError
from cronkeeper.models import ApiToken, Role, User
from cronkeeper.store.engines import reading, writing
from cronkeeper.store.rows import AnyRow
from cronkeeper.store.schema import idempotency_keys, sessions, settings, tokens, users


class SqlAccessStore:
    """The access-control tables on the scheduler's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- users -----------------------------------------------------------------------------------------

    def add_user(self, username: str, password_hash: str, role: Role, *, now: datetime) -> User:
        row = {
            "username": username,
            "password_hash": password_hash,
            "role": role.value,
            "created_at": now,
            "password_changed_at": now,
        }
        with writing(self.engine) as conn:
            try:
                with conn.begin_nested():  # a savepoint: the unique violation must not end the transaction
                    user_id = conn.execute(insert(users).returning(users.c.id), row).scalar_one()
            except IntegrityError:
                raise ValidationError("username", f"{username!r} is taken") from None
        return User(int(user_id), username, role, now, now)

    def find_user(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash."""
        with reading(self.engine) as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return None if row is None else (_user(row), row.password_hash)

    def get_user_by_id(self, user_id: int) -> User | None:
        with reading(self.engine) as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        with reading(self.engine) as conn:
            return [_user(row) for row in conn.execute(select(users).order_by(users.c.username))]

    def count_users(self) -> int:
        with reading(self.engine) as conn:
            return len(conn.execute(select(users.c.id).limit(1)).all())

    def set_password(self, username: str, password_hash: str, *, now: datetime) -> User:
        """Change the hash and end every session of the user: a new password logs everyone out."""
        with writing(self.engine) as conn:
            row = conn.execute(
                update(users)
                .where(users.c.username == username)
                .values(password_hash=password_hash, password_changed_at=now)
                .returning(*users.c)
            ).first()
            if row is None:
                raise AccountNotFoundError("user", username)
            conn.execute(delete(sessions).where(sessions.c.user_id == row.id))
        return _user(row)

    def set_role(self, username: str, role: Role) -> User:
        with writing(self.engine) as conn:
            row = conn.execute(
                update(users).where(users.c.username == username).values(role=role.value).returning(*users.c)
            ).first()
        if row is None:
            raise AccountNotFoundError("user", username)
        return _user(row)

    def remove_user(self, username: str) -> None:
        with writing(self.engine) as conn:
            user_id = conn.execute(
                delete(users).where(users.c.username == username).returning(users.c.id)
            ).scalar()
            if user_id is None:
                raise AccountNotFoundError("user", username)
            conn.execute(delete(sessions).where(sessions.c.user_id == user_id))

    # ---- API tokens ------------------------------------------------------------------------------------

    def add_token(self, name: str, token_hash: str, role: Role, *, by: str | None, now: datetime) -> ApiToken:
        row = {
            "name": name,
            "token_hash": token_hash,
            "role": role.value,
            "created_by": by,
            "created_at": now,
        }
        with writing(self.engine) as conn:
            try:
                with conn.begin_nested():
                    token_id = conn.execute(insert(tokens).returning(tokens.c.id), row).scalar_one()
            except IntegrityError:
                raise ValidationError("name", f"a token named {name!r} exists") from None
        return ApiToken(int(token_id), name, role, by, now, None)

    def use_token(self, token_hash: str, *, now: datetime) -> ApiToken | None:
        """The token with this hash, its last use set to now (at most once a minute, to spare writes)."""
        with reading(self.engine) as conn:
            row = conn.execute(select(tokens).where(tokens.c.token_hash == token_hash)).first()
        if row is None:
            return None
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            with writing(self.engine) as conn:
                conn.execute(update(tokens).where(tokens.c.id == row.id).values(last_used_at=now))
        return _token(row)

    def list_tokens(self) -> list[ApiToken]:
        with reading(self.engine) as conn:
            return [_token(row) for row in conn.execute(select(tokens).order_by(tokens.c.name))]

    def remove_token(self, name: str) -> None:
        with writing(self.engine) as conn:
            if conn.execute(delete(tokens).where(tokens.c.name == name)).rowcount == 0:
                raise AccountNotFoundError("token", name)

    # ---- sessions --------------------------------------------------------------------------------------

    def add_session(
        self, id_hash: str, user_id: int, csrf_token: str, *, now: datetime, expires_at: datetime
    ) -> None:
        with writing(self.engine) as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(
                insert(sessions).values(
                    id_hash=id_hash,
                    user_id=user_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    def find_session(self, id_hash: str, *, now: datetime) -> tuple[User, str] | None:
        """The user of a live session and its CSRF token."""
        query = (
            select(users, sessions.c.csrf_token)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id_hash == id_hash, sessions.c.expires_at > now)
        )
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        return None if row is None else (_user(row), row.csrf_token)

    def end_session(self, id_hash: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))

    # ---- settings --------------------------------------------------------------------------------------

    def setting(self, key: str, default: str) -> str:
        """The stored value of ``key``, storing ``default`` first if there is none (the first writer wins,
        so every node of a cluster ends up with the same value)."""
        with writing(self.engine) as conn:
            found = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
            if found is not None:
                return str(found)
            conn.execute(insert(settings).values(key=key, value=default))
        return default

    # ---- idempotency keys ------------------------------------------------------------------------------

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


def _user(row: AnyRow) -> User:
    return User(row.id, row.username, Role(row.role), row.created_at, row.password_changed_at)


def _token(row: AnyRow) -> ApiToken:
    return ApiToken(row.id, row.name, Role(row.role), row.created_by, row.created_at, row.last_used_at)
