"""The access-control tables on SQLite and PostgreSQL: unique names, sessions ended by a password change or
removal, idempotency keys, settings that the first writer decides."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from cronkeeper.exceptions import AccountNotFoundError, ValidationError
from cronkeeper.models import Role
from cronkeeper.store.access import SqlAccessStore
from cronkeeper.store.engines import open_engine
from cronkeeper.store.migrate import upgrade

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(any_db_url: str) -> Iterator[Engine]:
    engine = open_engine(any_db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def access(engine: Engine) -> SqlAccessStore:
    return SqlAccessStore(engine)


def test_a_taken_user_or_token_name_names_the_field_and_leaves_the_first(access: SqlAccessStore) -> None:
    first = access.add_user("alice", "hash-1", Role.ADMIN, now=NOW)
    with pytest.raises(ValidationError) as user_error:
        access.add_user("alice", "hash-2", Role.VIEWER, now=NOW)
    assert user_error.value.field == "username"
    found = access.find_user("alice")
    assert found == (first, "hash-1")
    access.add_token("deploy", "a" * 64, Role.VIEWER, by="alice", now=NOW)
    with pytest.raises(ValidationError) as token_error:
        access.add_token("deploy", "b" * 64, Role.ADMIN, by="alice", now=NOW)
    assert token_error.value.field == "name"
    assert [token.name for token in access.list_tokens()] == ["deploy"]


def test_sessions_end_with_a_new_password_and_with_the_user(access: SqlAccessStore) -> None:
    user = access.add_user("bob", "hash", Role.VIEWER, now=NOW)
    access.add_session("s1", user.id, "csrf", now=NOW, expires_at=NOW + timedelta(hours=1))
    assert access.find_session("s1", now=NOW) == (user, "csrf")
    assert access.find_session("s1", now=NOW + timedelta(hours=2)) is None  # expired
    access.set_password("bob", "new-hash", now=NOW)
    assert access.find_session("s1", now=NOW) is None
    access.add_session("s2", user.id, "csrf", now=NOW, expires_at=NOW + timedelta(hours=1))
    access.remove_user("bob")
    assert access.find_session("s2", now=NOW) is None
    with pytest.raises(AccountNotFoundError):
        access.remove_user("bob")


def test_tokens_are_found_by_hash_only(access: SqlAccessStore) -> None:
    access.add_token("ci", "c" * 64, Role.ADMIN, by=None, now=NOW)
    token = access.use_token("c" * 64, now=NOW)
    assert token is not None
    assert token.role is Role.ADMIN
    assert access.use_token("d" * 64, now=NOW) is None
    access.remove_token("ci")
    assert access.use_token("c" * 64, now=NOW) is None


def test_idempotency_keys_remember_the_run_and_expire(access: SqlAccessStore) -> None:
    forget = NOW - timedelta(days=1)
    assert access.reserve_key("alice", "k1", "job", now=NOW, forget_before=forget) is None
    assert access.reserve_key("alice", "k1", "job", now=NOW, forget_before=forget) == ("job", None)
    access.settle_key("alice", "k1", 42)
    assert access.reserve_key("alice", "k1", "job", now=NOW, forget_before=forget) == ("job", 42)
    assert access.reserve_key("bob", "k1", "job", now=NOW, forget_before=forget) is None  # per actor
    later = NOW + timedelta(days=2)
    forget = later - timedelta(days=1)
    assert access.reserve_key("alice", "k1", "job", now=later, forget_before=forget) is None


def test_the_first_stored_setting_wins(access: SqlAccessStore) -> None:
    assert access.setting("key", "first") == "first"
    assert access.setting("key", "second") == "first"
