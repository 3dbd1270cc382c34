"""Users, API tokens and sessions: the operations behind ``cronkeeper users``/``tokens`` and the web login.

Passwords are hashed with argon2id.  An unknown user costs the same hash check as a wrong password, so the
time to answer tells nothing about which names exist.  Every change is written to the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cronkeeper.clock import Clock
from cronkeeper.exceptions import ValidationError
from cronkeeper.models import JOB_ZONE, ApiToken, AuditEvent, Role, User
from cronkeeper.specs.validate import parse_zone
from cronkeeper.store.base import AccountStore, AuditLog, SettingStore

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")
MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "ck_"
FIRST_ADMIN = "admin"
SIGNING_KEY_SETTING = "session_signing_key"


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """A new session: the secret for the cookie and the CSRF token its forms must carry."""

    secret: str
    csrf_token: str


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a change, and from where, for the audit log."""

    name: str
    via: str | None = None


def fingerprint(secret: str) -> str:
    """What is stored of a token or session secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def role_of(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationError(field, "must be admin, viewer or checkin") from None


def user_role(role: Role | str) -> Role:
    """A role a person may have: check-in is for tokens given to jobs, which log in nowhere."""
    chosen = role_of(role) if isinstance(role, str) else role
    if chosen is Role.CHECKIN:
        raise ValidationError("role", "checkin is for API tokens; a user is admin or viewer")
    return chosen


class AccountService:
    """Managing users and tokens, checking credentials, and holding sessions."""

    def __init__(
        self,
        store: AccountStore,
        settings: SettingStore,
        audit: AuditLog,
        clock: Clock,
        *,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self.audit = audit
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self._decoy: str | None = None

    def _decoy_hash(self) -> str:
        """Checked against when the user does not exist, so that both cases cost one argon2 verification.
        Made on first use: hashing takes a noticeable fraction of a second, which every start would pay."""
        if self._decoy is None:
            self._decoy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._decoy

    def _record(
        self, actor: Actor, action: str, kind: str, name: str, details: dict[str, str] | None = None
    ) -> None:
        self.audit.record(AuditEvent(self.clock.now(), actor.name, action, kind, name, details, actor.via))

    # ---- login throttling ------------------------------------------------------------------------------

    def count_login_attempt(self, username: str, *, limit: int, window: timedelta) -> timedelta | None:
        """Count a login attempt for the name, known or not (a refusal tells nothing about which names
        exist); returns how long to wait instead when the name had ``limit`` attempts within ``window``.

        Counted before the password is checked, so that parallel guesses cannot all slip through while the
        first ones are still being verified; kept in the database, so that the limit holds for every node
        of a cluster and across restarts."""
        now = self.clock.now()
        until = self._store.count_login_attempt(_name_key(username), now=now, window=window, limit=limit)
        return None if until is None else max(until - now, timedelta(0))

    def login_succeeded(self, username: str) -> None:
        """A successful login clears the name's count."""
        self._store.clear_login_attempts(_name_key(username))

    # ---- users -----------------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: Role | str, *, actor: Actor) -> User:
        if not NAME_PATTERN.fullmatch(username):
            raise ValidationError(
                "username", "use 1-100 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"
            )
        role = user_role(role)
        user = self._store.add_user(username, self._hash(password), role, now=self.clock.now())
        self._record(actor, "create", "user", username, {"role": role.value})
        return user

    def set_password(self, username: str, password: str, *, actor: Actor) -> User:
        """Change a password; the user's sessions end."""
        user = self._store.set_password(username, self._hash(password), now=self.clock.now())
        self._record(actor, "change_password", "user", username)
        return user

    def set_time_zone(self, username: str, zone: str | None) -> User:
        """The zone the user reads times in on the dashboard: an IANA name, ``job`` (each job's own), or None
        (the browser's).  A preference, not a change to anything shared: not audited."""
        if zone is not None and zone != JOB_ZONE:
            try:
                zone = parse_zone(zone).key
            except ValidationError as exc:
                raise ValidationError("time_zone", exc.reason) from None
        return self._store.set_time_zone(username, zone)

    def remove_user(self, username: str, *, actor: Actor) -> None:
        self._store.remove_user(username)
        self._record(actor, "delete", "user", username)

    def list_users(self) -> list[User]:
        return self._store.list_users()

    def find_user(self, username: str) -> User | None:
        found = self._store.find_user(username)
        return None if found is None else found[0]

    def _hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationError("password", f"must have at least {MIN_PASSWORD_LENGTH} characters")
        return self.hasher.hash(password)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right; None for a wrong password and an unknown user alike."""
        found = self._store.find_user(username)
        stored = found[1] if found is not None else self._decoy_hash()
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if found is None:
            return None
        user = found[0]
        if self.hasher.check_needs_rehash(stored):
            self._store.set_password(username, self.hasher.hash(password), now=user.password_changed_at)
        return user

    def bootstrap_admin(self, password: str | None) -> tuple[str, str] | None:
        """With no user at all, create ``admin`` with ``password`` (or a generated one); returns the name and
        password to show once, or None when users exist already (or another node created the first one)."""
        if self._store.count_users():
            return None
        chosen = password or secrets.token_urlsafe(12)
        try:
            self.add_user(FIRST_ADMIN, chosen, Role.ADMIN, actor=Actor("cronkeeper", "first start"))
        except ValidationError as exc:
            if exc.field == "username":  # taken: another process got there first
                return None
            raise
        return FIRST_ADMIN, chosen

    # ---- API tokens ------------------------------------------------------------------------------------

    def create_token(self, name: str, role: Role | str, *, actor: Actor) -> tuple[ApiToken, str]:
        """A new token and its secret, which is shown this once and never stored."""
        if not NAME_PATTERN.fullmatch(name):
            raise ValidationError("name", "use 1-100 letters, digits, '_', '.', '@' or '-'")
        role = role_of(role) if isinstance(role, str) else role
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = self._store.add_token(name, fingerprint(secret), role, by=actor.name, now=self.clock.now())
        self._record(actor, "create", "token", name, {"role": role.value})
        return token, secret

    def verify_token(self, secret: str) -> ApiToken | None:
        if not secret.startswith(TOKEN_PREFIX):
            return None
        return self._store.use_token(fingerprint(secret), now=self.clock.now())

    def revoke_token(self, name: str, *, actor: Actor) -> None:
        self._store.remove_token(name)
        self._record(actor, "delete", "token", name)

    def list_tokens(self) -> list[ApiToken]:
        return self._store.list_tokens()

    # ---- sessions --------------------------------------------------------------------------------------

    def start_session(self, user: User, *, lifetime: timedelta) -> SessionGrant:
        """A fresh session id at every login, so a session fixed before login is worth nothing after it."""
        grant = SessionGrant(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        now = self.clock.now()
        self._store.add_session(
            fingerprint(grant.secret), user.id, grant.csrf_token, now=now, expires_at=now + lifetime
        )
        return grant

    def session(self, secret: str) -> tuple[User, str] | None:
        """The user of a live session and the CSRF token its forms must carry."""
        return self._store.find_session(fingerprint(secret), now=self.clock.now())

    def end_session(self, secret: str) -> None:
        self._store.end_session(fingerprint(secret))

    def session_signing_key(self) -> str:
        """The key that signs session cookies: one for every node on the database, made by the first to ask,
        so that a session works whichever node answers."""
        return self._settings.setting(SIGNING_KEY_SETTING, secrets.token_urlsafe(48))


def _name_key(username: str) -> str:
    """The name as typed: user names are told apart by case (``admin`` and ``ADMIN`` may be two accounts),
    and a name that is no account cannot unlock one."""
    return username[:200]


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison for CSRF tokens."""
    return hmac.compare_digest(given.encode(), expected.encode())
