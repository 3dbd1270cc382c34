"""Errors as answers: JSON naming the field for the API, a page for the dashboard.

Bad input is a 4xx that changed nothing; a database outage is a 503; nothing a user sends becomes a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from cronkeeper.exceptions import (
    ConflictError,
    JobExistsError,
    JobNotFoundError,
    NotFoundError,
    RunNotFoundError,
    StoreError,
    ValidationError,
)
from cronkeeper.web.auth import LoginRequired, PermissionDenied
from cronkeeper.web.context import base_path, relative_path, render

_API_PREFIXES = ("/api", "/metrics", "/healthz")


class PreconditionFailed(Exception):
    """An If-Match that no longer holds: 412, naming the header."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def wants_json(request: Request) -> bool:
    return relative_path(request).startswith(_API_PREFIXES)


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"detail": message}
        if field is not None:
            body["field"] = field
        return JSONResponse(body, status_code=status, headers=headers)
    shown = f"{field}: {message}" if field else message
    response = render(request, "error.html", {"status": status, "message": shown}, status_code=status)
    response.headers.update(headers or {})
    return response


def _field_of(location: Sequence[Any]) -> str:
    """``("body", "timeout")`` → ``timeout``; ``("query", "status", 0)`` → ``status``; a body that is not
    JSON at all (located by a byte offset) → ``body``."""
    names = [str(part) for part in location[1:] if not isinstance(part, int)]
    return ".".join(names) or "body"


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return error_response(request, 422, exc.reason, field=exc.field)


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "is invalid"}
    message = str(first.get("msg", "is invalid"))
    return error_response(request, 422, message, field=_field_of(first.get("loc", ("body",))))


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(request, 404, str(exc).strip("'\""))


async def _exists(request: Request, exc: Exception) -> Response:
    return error_response(request, 409, str(exc), field="id")


async def _conflict(request: Request, exc: Exception) -> Response:
    return error_response(request, 409, str(exc) or "changed by someone else; reload and try again")


async def _store_failed(request: Request, exc: Exception) -> Response:
    return error_response(request, 503, "the database is unavailable; try again shortly")


async def _login_required(request: Request, exc: Exception) -> Response:
    if wants_json(request):
        return error_response(request, 401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    login = f"{base_path(request)}/login"
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": login})
    return RedirectResponse(f"{login}?next={relative_path(request)}", status_code=303)


async def _denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PermissionDenied)
    return error_response(request, 403, exc.reason)


async def _precondition_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PreconditionFailed)
    return error_response(request, 412, exc.message, field="If-Match")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request, exc.status_code, str(exc.detail), headers=exc.headers)


_HANDLERS: tuple[tuple[type[Exception], Callable[[Request, Exception], Awaitable[Response]]], ...] = (
    (ValidationError, _validation),
    (RequestValidationError, _request_validation),
    (JobNotFoundError, _not_found),
    (RunNotFoundError, _not_found),
    (NotFoundError, _not_found),
    (JobExistsError, _exists),
    (ConflictError, _conflict),
    (StoreError, _store_failed),
    (LoginRequired, _login_required),
    (PermissionDenied, _denied),
    (PreconditionFailed, _precondition_failed),
    (HTTPException, _http_error),
)


def install_error_handlers(app: FastAPI) -> None:
    for error, handler in _HANDLERS:
        app.add_exception_handler(error, handler)
