"""Users, API tokens and sessions: the rows behind access control.

Only hashes of secrets are stored: argon2id for passwords (slow on purpose), SHA-256 for tokens and session
ids (random 256-bit values, which a fast hash protects as well as a slow one).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from cronkeeper.exceptions import AccountNotFoundError, ValidationError
from cronkeeper.models import ApiToken, Role, User
from cronkeeper.store.base import AccountStore
from cronkeeper.store.engines import reading, writing
from cronkeeper.store.rows import AnyRow
from cronkeeper.store.schema import login_attempts, sessions, tokens, users


class SqlAccountStore(AccountStore):
    """The access-control tables on the scheduler's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- login attempts --------------------------------------------------------------------------------

    def count_login_attempt(
        self, name_key: str, *, now: datetime, window: timedelta, limit: int
    ) -> datetime | None:
        with writing(self.engine) as conn:  # SQLite: BEGIN IMMEDIATE, one writer at a time
            if conn.dialect.name == "postgresql":
                # Nodes counting one name at the same moment take turns, so that no more than limit pass.
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": name_key})
            conn.execute(delete(login_attempts).where(login_attempts.c.at <= now - window))
            recent = (
                conn.execute(
                    select(login_attempts.c.at)
                    .where(login_attempts.c.name_key == name_key)
                    .order_by(login_attempts.c.at)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            if len(recent) >= limit:
                oldest: datetime = recent[0]
                return oldest + window
            conn.execute(insert(login_attempts).values(name_key=name_key, at=now))
        return None

    def clear_login_attempts(self, name_key: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(delete(login_attempts).where(login_attempts.c.name_key == name_key))

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

    def set_time_zone(self, username: str, zone: str | None) -> User:
        with writing(self.engine) as conn:
            row = conn.execute(
                update(users).where(users.c.username == username).values(time_zone=zone).returning(*users.c)
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


def _user(row: AnyRow) -> User:
    return User(row.id, row.username, Role(row.role), row.created_at, row.password_changed_at, row.time_zone)


def _token(row: AnyRow) -> ApiToken:
    return ApiToken(row.id, row.name, Role(row.role), row.created_by, row.created_at, row.last_used_at)
