"""The access-control tables on SQLite and PostgreSQL: unique names, sessions ended by a password change or
removal, idempotency keys, settings that the first writer decides."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from cronkeeper.exceptions import AccountNotFoundError, ValidationError
from cronkeeper.models import Role
from cronkeeper.store.accounts import SqlAccountStore
from cronkeeper.store.engines import open_engine
from cronkeeper.store.idempotency import SqlIdempotencyStore
from cronkeeper.store.migrate import upgrade
from cronkeeper.store.schema import idempotency_keys
from cronkeeper.store.settings import SqlSettingStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(any_db_url: str) -> Iterator[Engine]:
    engine = open_engine(any_db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def accounts(engine: Engine) -> SqlAccountStore:
    return SqlAccountStore(engine)


@pytest.fixture
def keys(engine: Engine) -> SqlIdempotencyStore:
    return SqlIdempotencyStore(engine)


@pytest.fixture
def settings(engine: Engine) -> SqlSettingStore:
    return SqlSettingStore(engine)


def test_a_taken_user_or_token_name_names_the_field_and_leaves_the_first(accounts: SqlAccountStore) -> None:
    first = accounts.add_user("alice", "hash-1", Role.ADMIN, now=NOW)
    with pytest.raises(ValidationError) as user_error:
        accounts.add_user("alice", "hash-2", Role.VIEWER, now=NOW)
    assert user_error.value.field == "username"
    found = accounts.find_user("alice")
    assert found == (first, "hash-1")
    accounts.add_token("deploy", "a" * 64, Role.VIEWER, by="alice", now=NOW)
    with pytest.raises(ValidationError) as token_error:
        accounts.add_token("deploy", "b" * 64, Role.ADMIN, by="alice", now=NOW)
    assert token_error.value.field == "name"
    assert [token.name for token in accounts.list_tokens()] == ["deploy"]


def test_sessions_end_with_a_new_password_and_with_the_user(accounts: SqlAccountStore) -> None:
    user = accounts.add_user("bob", "hash", Role.VIEWER, now=NOW)
    accounts.add_session("s1", user.id, "csrf", now=NOW, expires_at=NOW + timedelta(hours=1))
    assert accounts.find_session("s1", now=NOW) == (user, "csrf")
    assert accounts.find_session("s1", now=NOW + timedelta(hours=2)) is None  # expired
    accounts.set_password("bob", "new-hash", now=NOW)
    assert accounts.find_session("s1", now=NOW) is None
    accounts.add_session("s2", user.id, "csrf", now=NOW, expires_at=NOW + timedelta(hours=1))
    accounts.remove_user("bob")
    assert accounts.find_session("s2", now=NOW) is None
    with pytest.raises(AccountNotFoundError):
        accounts.remove_user("bob")


def test_a_users_time_zone_is_kept_and_read_back_with_the_session(accounts: SqlAccountStore) -> None:
    user = accounts.add_user("carol", "hash", Role.VIEWER, now=NOW)
    assert user.time_zone is None
    accounts.add_session("s1", user.id, "csrf", now=NOW, expires_at=NOW + timedelta(hours=1))
    assert accounts.set_time_zone("carol", "Asia/Tokyo").time_zone == "Asia/Tokyo"
    found = accounts.find_session("s1", now=NOW)
    assert found is not None and found[0].time_zone == "Asia/Tokyo"
    assert accounts.set_time_zone("carol", None).time_zone is None
    with pytest.raises(AccountNotFoundError):
        accounts.set_time_zone("nobody", "UTC")


def test_tokens_are_found_by_hash_only(accounts: SqlAccountStore) -> None:
    accounts.add_token("ci", "c" * 64, Role.ADMIN, by=None, now=NOW)
    token = accounts.use_token("c" * 64, now=NOW)
    assert token is not None
    assert token.role is Role.ADMIN
    assert accounts.use_token("d" * 64, now=NOW) is None
    accounts.remove_token("ci")
    assert accounts.use_token("c" * 64, now=NOW) is None


def _reserve(
    keys: SqlIdempotencyStore, actor: str, key: str, now: datetime, job_id: str = "job"
) -> tuple[str, int | None] | None:
    """Reserve as the API does: keys kept a day, a reservation without a run abandoned after a minute."""
    return keys.reserve_key(
        actor,
        key,
        job_id,
        now=now,
        forget_before=now - timedelta(days=1),
        abandoned_before=now - timedelta(minutes=1),
    )


def test_idempotency_keys_remember_the_run_and_expire(keys: SqlIdempotencyStore) -> None:
    assert _reserve(keys, "alice", "k1", NOW) is None
    assert _reserve(keys, "alice", "k1", NOW) == ("job", None)
    keys.settle_key("alice", "k1", 42, reserved_at=NOW)
    assert _reserve(keys, "alice", "k1", NOW) == ("job", 42)
    assert _reserve(keys, "bob", "k1", NOW) is None  # per actor
    later = NOW + timedelta(days=2)
    assert _reserve(keys, "alice", "k1", later) is None
    keys.settle_key("alice", "k1", None, reserved_at=later)  # a failed request gives its key back
    assert _reserve(keys, "alice", "k1", later) is None


def test_a_reservation_whose_request_died_is_taken_over_after_a_minute(keys: SqlIdempotencyStore) -> None:
    assert _reserve(keys, "alice", "k1", NOW) is None  # and the request never settles it
    assert _reserve(keys, "alice", "k1", NOW + timedelta(seconds=59)) == ("job", None)
    retry_at = NOW + timedelta(seconds=61)
    assert _reserve(keys, "alice", "k1", retry_at, job_id="other") is None
    assert _reserve(keys, "alice", "k1", retry_at) == ("other", None)
    # The first request, late after all, must not settle or free the reservation that replaced its own.
    keys.settle_key("alice", "k1", 7, reserved_at=NOW)
    keys.settle_key("alice", "k1", None, reserved_at=NOW)
    assert _reserve(keys, "alice", "k1", retry_at) == ("other", None)
    keys.settle_key("alice", "k1", 8, reserved_at=retry_at)
    assert _reserve(keys, "alice", "k1", retry_at) == ("other", 8)
    # A settled key is an answer, however old (up to a day), never an abandoned reservation.
    assert _reserve(keys, "alice", "k1", retry_at + timedelta(hours=2)) == ("other", 8)


def test_only_one_of_concurrent_retries_takes_an_abandoned_reservation_over(
    keys: SqlIdempotencyStore,
) -> None:
    assert _reserve(keys, "alice", "k1", NOW) is None
    later = NOW + timedelta(minutes=5)
    start = threading.Barrier(6)

    def retry(_: int) -> tuple[str, int | None] | None:
        start.wait()
        return _reserve(keys, "alice", "k1", later)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(retry, range(6)))
    assert answers.count(None) == 1
    assert answers.count(("job", None)) == 5


def test_a_key_reserved_by_a_concurrent_request_is_its_answer_not_an_error(
    keys: SqlIdempotencyStore, engine: Engine
) -> None:
    with engine.connect() as other, ThreadPoolExecutor(1) as pool:
        transaction = other.begin()
        other.execute(insert(idempotency_keys).values(actor="alice", key="k1", job_id="job", created_at=NOW))
        # PostgreSQL: finds no row, then its insert waits on the other's; SQLite: waits to begin.
        answer = pool.submit(_reserve, keys, "alice", "k1", NOW)
        time.sleep(0.3)
        transaction.commit()
        assert answer.result(timeout=10) == ("job", None)


def test_the_first_stored_setting_wins(settings: SqlSettingStore) -> None:
    assert settings.setting("key", "first") == "first"
    assert settings.setting("key", "second") == "first"


# ---- login throttling ------------------------------------------------------------------------------------

WINDOW = timedelta(minutes=15)


def test_login_attempts_are_counted_per_name_until_the_window_slides_or_a_login_succeeds(
    accounts: SqlAccountStore,
) -> None:
    def attempt(name: str, at: datetime) -> datetime | None:
        return accounts.count_login_attempt(name, now=at, window=WINDOW, limit=5)

    assert [attempt("admin", NOW + timedelta(seconds=second)) for second in range(5)] == [None] * 5
    assert attempt("admin", NOW + timedelta(minutes=1)) == NOW + WINDOW  # when the oldest attempt expires
    assert attempt("ghost", NOW) is None  # each name has its own count
    assert attempt("admin", NOW + WINDOW + timedelta(seconds=1)) is None  # the window slid past two
    accounts.clear_login_attempts("admin")
    assert [attempt("admin", NOW + WINDOW + timedelta(seconds=2)) for _ in range(5)] == [None] * 5


def test_guesses_from_several_nodes_at_once_share_one_count(engine: Engine) -> None:
    """Ten guesses at the same moment, each through its own store (as from nodes of a cluster): five
    pass, five wait, never more."""
    stores = [SqlAccountStore(engine) for _ in range(10)]
    start = threading.Barrier(10)

    def guess(store: SqlAccountStore) -> datetime | None:
        start.wait()
        return store.count_login_attempt("admin", now=NOW, window=WINDOW, limit=5)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(guess, stores))
    assert answers.count(None) == 5
