"""Who is asking: a Bearer API token or a signed session cookie; and what they may do.

Every state-changing request made with a session cookie must carry the session's CSRF token (a form field
``csrf_token`` or the ``X-CSRF-Token`` header, which htmx sends), and must not come from another site: its
``Origin`` (or, without one, its ``Referer``) must name this site's own host.  Requests with a Bearer token
carry no ambient credentials and need neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from itsdangerous import BadSignature
from starlette.concurrency import run_in_threadpool

from cronkeeper.models import Role
from cronkeeper.services.accounts import same_secret
from cronkeeper.web.context import relative_path, web_context

SESSION_COOKIE = "ck_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user (``alice``) or API token (``token:deploy``)."""

    name: str
    role: Role
    csrf_token: str | None = None
    # The zone the user chose to read times in (an IANA name or JOB_ZONE); None: the browser's.
    time_zone: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class LoginRequired(Exception):
    """No valid credentials: pages redirect to the login form, the API answers 401."""


class PermissionDenied(Exception):
    """Valid credentials without the right: 403."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _identify(request: Request) -> Principal | None:
    context = web_context(request)
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = context.accounts.verify_token(secret.strip())
        return None if token is None else Principal(f"token:{token.name}", token.role)
    # Any other scheme (a proxy's Basic auth, say) is not ours: the session cookie still counts.
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    max_age = int(context.settings.session_lifetime.total_seconds())
    try:
        secret = context.signer.unsign(cookie, max_age=max_age).decode()
    except BadSignature:
        return None
    found = context.accounts.session(secret)
    if found is None:
        return None
    user, csrf_token = found
    return Principal(user.username, user.role, csrf_token, user.time_zone)


async def session_secret(request: Request) -> str | None:
    """The session secret in the request's cookie, if its signature holds."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return web_context(request).signer.unsign(cookie).decode()
    except BadSignature:
        return None


async def _authenticated(request: Request) -> Principal:
    principal = await run_in_threadpool(_identify, request)
    if principal is None:
        raise LoginRequired
    if principal.csrf_token is not None and request.method not in SAFE_METHODS:
        _check_same_site(request)
        await _check_csrf(request, principal.csrf_token)
    request.state.principal = principal
    return principal


async def viewer(request: Request) -> Principal:
    """Dependency: anyone logged in (not a check-in token: it reports runs and reads nothing); for a
    state-changing request with a session, a valid CSRF token."""
    principal = await _authenticated(request)
    if principal.role is Role.CHECKIN:
        raise PermissionDenied("a check-in token may only report runs of check-in jobs")
    return principal


async def checkin(request: Request) -> Principal:
    """Dependency: a check-in token, or an admin."""
    principal = await _authenticated(request)
    if principal.role not in (Role.CHECKIN, Role.ADMIN):
        raise PermissionDenied("this needs a check-in token or the admin role")
    return principal


async def admin(request: Request) -> Principal:
    """Dependency: an admin."""
    principal = await viewer(request)
    if not principal.is_admin:
        raise PermissionDenied("this needs the admin role")
    return principal


def _check_same_site(request: Request) -> None:
    """A second line behind the CSRF token: a browser names the page a request comes from, and a page of
    another site has no business changing anything here.  Browsers that send neither header (old ones, some
    privacy settings) still need the token."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return
    host = request.headers.get("host", "").lower()
    if source == "null" or urlsplit(source).netloc.lower() != host:
        raise PermissionDenied(f"a change requested from another site ({source[:100]}) is refused")


async def _check_csrf(request: Request, expected: str) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        field = (await request.form()).get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if given is None or not same_secret(given, expected):
        raise PermissionDenied("the form's CSRF token is missing or stale; reload the page and try again")


def client_address(request: Request) -> str:
    """Where a request came from, for the audit log: ``api 192.0.2.7`` or ``web 192.0.2.7``."""
    face = "api" if relative_path(request).startswith("/api") else "web"
    return f"{face} {request.client.host}" if request.client is not None else face
