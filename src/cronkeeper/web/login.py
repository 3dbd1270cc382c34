"""Logging in and out.

The login form is protected by a double-submit token (a cookie and a form field that must match), because
there is no session yet whose token it could carry.  A successful login always starts a new session.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from cronkeeper.services.accounts import same_secret
from cronkeeper.web.auth import SESSION_COOKIE, Principal, session_secret, viewer
from cronkeeper.web.context import base_path, render, web_context

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "ck_login"
WRONG = "Wrong user name or password."


def _secure(request: Request) -> bool:
    configured = web_context(request).settings.secure_cookies
    return request.url.scheme == "https" if configured is None else configured


def _safe_next(target: str | None) -> str:
    """Only paths inside this app: never another site (``//evil``, ``https://…``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, next_path: str, *, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request, "login.html", {"login_token": token, "next": next_path, "error": error}, status_code=status
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path=base_path(request) or "/",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, _safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    login_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    context = web_context(request)
    next_path = _safe_next(next)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not same_secret(login_token, expected):
        return _login_page(request, next_path, error="The form expired; please try again.", status=400)
    settings = context.settings
    wait = await run_in_threadpool(
        context.accounts.count_login_attempt,
        username,
        limit=settings.login_attempts,
        window=settings.login_window,
    )
    if wait is not None:
        minutes = max(1, round(wait.total_seconds() / 60))
        message = f"Too many failed attempts for this account; try again in {minutes} min."
        return _login_page(request, next_path, error=message, status=429)
    user = await run_in_threadpool(context.accounts.authenticate, username, password)
    if user is None:
        log.warning("failed login for %r from %s", username, request.client.host if request.client else "?")
        return _login_page(request, next_path, error=WRONG, status=401)
    await run_in_threadpool(context.accounts.login_succeeded, username)
    old = await session_secret(request)
    if old is not None:
        await run_in_threadpool(context.accounts.end_session, old)
    grant = await run_in_threadpool(
        context.accounts.start_session, user, lifetime=context.settings.session_lifetime
    )
    response = RedirectResponse(base_path(request) + next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        context.signer.sign(grant.secret).decode(),
        max_age=int(context.settings.session_lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path=base_path(request) or "/",
    )
    response.delete_cookie(LOGIN_COOKIE, path=base_path(request) or "/")
    return response


@router.post("/logout")
async def logout(request: Request, _principal: Annotated[Principal, Depends(viewer)]) -> Response:
    secret = await session_secret(request)
    if secret is not None:
        await run_in_threadpool(web_context(request).accounts.end_session, secret)
    response = RedirectResponse(f"{base_path(request)}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=base_path(request) or "/")
    return response
